import type { Manifest } from '@ferry/manifest';
import type { TreeState } from '@ferry/manifest/store';
import { describe, expect, it } from 'vitest';
import { decidePlace, type PlaceFacts } from './place.js';

const V1 = `sha256:${'1'.repeat(64)}`;
const V2 = `sha256:${'2'.repeat(64)}`;
const entry = (path: string, etag: string) => ({ path, size: 3, etag });
const listing = [entry('a', '"x"'), entry('b', '"y"')];
const manifest = { version: 1, entries: listing } as unknown as Manifest;

/** A tree an older ferry filled: its files sit in the folder itself. */
const inPlaceTree: TreeState = {
  source: 's3://b/m',
  versionId: V1,
  updatedAt: '2026-12-01T00:00:00Z',
};
const tree = (over: Partial<TreeState> = {}): TreeState => ({
  ...inPlaceTree,
  versionDir: '.ferry/trees/t1',
  ...over,
});

/** Facts of a folder `m` at v1 in `.ferry/trees/t1`; new folders are `new1`, `new2`… */
const facts = (over: Partial<PlaceFacts>): PlaceFacts => {
  let made = 0;
  return {
    subdir: 'm',
    tree: tree(),
    previous: manifest,
    remote: { versionId: V1, entries: listing },
    folder: 'current',
    newDir: () => `.ferry/trees/new${++made}`,
    ...over,
  };
};

describe('decidePlace', () => {
  it.each<[string, Partial<PlaceFacts>, ReturnType<typeof decidePlace>]>([
    [
      'the cache root itself: always in place',
      { subdir: '', remote: { versionId: V2, entries: listing } },
      { dir: '', switching: false, relink: false },
    ],
    [
      'a first pull: a version folder of its own, then the link',
      { tree: undefined, previous: undefined, folder: 'absent' },
      { dir: '.ferry/trees/new1', switching: true, relink: true },
    ],
    [
      'a first pull into a folder someone filled: hashed in place',
      { tree: undefined, previous: undefined, folder: 'folder' },
      { dir: 'm', switching: false, relink: false },
    ],
    [
      'a first pull resumed: the folder the interrupted one was building',
      {
        tree: undefined,
        folder: 'absent',
        pending: { versionId: V1, versionDir: '.ferry/trees/p' },
      },
      { dir: '.ferry/trees/p', switching: true, relink: true },
    ],
    [
      'the version shown (warm start, repair, another subset): in place',
      {},
      { dir: '.ferry/trees/t1', switching: false, relink: false },
    ],
    [
      'the version shown, its link deleted by hand: in place, link made again',
      { folder: 'absent' },
      { dir: '.ferry/trees/t1', switching: false, relink: true },
    ],
    [
      'a new version: beside the one shown, which is kept',
      { remote: { versionId: V2, entries: listing } },
      {
        dir: '.ferry/trees/new1',
        base: '.ferry/trees/t1',
        switching: true,
        shown: '.ferry/trees/t1',
        relink: true,
      },
    ],
    [
      'a new version resumed: the folder the interrupted pull was building',
      {
        remote: { versionId: V2, entries: listing },
        pending: { versionId: V2, versionDir: '.ferry/trees/p' },
      },
      {
        dir: '.ferry/trees/p',
        base: '.ferry/trees/t1',
        switching: true,
        shown: '.ferry/trees/t1',
        relink: true,
      },
    ],
    [
      'a new version while another was half-built: a fresh folder, not the other one',
      {
        remote: { versionId: V2, entries: listing },
        pending: { versionId: `sha256:${'3'.repeat(64)}`, versionDir: '.ferry/trees/p' },
      },
      {
        dir: '.ferry/trees/new1',
        base: '.ferry/trees/t1',
        switching: true,
        shown: '.ferry/trees/t1',
        relink: true,
      },
    ],
    [
      'the version shown before (a rollback): its folder again, nothing built',
      {
        tree: tree({ versionId: V2, previous: { versionId: V1, versionDir: '.ferry/trees/t0' } }),
      },
      { dir: '.ferry/trees/t0', switching: true, shown: '.ferry/trees/t1', relink: true },
    ],
    [
      'a folder an older ferry filled, at a new version: moved aside, the new one beside',
      {
        tree: inPlaceTree,
        folder: 'folder',
        remote: { versionId: V2, entries: listing },
      },
      {
        dir: '.ferry/trees/new2',
        base: 'm',
        switching: true,
        shown: '.ferry/trees/new1',
        relink: true,
      },
    ],
    [
      'a folder an older ferry filled, same version: left as it is',
      { tree: inPlaceTree, folder: 'folder' },
      { dir: 'm', switching: false, relink: false },
    ],
    [
      'a plain listing, unchanged: in place',
      { remote: { entries: listing } },
      { dir: '.ferry/trees/t1', switching: false, relink: false },
    ],
    [
      'a plain listing with one ETag changed: a new version',
      { remote: { entries: [entry('a', '"x"'), entry('b', '"z"')] } },
      {
        dir: '.ferry/trees/new1',
        base: '.ferry/trees/t1',
        switching: true,
        shown: '.ferry/trees/t1',
        relink: true,
      },
    ],
  ])('%s', (_, over, place) => {
    expect(decidePlace(facts(over))).toEqual(place);
  });
});
