import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Level } from 'level';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeTempDir, type TempDir } from '#fixtures';
import { CacheIndex, type StatRecord } from './cache-index.js';
import { FerryError } from './errors.js';
import { createManifest, encodeManifest, versionIdOf } from './manifest.js';

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
let tmp: TempDir;
let location: string;
let store: CacheIndex;

beforeEach(async () => {
  tmp = await makeTempDir('store');
  location = join(tmp.path, '.ferry', 'db');
  store = await CacheIndex.open(location);
});

afterEach(async () => {
  await store.close();
  await tmp.remove();
});

describe('CacheIndex data', () => {
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
    await store.table('other').put('k', { n: 1 });
    await store.close();

    store = await CacheIndex.open(location);
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
    expect(await store.table('other').get('k')).toEqual({ n: 1 });
  });

  it('stores, lists and deletes manifests; missing ones are undefined', async () => {
    const ma = createManifest([{ path: 'a', size: 0, digest: D(1) }]);
    const a = await store.putManifest(ma);
    const b = await store.putManifest(createManifest([{ path: 'b', size: 0, digest: D(2) }]));
    // A file of its canonical text, named by its id, beside LevelDB's own files.
    const file = join(location, 'manifests', `${a.replace(':', '-')}.json`);
    expect(await readFile(file, 'utf8')).toBe(encodeManifest(ma));
    expect(await readdir(join(location, 'manifests'))).toHaveLength(2);
    expect(await store.putManifest(ma)).toBe(a);
    expect((await store.listManifests()).sort()).toEqual([a, b].sort());
    await store.deleteManifest(a);
    expect(await store.getManifest(a)).toBeUndefined();
    expect(await readdir(join(location, 'manifests'))).toHaveLength(1);
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

  it('keeps the tables of other packages, one instance per name, none of its own', async () => {
    const notes = store.table<{ n: number }>('notes');
    expect(store.table('notes')).toBe(notes);
    await notes.put('a/b', { n: 1 });
    await notes.put('a/b\0x', { n: 2 });
    await notes.put('a/bc', { n: 3 });
    expect(await notes.entries('a/b\0')).toEqual([['a/b\0x', { n: 2 }]]);
    expect(await notes.keys('a/b')).toEqual(['a/b', 'a/b\0x', 'a/bc']);
    expect(await notes.getMany(['a/bc', 'none'])).toEqual([{ n: 3 }, undefined]);
    await notes.del('a/b');
    expect(await notes.get('a/b')).toBeUndefined();
    // A table's keys never meet the index's own, however they are spelt.
    await store.table('others').put('p/model.bin', { n: 4 });
    expect(await store.getStats('')).toEqual(new Map());
    expect(() => store.table('stat')).toThrow(TypeError);
  });

  it("writes other tables' operations in the same batch as stat records", async () => {
    const notes = store.table<string>('notes');
    await notes.put('w.bin', 'journal');
    await store.putStats([['w.bin', stat(1)]], [notes.delOp('w.bin')]);
    expect(await store.getStat('w.bin')).toEqual(stat(1));
    expect(await notes.get('w.bin')).toBeUndefined();
  });

  it('writes nothing when the batch fails', async () => {
    const notes = store.table<string>('notes');
    await notes.put('w.bin', 'journal');
    // A BigInt cannot be encoded as JSON, so the batch fails after its delete is queued.
    const unencodable = { ...stat(1), size: 1n } as unknown as StatRecord;
    const err = await rejection(store.putStats([['w.bin', unencodable]], [notes.delOp('w.bin')]));
    expect(err.code).toBe('FERRY_STORE_FAILED');
    expect(err.message).toContain('stat batch failed');
    expect(err.cause).toBeInstanceOf(Error);
    expect(await notes.get('w.bin')).toBe('journal');
    expect(await store.getStat('w.bin')).toBeUndefined();
  });

  it("commits a tree: new state, stats of removed paths and other tables' operations", async () => {
    await store.putStats([
      ['t/keep', stat(1)],
      ['t/drop', stat(2)],
    ]);
    const notes = store.table<string>('notes');
    await notes.put('t', 'pending');
    const state = { source: 's', versionId: D(9), updatedAt: 'u' };
    await store.commitTree('/cache/t', state, ['t/drop'], [notes.delOp('t')]);
    expect(await store.getTree('/cache/t')).toEqual(state);
    expect([...(await store.getStats('t/')).keys()]).toEqual(['t/keep']);
    expect(await notes.get('t')).toBeUndefined();
  });

  it('fails clearly when used after close', async () => {
    await store.close();
    const err = await rejection(store.getStats(''));
    expect(err.code).toBe('FERRY_STORE_FAILED');
    expect(err.message).toContain('closed');
    store = await CacheIndex.open(location);
  });
});

