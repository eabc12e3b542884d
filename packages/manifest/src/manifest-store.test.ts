import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeTempDir, type TempDir } from '#fixtures';
import { FerryError } from './errors.js';
import { createManifest, versionIdOf } from './manifest.js';
import { ManifestStore, type PartJournal, type StatRecord } from './manifest-store.js';

const D = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;
const CHILD = fileURLToPath(new URL('./test-store-child.mjs', import.meta.url));

async function rejection(promise: Promise<unknown>): Promise<FerryError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(FerryError);
    return err as FerryError;
  }
  throw new Error('expected a rejection');
}

function child(location: string, mode: 'hold' | 'open' | 'thread'): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, [CHILD, location, mode]);
}

async function firstLine(proc: ChildProcessWithoutNullStreams): Promise<unknown> {
  let stderr = '';
  proc.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const lines = createInterface({ input: proc.stdout });
  const [line] = (await Promise.race([
    once(lines, 'line'),
    once(proc, 'exit').then(() => {
      throw new Error(`child exited early: ${stderr}`);
    }),
  ])) as [string];
  lines.close();
  return JSON.parse(line);
}

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
let store: ManifestStore;

beforeEach(async () => {
  tmp = await makeTempDir('store');
  location = join(tmp.path, '.ferry', 'db');
  store = await ManifestStore.open(location);
});

afterEach(async () => {
  await store.close();
  await tmp.remove();
});

