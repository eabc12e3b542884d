import { createManifest, type Manifest } from '@ferry/manifest';
import { describe, expect, it } from 'vitest';
import {
  ancestorUri,
  childUri,
  contentMirrors,
  contentPlace,
  decideStore,
  relativeTo,
  type StoreFacts,
  storeField,
  storeLevels,
} from './content-store.js';
import { liveVersions, partKeysInStore } from './remote-admin.js';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const id = (n: number) => `sha256:${String(n).repeat(64).slice(0, 64)}`;

function parted(store?: string): Manifest {
  return createManifest(
    [{ path: 'a', size: 20, digest: D1, parts: { size: 16, digests: [D1, D2] } }],
    { layout: 'parts', ...(store === undefined ? {} : { store }) },
  );
}

describe('store URIs', () => {
  it.each([
    ['s3://models/team/llama', 1, 's3://models/team'],
    ['s3://models/team/llama', 2, 's3://models'],
    ['s3://models/team/llama', 3, undefined],
    ['s3://models', 0, 's3://models'],
    ['https://cdn.example:8443/models/llama-a/', 1, 'https://cdn.example:8443/models/'],
    ['https://cdn.example:8443/models/llama-a/', 2, 'https://cdn.example:8443/'],
    ['https://cdn.example:8443/models/llama-a/', 3, undefined],
    ['http://127.0.0.1:9/my%20models/a%2Bb/', 1, 'http://127.0.0.1:9/my%20models/'],
    ['file:///srv/my%20models/llama', 1, 'file:///srv/my%20models'],
    ['file:///srv/models', 2, 'file:///'],
    ['file:///srv/models', 3, undefined],
  ])('%s, %i up: %s', (uri, levels, expected) => {
    expect(ancestorUri(uri, levels)).toBe(expected);
    if (expected !== undefined && levels > 0) {
      const rel = relativeTo(expected, uri) as string;
      expect(rel.split('/')).toHaveLength(levels);
      expect(childUri(expected, rel)).toBe(
        uri.startsWith('s3:') || uri.startsWith('file:') ? uri : uri.replace(/\/?$/, '/'),
      );
    }
  });

  it('relates a store to the prefixes below it, and to nothing else', () => {
    expect(relativeTo('s3://models', 's3://models')).toBe('');
    expect(relativeTo('s3://models', 's3://models/team/llama')).toBe('team/llama');
    expect(relativeTo('s3://models/a', 's3://models/ab')).toBeUndefined();
    expect(relativeTo('s3://models/a/b', 's3://models/a')).toBeUndefined();
    expect(relativeTo('s3://other', 's3://models/a')).toBeUndefined();
    expect(relativeTo('file:///srv', 'file:///srv/models/a')).toBe('models/a');
    expect(relativeTo('file:///srv', 's3://srv/models')).toBeUndefined();
  });

  it('writes and reads the manifest field', () => {
    for (const levels of [0, 1, 3]) expect(storeLevels(storeField(levels))).toBe(levels);
    expect(storeField(0)).toBe('./');
    expect(storeField(2)).toBe('../../');
  });
});

describe('decideStore', () => {
  const s3: StoreFacts = { kind: 's3', depth: 2, marked: [] };
  const local: StoreFacts = { kind: 'local', depth: 4, marked: [] };
  it.each<[string, StoreFacts, ReturnType<typeof decideStore>]>([
    ['S3 without a marked store: the bucket', s3, { levels: 2, why: 'bucket' }],
    ['S3: the nearest marked store', { ...s3, marked: [1, 2] }, { levels: 1, why: 'marked' }],
    [
      'S3: the prefix marked as its own store',
      { ...s3, marked: [0] },
      { levels: 0, why: 'marked' },
    ],
    ['S3: a named store wins', { ...s3, marked: [1], explicit: 0 }, { levels: 0, why: 'explicit' }],
    ['local without a marked store: none', local, undefined],
    ['local: the nearest marked store', { ...local, marked: [1] }, { levels: 1, why: 'marked' }],
    ['local: a named store', { ...local, explicit: 2 }, { levels: 2, why: 'explicit' }],
  ])('%s', (_name, facts, expected) => {
    expect(decideStore(facts)).toEqual(expected);
  });
});