describe('CacheIndex locking', () => {
  it('refuses a second open in this process without dropping the lock', async () => {
    const err = await rejection(CacheIndex.open(location));
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
    const err = await rejection(CacheIndex.open(location));
    expect(err.code).toBe('FERRY_STORE_LOCKED');
    expect(err.message).toContain(`pid ${ready}`);
    expect(err.message).toContain('test-store-child.mjs');
    expect(err.hint).toContain(String(ready));
    holder.stdin.end();
    await once(holder, 'exit');
    store = await CacheIndex.open(location);
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
    store = await CacheIndex.open(location);
  });

  it('ignores a holder file left by a dead process', async () => {
    await store.close();
    const holderFile = join(tmp.path, '.ferry', 'db-holder.json');
    const dead = child(location, 'open');
    await firstLine(dead);
    await once(dead, 'exit');
    const pid = dead.pid ?? -1;
    await writeFile(holderFile, JSON.stringify({ pid, command: 'gone', process: 'x', token: 't' }));
    store = await CacheIndex.open(location);
    const holder = JSON.parse(await readFile(holderFile, 'utf8')) as { pid: number };
    expect(holder.pid).toBe(process.pid);
  });

  it('reports other open failures as FERRY_STORE_FAILED with the cause', async () => {
    const broken = join(tmp.path, 'broken');
    await (await CacheIndex.open(broken)).close();
    await writeFile(join(broken, 'CURRENT'), 'garbage');
    const err = await rejection(CacheIndex.open(broken));
    expect(err.code).toBe('FERRY_STORE_FAILED');
    expect(err.message).toContain(broken);
    expect(err.cause).toBeInstanceOf(Error);
  });
});

describe('a cache written before sublevels', () => {
  it('is moved into the tables on open, in one batch, and read back', async () => {
    await store.close();
    const m = createManifest([{ path: 'model.bin', size: 3, digest: D(1) }]);
    const id = versionIdOf(m);
    const tree = { source: 's3://b/p', versionId: id, ref: 'v3', updatedAt: 'now' };
    const header = { path: 'p/next.bin', size: 100, partSize: 10 };
    const pending = { source: 's3://b/q', partSize: 10, startedAt: 'then' };
    // The keys and encodings ferry wrote before: `<namespace>\0<fields joined by \0>`.
    const old = new Level<string, unknown>(location, { valueEncoding: 'json' });
    await old.put(`manifest\0${id}`, encodeManifest(m), { valueEncoding: 'utf8' });
    await old.put('ref\0s3://b/p\0v3', id);
    await old.put('tree\0p', tree);
    await old.put('tree\0', tree);
    await old.put('stat\0p/model.bin', stat(3));
    await old.put('stat\0p/ÿ', stat(4));
    await old.put('journal\0p/next.bin', header);
    await old.put('journal\0p/next.bin\0part\x000000000004', D(44));
    await old.put('pull\0q', pending);
    await old.close();

    store = await CacheIndex.open(location);
    // Manifests of such a cache stay in their table, read, listed and deleted as the others.
    expect(await store.getManifest(id)).toEqual(m);
    expect(await store.listManifests()).toEqual([id]);
    expect(await store.listRefs()).toEqual([{ source: 's3://b/p', name: 'v3', versionId: id }]);
    expect(await store.listTrees()).toEqual([
      { dir: '', ...tree },
      { dir: 'p', ...tree },
    ]);
    expect(await store.getStatsOf(['p/model.bin', 'p/ÿ'])).toEqual([stat(3), stat(4)]);
    // The engine's tables (see its transfer-state.ts), keys as they were after the namespace.
    expect(await store.table('journal').entries()).toEqual([
      ['p/next.bin', header],
      ['p/next.bin\0part\x000000000004', D(44)],
    ]);
    expect(await store.table('pull').entries()).toEqual([['q', pending]]);
    await store.close();

    // Nothing is left at the top level, and a second open finds the tables as they were.
    const raw = new Level<string, unknown>(location);
    const keys = await raw.keys().all();
    await raw.close();
    expect(keys.filter((k) => !k.startsWith('!'))).toEqual([]);
    store = await CacheIndex.open(location);
    expect(await store.getStatsOf(['p/model.bin'])).toEqual([stat(3)]);
    expect(await store.listManifests()).toEqual([id]);
  });
});