describe('ManifestStore data', () => {
  it('keeps everything across close and reopen', async () => {
    const m = createManifest([{ path: 'model.bin', size: 3, digest: D(1) }]);
    const id = await store.putManifest(m);
    expect(id).toBe(versionIdOf(m));
    await store.setRef('s3://b/p', 'v3', id);
    await store.setTree('/cache/p', {
      source: 's3://b/p',
      versionId: id,
      ref: 'v3',
      updatedAt: 'now',
    });
    await store.putStats([['p/model.bin', stat(3)]]);
    await store.startJournal(journal('p/next.bin'));
    await store.recordPart('p/next.bin', 4, D(44));
    await store.close();

    store = await ManifestStore.open(location);
    expect(await store.getManifest(id)).toEqual(m);
    expect(await store.listManifests()).toEqual([id]);
    expect(await store.getRef('s3://b/p', 'v3')).toBe(id);
    expect(await store.getTree('/cache/p')).toEqual({
      source: 's3://b/p',
      versionId: id,
      ref: 'v3',
      updatedAt: 'now',
    });
    expect(await store.getStat('p/model.bin')).toEqual(stat(3));
    expect(await store.getJournal('p/next.bin')).toEqual({
      ...journal('p/next.bin'),
      done: { 4: D(44) },
    });
  });

  it('stores, lists and deletes manifests; missing ones are undefined', async () => {
    const a = await store.putManifest(createManifest([{ path: 'a', size: 0, digest: D(1) }]));
    const b = await store.putManifest(createManifest([{ path: 'b', size: 0, digest: D(2) }]));
    expect((await store.listManifests()).sort()).toEqual([a, b].sort());
    await store.deleteManifest(a);
    expect(await store.getManifest(a)).toBeUndefined();
    expect(await store.listManifests()).toEqual([b]);
    await expect(store.getManifest('v3')).rejects.toThrow(TypeError);
  });

  it('keeps refs per source, without prefix collisions between sources', async () => {
    await store.setRef('s3://b/p', 'latest', D(1));
    await store.setRef('s3://b/p', 'v1', D(2));
    await store.setRef('s3://b/p2', 'latest', D(3));
    expect(await store.listRefs('s3://b/p')).toEqual([
      { source: 's3://b/p', name: 'latest', versionId: D(1) },
      { source: 's3://b/p', name: 'v1', versionId: D(2) },
    ]);
    expect(await store.listRefs()).toHaveLength(3);
    expect(await store.getRef('s3://b/p2', 'v1')).toBeUndefined();
    expect((await rejection(store.setRef('s3://b/p', '../x', D(1)))).code).toBe('FERRY_BAD_REF');
    // Arguments ferry checks before they get here: a bug if they do, not a usage error.
    await expect(store.setRef('s\0', 'x', D(1))).rejects.toThrow(TypeError);
    await expect(store.setRef('s', 'x', `blake3:${'0'.repeat(64)}`)).rejects.toThrow(
      /invalid version id/,
    );
  });

  it('lists and deletes trees', async () => {
    const state = { source: 's', versionId: D(1), updatedAt: 't' };
    await store.setTree('/a', state);
    await store.setTree('/b', state);
    expect(await store.listTrees()).toEqual([
      { dir: '/a', ...state },
      { dir: '/b', ...state },
    ]);
    await store.deleteTree('/a');
    expect(await store.getTree('/a')).toBeUndefined();
  });

  it('scans stats by prefix without crossing the boundary', async () => {
    const paths = ['a/b', 'a/b/x', 'a/b/c/d', 'a/bc', 'a/b.c', 'a/b/ÿ', 'a/b/\u{10ffff}', 'b'];
    await store.putStats(paths.map((p, i) => [p, stat(i)]));
    expect([...(await store.getStats('a/b/')).keys()]).toEqual([
      'a/b/c/d',
      'a/b/x',
      'a/b/ÿ',
      'a/b/\u{10ffff}',
    ]);
    expect((await store.getStats('a/b/x')).get('a/b/x')).toEqual(stat(1));
    expect((await store.getStats('')).size).toBe(paths.length);
    expect((await store.getStats('zzz')).size).toBe(0);
    await store.deleteStats(['a/b/x', 'a/b/c/d', 'never-there']);
    expect([...(await store.getStats('a/b/')).keys()]).toEqual(['a/b/ÿ', 'a/b/\u{10ffff}']);
  });

  it('reads the stat records of given paths in their order, undefined where there is none', async () => {
    await store.putStats([
      ['a/x', stat(1)],
      ['a/y', stat(2)],
    ]);
    expect(await store.getStatsOf(['a/y', 'a/none', 'a/x'])).toEqual([stat(2), undefined, stat(1)]);
    expect(await store.getStatsOf([])).toEqual([]);
    expect((await rejection(store.getStatsOf(['a/../b']))).code).toBe('FERRY_BAD_PATH');
  });

  it('refuses bad stat paths naming them', async () => {
    const err = await rejection(store.getStat('/etc/passwd'));
    expect(err.code).toBe('FERRY_BAD_PATH');
    expect(err.message).toContain('/etc/passwd');
    expect((await rejection(store.putStats([['a/../b', stat(1)]]))).code).toBe('FERRY_BAD_PATH');
  });

  it('keeps journals apart, restarts them clean and lists them', async () => {
    for (const p of ['a', 'a b', 'a/b']) await store.startJournal(journal(p));
    await store.recordPart('a', 0, D(10));
    await store.recordPart('a', 11, D(11));
    await store.recordPart('a/b', 2, D(12));
    await store.recordPart('orphan', 0, D(13));
    expect((await store.getJournal('a'))?.done).toEqual({ 0: D(10), 11: D(11) });
    expect((await store.getJournal('a b'))?.done).toEqual({});
    expect(await store.getJournal('orphan')).toBeUndefined();
    expect((await store.listJournals()).map((j) => [j.path, j.done])).toEqual([
      ['a', { 0: D(10), 11: D(11) }],
      ['a b', {}],
      ['a/b', { 2: D(12) }],
    ]);

    await store.startJournal({ ...journal('a'), etag: '"new"' });
    expect(await store.getJournal('a')).toEqual({ ...journal('a'), etag: '"new"', done: {} });
    await store.deleteJournal('a/b');
    expect((await store.listJournals()).map((j) => j.path)).toEqual(['a', 'a b']);
    await expect(store.recordPart('a', -1, D(1))).rejects.toThrow(TypeError);
    expect((await rejection(store.recordPart('a', 0, 'sha256:zz'))).code).toBe(
      'FERRY_MANIFEST_INVALID',
    );
  });

  it('commits a file in one batch: stat written, journal and parts gone', async () => {
    await store.startJournal(journal('m/w.bin'));
    await store.recordPart('m/w.bin', 0, D(1));
    await store.commitFile('m/w.bin', { ...stat(100), parts: { size: 10, digests: [D(1)] } });
    expect(await store.getStat('m/w.bin')).toEqual({
      ...stat(100),
      parts: { size: 10, digests: [D(1)] },
    });
    expect(await store.getJournal('m/w.bin')).toBeUndefined();
    expect(await store.listJournals()).toEqual([]);
  });

  it('leaves the journal intact when the commit batch fails', async () => {
    await store.startJournal(journal('w.bin'));
    await store.recordPart('w.bin', 0, D(1));
    // A BigInt cannot be encoded as JSON, so the batch fails after its deletes are queued.
    const unencodable = { ...stat(1), size: 1n } as unknown as StatRecord;
    const err = await rejection(store.commitFile('w.bin', unencodable));
    expect(err.code).toBe('FERRY_STORE_FAILED');
    expect(err.message).toContain('commitFile');
    expect(err.cause).toBeInstanceOf(Error);
    expect(await store.getJournal('w.bin')).toEqual({ ...journal('w.bin'), done: { 0: D(1) } });
    expect(await store.getStat('w.bin')).toBeUndefined();
  });

  it('commits a tree: new state and stats of removed paths deleted', async () => {
    await store.putStats([
      ['t/keep', stat(1)],
      ['t/drop', stat(2)],
    ]);
    const state = { source: 's', versionId: D(9), updatedAt: 'u' };
    await store.commitTree('/cache/t', state, ['t/drop']);
    expect(await store.getTree('/cache/t')).toEqual(state);
    expect([...(await store.getStats('t/')).keys()]).toEqual(['t/keep']);
  });

  it('fails clearly when used after close', async () => {
    await store.close();
    const err = await rejection(store.getStats(''));
    expect(err.code).toBe('FERRY_STORE_FAILED');
    expect(err.message).toContain('closed');
    store = await ManifestStore.open(location);
  });
});

