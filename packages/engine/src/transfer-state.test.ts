import { join } from 'node:path';
import { isFerryError } from '@ferry/manifest';
import { CacheIndex, type StatRecord } from '@ferry/manifest/store';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeTempDir, type TempDir } from '#fixtures';
import { type PartJournal, TransferState } from './transfer-state.js';

const D = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;
const stat = (n: number): StatRecord => ({ size: n, mtimeMs: 1000 + n, digest: D(n) });
const journal = (path: string): Omit<PartJournal, 'done'> => ({
  path,
  tmpPath: `.ferry/tmp/${path.replaceAll('/', '_')}`,
  source: 's3://bucket/models',
  key: `models/${path}`,
  etag: '"abc"',
  size: 100,
  partSize: 10,
  algorithm: 'sha256',
  startedAt: '2026-11-27T12:00:00.000Z',
});

let tmp: TempDir;
let location: string;
let store: CacheIndex;
let state: TransferState;

beforeEach(async () => {
  tmp = await makeTempDir('transfer-state');
  location = join(tmp.path, 'db');
  store = await CacheIndex.open(location);
  state = TransferState.of(store);
});

afterEach(async () => {
  await store.close();
  await tmp.remove();
});

describe('journals', () => {
  it('keep apart, restart clean, list, and outlive the store', async () => {
    for (const p of ['a', 'a b', 'a/b']) await state.startJournal(journal(p));
    await state.recordPart('a', 0, D(10));
    await state.recordPart('a', 11, D(11));
    await state.recordPart('a/b', 2, D(12));
    await state.recordPart('orphan', 0, D(13));
    expect((await state.getJournal('a'))?.done).toEqual({ 0: D(10), 11: D(11) });
    expect((await state.getJournal('a b'))?.done).toEqual({});
    expect(await state.getJournal('orphan')).toBeUndefined();
    expect((await state.listJournals()).map((j) => [j.path, j.done])).toEqual([
      ['a', { 0: D(10), 11: D(11) }],
      ['a b', {}],
      ['a/b', { 2: D(12) }],
    ]);

    await state.startJournal({ ...journal('a'), etag: '"new"' });
    expect(await state.getJournal('a')).toEqual({ ...journal('a'), etag: '"new"', done: {} });
    await state.deleteJournal('a/b');
    expect((await state.listJournals()).map((j) => j.path)).toEqual(['a', 'a b']);
    await expect(state.recordPart('a', -1, D(1))).rejects.toThrow(TypeError);
    await expect(state.recordPart('a', 0, 'sha256:zz')).rejects.toSatisfy((e) =>
      isFerryError(e, 'FERRY_MANIFEST_INVALID'),
    );
    await expect(state.startJournal(journal('../a'))).rejects.toSatisfy((e) =>
      isFerryError(e, 'FERRY_BAD_PATH'),
    );

    await state.recordPart('a b', 4, D(44));
    await store.close();
    store = await CacheIndex.open(location);
    expect(await TransferState.of(store).getJournal('a b')).toEqual({
      ...journal('a b'),
      done: { 4: D(44) },
    });
  });

  it('commit a file in one batch: stat written, journal and parts gone', async () => {
    await state.startJournal(journal('m/w.bin'));
    await state.recordPart('m/w.bin', 0, D(1));
    await state.commitFile('m/w.bin', { ...stat(100), parts: { size: 10, digests: [D(1)] } });
    expect(await store.getStat('m/w.bin')).toEqual({
      ...stat(100),
      parts: { size: 10, digests: [D(1)] },
    });
    expect(await state.getJournal('m/w.bin')).toBeUndefined();
    expect(await state.listJournals()).toEqual([]);
  });

  it('stay intact when the commit batch fails', async () => {
    await state.startJournal(journal('w.bin'));
    await state.recordPart('w.bin', 0, D(1));
    // A BigInt cannot be encoded as JSON, so the batch fails after its deletes are queued.
    const unencodable = { ...stat(1), size: 1n } as unknown as StatRecord;
    await expect(state.commitFile('w.bin', unencodable)).rejects.toSatisfy((e) =>
      isFerryError(e, 'FERRY_STORE_FAILED'),
    );
    expect(await state.getJournal('w.bin')).toEqual({ ...journal('w.bin'), done: { 0: D(1) } });
    expect(await store.getStat('w.bin')).toBeUndefined();
  });
});

describe('pending pulls', () => {
  it('are listed until the tree commits in the same batch', async () => {
    const versionId = `sha256:${'a'.repeat(64)}`;
    await state.setPendingPull('models/m', {
      source: 's3://bucket/models/m',
      ref: 'v1',
      versionId,
      partSize: 1024,
      sourceOptions: { endpoint: 'http://127.0.0.1:9000' },
      startedAt: '2026-01-01T00:00:00.000Z',
    });
    await state.setPendingPull('', { source: 'file:///x', partSize: 1, startedAt: 'now' });
    expect((await state.listPendingPulls()).map((p) => p.dir)).toEqual(['', 'models/m']);
    expect(await state.getPendingPull('models/m')).toMatchObject({
      ref: 'v1',
      versionId,
      partSize: 1024,
    });

    const tree = { source: 's3://bucket/models/m', versionId, updatedAt: 'now' };
    await state.commitTree('models/m', tree, []);
    expect(await store.getTree('models/m')).toEqual(tree);
    expect((await state.listPendingPulls()).map((p) => p.dir)).toEqual(['']);
    await state.deletePendingPull('');
    expect(await state.listPendingPulls()).toEqual([]);
    expect(await state.getPendingPull('')).toBeUndefined();
  });
});