describe('contentPlace', () => {
  it('finds parts in the store the manifest names, relative to where it was read', () => {
    const place = contentPlace('s3://models/llama-a', parted('../'));
    expect(place?.uri).toBe('s3://models');
    expect(place?.key(D1)).toBe(`.ferry/store/parts/sha256/${'1'.repeat(64)}`);
    expect(contentPlace('https://h/models/llama-a/', parted('../'))?.uri).toBe('https://h/models/');
    expect(contentPlace('file:///srv/models/llama-a', parted('./'))?.uri).toBe(
      'file:///srv/models/llama-a',
    );
  });

  it("reads a version from before stores from the prefix's own parts, and paths from paths", () => {
    const place = contentPlace('s3://models/llama-a', parted());
    expect(place?.uri).toBe('s3://models/llama-a');
    expect(place?.key(D1)).toBe(`.ferry/parts/sha256/${'1'.repeat(64)}`);
    expect(contentPlace('s3://m/a', createManifest([]))).toBeUndefined();
  });

  it('says so when the source cannot reach the store', () => {
    expect(() => contentPlace('https://cdn/', parted('../'))).toThrow(
      expect.objectContaining({
        code: 'FERRY_NOT_FOUND',
        message: expect.stringContaining('1 folder above https://cdn/, which has no such parent'),
      }),
    );
  });

  it('resolves mirrors like the origin, leaving out one that cannot reach the store', () => {
    const warnings: string[] = [];
    const mirrors = contentMirrors(
      ['https://cache/models/llama-a/', 'https://edge/'],
      parted('../'),
      (m) => warnings.push(m),
    );
    expect(mirrors).toEqual(['https://cache/models/']);
    expect(warnings).toEqual([
      expect.stringContaining('mirror https://edge/ has no folder 1 level up'),
    ]);
    expect(contentMirrors(['https://edge/'], parted(), () => {})).toEqual(['https://edge/']);
  });
});

describe('liveVersions', () => {
  const cutoff = 1000;
  it.each([
    [
      'a ref holds its version, however old',
      { refs: [id(1)], dropped: [], manifests: [{ id: id(1), at: 0 }] },
      [id(1)],
      [],
      0,
    ],
    [
      'a young manifest is live (a publish may be moving a ref to it)',
      { refs: [], dropped: [], manifests: [{ id: id(1), at: 2000 }] },
      [id(1)],
      [],
      1,
    ],
    [
      'an old manifest without a ref is stale',
      { refs: [], dropped: [], manifests: [{ id: id(1), at: 0 }] },
      [],
      [id(1)],
      0,
    ],
    [
      'a ref dropped within the grace period keeps its old version live',
      { refs: [], dropped: [{ id: id(1), at: 2000 }], manifests: [{ id: id(1), at: 0 }] },
      [id(1)],
      [],
      1,
    ],
    [
      'a ref dropped before the grace period does not',
      { refs: [], dropped: [{ id: id(1), at: 500 }], manifests: [{ id: id(1), at: 0 }] },
      [],
      [id(1)],
      0,
    ],
    [
      'an old drop record of a version a ref holds again changes nothing',
      { refs: [id(1)], dropped: [{ id: id(1), at: 0 }], manifests: [{ id: id(1), at: 0 }] },
      [id(1)],
      [],
      0,
    ],
  ])('%s', (_name, facts, live, stale, young) => {
    const decided = liveVersions(facts, cutoff);
    expect([...decided.live].filter((v) => facts.manifests.some((m) => m.id === v))).toEqual(live);
    expect(decided.stale).toEqual(stale);
    expect(decided.young).toBe(young);
  });
});

describe('partKeysInStore', () => {
  const store = (d: string) => `.ferry/store/parts/sha256/${d.slice(7)}`;
  const own = (d: string) => `.ferry/parts/sha256/${d.slice(7)}`;
  it.each([
    ['a prefix one folder below, store "../"', parted('../'), 'llama-a', [store(D1), store(D2)]],
    [
      'a prefix two folders below, store "../../"',
      parted('../../'),
      'team/llama',
      [store(D1), store(D2)],
    ],
    ['the store root itself, store "./"', parted('./'), '', [store(D1), store(D2)]],
    ["the root's own parts from before stores", parted(), '', [own(D1), own(D2)]],
    ['a prefix below whose parts are its own', parted(), 'llama-a', []],
    ['a prefix whose store is nearer than this one', parted('../'), 'team/llama', []],
    ['files at their paths', createManifest([]), '', []],
  ])('%s', (_name, manifest, rel, keys) => {
    expect(partKeysInStore(manifest, rel)).toEqual(keys);
  });
});