describe('ManifestStore locking', () => {
  it('refuses a second open in this process without dropping the lock', async () => {
    const err = await rejection(ManifestStore.open(location));
    expect(err.code).toBe('FERRY_STORE_LOCKED');
    expect(err.message).toContain('already open in this process');
    expect(err.message).toContain(String(process.pid));
    // The first instance still works and still keeps other processes out.
    await store.putStats([['x', stat(1)]]);
    const other = await firstLine(child(location, 'open'));
    expect(other).toMatchObject({ code: 'FERRY_STORE_LOCKED' });
  });

  it('refuses another process, naming this one as the holder', async () => {
    const outcome = (await firstLine(child(location, 'open'))) as { code: string; message: string };
    expect(outcome.code).toBe('FERRY_STORE_LOCKED');
    expect(outcome.message).toContain(`pid ${process.pid}`);
    expect(outcome.message).toContain(location);
  });

  it('names another process that holds it, and opens once it is gone', async () => {
    await store.close();
    const holder = child(location, 'hold');
    const { ready } = (await firstLine(holder)) as { ready: number };
    const err = await rejection(ManifestStore.open(location));
    expect(err.code).toBe('FERRY_STORE_LOCKED');
    expect(err.message).toContain(`pid ${ready}`);
    expect(err.message).toContain('test-store-child.mjs');
    expect(err.hint).toContain(String(ready));
    holder.stdin.end();
    await once(holder, 'exit');
    store = await ManifestStore.open(location);
  });

  it('refuses a worker thread of the process that holds it', async () => {
    await store.close();
    const proc = child(location, 'thread');
    const exited = once(proc, 'exit');
    const outcome = (await firstLine(proc)) as {
      code: string;
      message: string;
    };
    expect(outcome.code).toBe('FERRY_STORE_LOCKED');
    expect(outcome.message).toContain('already open in this process');
    // The child's main thread holds the store until the child is gone.
    await exited;
    store = await ManifestStore.open(location);
  });

  it('ignores a holder file left by a dead process', async () => {
    await store.close();
    const holderFile = join(tmp.path, '.ferry', 'db-holder.json');
    const dead = child(location, 'open');
    await firstLine(dead);
    await once(dead, 'exit');
    const pid = dead.pid ?? -1;
    await writeFile(holderFile, JSON.stringify({ pid, command: 'gone', process: 'x', token: 't' }));
    store = await ManifestStore.open(location);
    const holder = JSON.parse(await readFile(holderFile, 'utf8')) as { pid: number };
    expect(holder.pid).toBe(process.pid);
  });

  it('reports other open failures as FERRY_STORE_FAILED with the cause', async () => {
    const broken = join(tmp.path, 'broken');
    await (await ManifestStore.open(broken)).close();
    await writeFile(join(broken, 'CURRENT'), 'garbage');
    const err = await rejection(ManifestStore.open(broken));
    expect(err.code).toBe('FERRY_STORE_FAILED');
    expect(err.message).toContain(broken);
    expect(err.cause).toBeInstanceOf(Error);
  });
});

describe('pending pulls', () => {
  it('are listed until commitTree clears them in the same batch', async () => {
    const dir = await makeTempDir('store-pending');
    try {
      const store = await ManifestStore.open(join(dir.path, 'db'));
      try {
        const versionId = `sha256:${'a'.repeat(64)}`;
        await store.setPendingPull('models/m', {
          source: 's3://bucket/models/m',
          ref: 'v1',
          versionId,
          partSize: 1024,
          sourceOptions: { endpoint: 'http://127.0.0.1:9000' },
          startedAt: '2026-01-01T00:00:00.000Z',
        });
        await store.setPendingPull('', { source: 'file:///x', partSize: 1, startedAt: 'now' });
        expect((await store.listPendingPulls()).map((p) => p.dir)).toEqual(['', 'models/m']);
        expect((await store.listPendingPulls())[1]).toMatchObject({
          ref: 'v1',
          versionId,
          partSize: 1024,
        });

        await store.commitTree(
          'models/m',
          { source: 's3://bucket/models/m', versionId, updatedAt: 'now' },
          [],
        );
        expect((await store.listPendingPulls()).map((p) => p.dir)).toEqual(['']);
        await store.deletePendingPull('');
        expect(await store.listPendingPulls()).toEqual([]);
      } finally {
        await store.close();
      }
    } finally {
      await dir.remove();
    }
  });
});
