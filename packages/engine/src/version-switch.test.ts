import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  appendFile,
  lstat,
  mkdir,
  readdir,
  readFile,
  readlink,
  rename,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { basename, join } from 'node:path';
import { isFerryError } from '@ferry/manifest';
import { CacheIndex } from '@ferry/manifest/store';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { differingFiles, makeTempDir, type TempDir, writeModel } from '#fixtures';
import { gc } from './gc.js';
import { publish } from './publish.js';
import { pull } from './pull.js';
import { resume } from './resume.js';
import { status } from './status.js';
import { verify } from './verify.js';

const MiB = 1024 * 1024;
const partSize = MiB;

let tmp: TempDir;
let origin: string;
let store: string;
let cache: string;

beforeEach(async () => {
  tmp = await makeTempDir('switch');
  origin = join(tmp.path, 'origin');
  store = join(tmp.path, 'store', 'models', 'm');
  cache = join(tmp.path, 'cache');
});
afterEach(() => tmp.remove());

const trees = () => readdir(join(cache, '.ferry', 'trees'));
const shown = async () => readlink(join(cache, 'm'));

/** Publishes the model of `seed` as `ref` (every file but the config and empty.bin differ). */
async function version(ref: string, seed: number, shards = [2 * MiB, MiB]) {
  await rm(origin, { recursive: true, force: true });
  const files = await writeModel(origin, { shards, smallFiles: 5, seed });
  await publish({ dir: origin, dest: store, ref, partSize });
  return files;
}

describe('versions side by side', () => {
  it('shows each version through a link; unchanged files are hard links, not copies', async () => {
    const v1 = await version('v1', 1);
    await pull({ source: store, ref: 'v1', root: cache, subdir: 'm' });
    expect((await lstat(join(cache, 'm'))).isSymbolicLink()).toBe(true);
    const first = await shown();
    expect(first).toMatch(/^\.ferry\/trees\/[0-9a-f]{16}$/);
    expect(await differingFiles(join(cache, 'm'), v1)).toEqual([]);

    // v2 changes one shard: the other files are the same inodes in both versions.
    const v2 = new Map(v1);
    v2.set('model-00002.safetensors', Buffer.alloc(MiB, 7));
    await writeFile(join(origin, 'model-00002.safetensors'), Buffer.alloc(MiB, 7));
    await publish({ dir: origin, dest: store, ref: 'v2', partSize });
    const second = await pull({ source: store, ref: 'v2', root: cache, subdir: 'm' });
    expect(second.fetchedBytes).toBe(MiB);
    expect(await shown()).not.toBe(first);
    expect(await differingFiles(join(cache, 'm'), v2)).toEqual([]);
    // The version shown before stays whole, for readers still in it.
    expect(await differingFiles(join(cache, first), v1)).toEqual([]);
    const unchanged = await stat(join(cache, 'm', 'model-00001.safetensors'));
    expect(unchanged.nlink).toBe(2);
    expect(unchanged.ino).toBe((await stat(join(cache, first, 'model-00001.safetensors'))).ino);
    expect(await trees()).toHaveLength(2);
    expect(await verify({ root: cache })).toMatchObject({ problems: [] });

    // A third version: the first is two switches old, and goes.
    await writeFile(join(origin, 'config.json'), '{"v":3}');
    await publish({ dir: origin, dest: store, ref: 'v3', partSize });
    await pull({ source: store, ref: 'v3', root: cache, subdir: 'm' });
    expect(await trees()).toHaveLength(2);
    expect(await trees()).not.toContain(basename(first));
    expect((await status({ root: cache })).trees).toMatchObject([{ dir: 'm', files: v1.size }]);
  });

  it('a reader that resolves the folder once never sees files of two versions', async () => {
    const v1 = await version('v1', 1, [4 * MiB, 4 * MiB]);
    const v2 = await version('v2', 2, [4 * MiB, 4 * MiB]);
    await pull({ source: store, ref: 'v1', root: cache, subdir: 'm' });
    // Files whose content tells the versions apart, with the digest of each version's copy.
    const digest = (b: Buffer) => createHash('sha1').update(b).digest('hex');
    const telling = Object.fromEntries(
      [...v1]
        .filter(([path, content]) => !content.equals(v2.get(path) as Buffer))
        .map(([path, content]) => [path, [digest(content), digest(v2.get(path) as Buffer)]]),
    );
    expect(Object.keys(telling).length).toBeGreaterThan(5);
    const reader = readWhileSwitching(join(cache, 'm'), telling);
    await reader.started;
    // The first switch writes v2 beside v1; then back and forth (a rollback reuses a folder),
    // for as long as a reader slowed by a busy machine needs to read through several switches.
    let ref = 'v1';
    for (let i = 0; i < 5 || (reader.reads() <= 10 && i < 41); i++) {
      ref = ref === 'v1' ? 'v2' : 'v1';
      await pull({ source: store, ref, root: cache, subdir: 'm' });
    }
    if (ref === 'v1') await pull({ source: store, ref: 'v2', root: cache, subdir: 'm' });
    const seen = await reader.stop();
    expect(seen.errors).toEqual([]);
    expect(seen.mixed).toBe(0);
    expect(seen.reads).toBeGreaterThan(10);
    expect(seen.versions).toEqual([0, 1]);
    expect(await differingFiles(join(cache, 'm'), v2)).toEqual([]);
  });

  it('rolls back to the version shown before at once, fetching and copying nothing', async () => {
    await version('v1', 1);
    const v2 = await version('v2', 2);
    await pull({ source: store, ref: 'v1', root: cache, subdir: 'm' });
    const first = await shown();
    await pull({ source: store, ref: 'v2', root: cache, subdir: 'm' });
    const v2Id = (await status({ root: cache })).trees[0]?.versionId;
    const back = await pull({ source: store, ref: 'v1', root: cache, subdir: 'm' });
    expect(back).toMatchObject({ fetchedBytes: 0, reusedBytes: 0 });
    expect(await shown()).toBe(first);
    expect((await status({ root: cache })).trees[0]?.previous).toBe(v2Id);
    const again = await pull({ source: store, ref: 'v2', root: cache, subdir: 'm', offline: true });
    expect(again.fetchedBytes).toBe(0);
    expect(await differingFiles(join(cache, 'm'), v2)).toEqual([]);
  });

  it("keeps someone's files across a switch, and leaves the old version's as they were", async () => {
    const v1 = await version('v1', 1);
    await pull({ source: store, ref: 'v1', root: cache, subdir: 'm' });
    await writeFile(join(cache, 'm', 'notes.txt'), 'mine');
    await appendFile(join(cache, 'm', 'extra', 'file 0.txt'), ' edited');
    // v2 drops "extra/file 0.txt" and "extra/file 1.txt".
    await rm(join(origin, 'extra', 'file 0.txt'));
    await rm(join(origin, 'extra', 'file 1.txt'));
    await publish({ dir: origin, dest: store, ref: 'v2', partSize });
    const v2 = await pull({ source: store, ref: 'v2', root: cache, subdir: 'm' });
    expect(v2.removed).toEqual(['m/extra/file 1.txt']);
    expect(await readFile(join(cache, 'm', 'notes.txt'), 'utf8')).toBe('mine');
    expect(await readFile(join(cache, 'm', 'extra', 'file 0.txt'), 'utf8')).toMatch(/ edited$/);
    await expect(stat(join(cache, 'm', 'extra', 'file 1.txt'))).rejects.toThrow();
    expect(v1.size).toBeGreaterThan(0);
  });

  it('an interrupted pull leaves the folder on the old version, whole; resume switches', async () => {
    const v1 = await version('v1', 1, [8 * MiB]);
    await pull({ source: store, ref: 'v1', root: cache, subdir: 'm' });
    const v2 = await version('v2', 2, [8 * MiB]);
    const controller = new AbortController();
    const stopped = await pull({
      source: store,
      ref: 'v2',
      root: cache,
      subdir: 'm',
      concurrency: 1,
      signal: controller.signal,
      onEvent: (e) => {
        if (e.type === 'file-done' && e.fetchedBytes > 0) controller.abort(new Error('stop'));
      },
    }).catch((e: unknown) => e);
    expect(stopped).toBeInstanceOf(Error);
    expect(await differingFiles(join(cache, 'm'), v1)).toEqual([]);
    expect((await status({ root: cache })).interrupted).toMatchObject([{ dir: 'm' }]);
    expect(await trees()).toHaveLength(2);
    await resume({ root: cache });
    expect(await differingFiles(join(cache, 'm'), v2)).toEqual([]);
    expect(await trees()).toHaveLength(2);
  });

  it('moves a folder pulled before versions were kept side by side aside at the next version', async () => {
    const v1 = await version('v1', 1);
    await pull({ source: store, ref: 'v1', root: cache, subdir: 'm' });
    // Turn it into what an older ferry left: the files in the folder, keyed by it.
    const versionDir = await shown();
    await rm(join(cache, 'm'));
    await rename(join(cache, versionDir), join(cache, 'm'));
    const db = await CacheIndex.open(join(cache, '.ferry', 'db'));
    try {
      const records = await db.getStats(`${versionDir}/`);
      await db.putStats(
        [...records].map(([k, r]) => [`m/${k.slice(versionDir.length + 1)}`, r] as const),
      );
      await db.deleteStats(records.keys());
      const { versionDir: _, ...tree } = (await db.getTree('m')) ?? {};
      await db.setTree('m', tree as Parameters<typeof db.setTree>[1]);
    } finally {
      await db.close();
    }
    const warm = await pull({ source: store, ref: 'v1', root: cache, subdir: 'm' });
    expect(warm).toMatchObject({ fetchedBytes: 0 });
    expect((await lstat(join(cache, 'm'))).isDirectory()).toBe(true);

    const v2 = new Map(v1);
    v2.set('config.json', Buffer.from('{"v":2}'));
    await writeFile(join(origin, 'config.json'), '{"v":2}');
    await publish({ dir: origin, dest: store, ref: 'v2', partSize });
    const next = await pull({ source: store, ref: 'v2', root: cache, subdir: 'm' });
    expect(next.fetchedBytes).toBe(7);
    expect((await lstat(join(cache, 'm'))).isSymbolicLink()).toBe(true);
    expect(await differingFiles(join(cache, 'm'), v2)).toEqual([]);
    expect(await trees()).toHaveLength(2);
    expect(await verify({ root: cache })).toMatchObject({ problems: [] });
    const back = await pull({ source: store, ref: 'v1', root: cache, subdir: 'm' });
    expect(back.fetchedBytes).toBe(0);
    expect(await differingFiles(join(cache, 'm'), v1)).toEqual([]);
  });

  it('never moves, links or renames through a linked folder above the tree', async () => {
    await version('v1', 1);
    const outside = join(tmp.path, 'outside');
    await mkdir(join(outside, 'm'), { recursive: true });
    await writeFile(join(outside, 'm', 'theirs.txt'), "not ferry's");
    await mkdir(cache, { recursive: true });
    await symlink(outside, join(cache, 'models'));
    const error = await pull({ source: store, ref: 'v1', root: cache, subdir: 'models/m' }).catch(
      (e: unknown) => e,
    );
    expect(isFerryError(error, 'FERRY_IO')).toBe(true);
    expect(String((error as Error).message)).toContain('is a symbolic link');
    expect(await readdir(outside)).toEqual(['m']);
    expect(await readdir(join(outside, 'm'))).toEqual(['theirs.txt']);
  });

  it('mends a folder link deleted by hand, and gc frees a version nothing shows', async () => {
    const v1 = await version('v1', 1);
    await pull({ source: store, ref: 'v1', root: cache, subdir: 'm' });
    const versionDir = await shown();
    await rm(join(cache, 'm'));
    const mended = await pull({ source: store, ref: 'v1', root: cache, subdir: 'm' });
    expect(mended.fetchedBytes).toBe(0);
    expect(await shown()).toBe(versionDir);
    expect(await differingFiles(join(cache, 'm'), v1)).toEqual([]);
    // A stray version folder (a crash between building and recording) goes at the next gc.
    await mkdir(join(cache, '.ferry', 'trees', '0123456789abcdef', 'x'), { recursive: true });
    expect((await gc({ root: cache })).removedVersions).toBe(1);
    expect(await trees()).toEqual([basename(versionDir)]);
  });
});

/**
 * A child process reading every telling file of `folder` over and over, each round from
 * the folder resolved once (as a process that opens a model's folder and loads it does),
 * and counting rounds that saw files of both versions.
 */
function readWhileSwitching(folder: string, telling: Record<string, string[]>) {
  const script = `
    const { readFileSync, realpathSync } = require('node:fs');
    const { createHash } = require('node:crypto');
    const { join } = require('node:path');
    const [folder, telling] = [process.argv[1], JSON.parse(process.argv[2])];
    const seen = { reads: 0, mixed: 0, versions: [], errors: [] };
    let stop = false;
    process.on('message', () => { stop = true; });
    process.send('started');
    const round = () => {
      if (stop) { process.send(seen); return; }
      try {
        const dir = realpathSync(folder);
        const versions = new Set();
        for (const [path, digests] of Object.entries(telling)) {
          const d = createHash('sha1').update(readFileSync(join(dir, path))).digest('hex');
          const v = digests.indexOf(d);
          if (v === -1) throw new Error(path + ' is neither version');
          versions.add(v);
          if (!seen.versions.includes(v)) seen.versions.push(v);
        }
        seen.reads++;
        if (versions.size > 1) seen.mixed++;
        process.send({ reads: seen.reads });
      } catch (error) {
        if (seen.errors.length < 3) seen.errors.push(String(error));
      }
      setImmediate(round);
    };
    round();
  `;
  const child = spawn(process.execPath, ['-e', script, folder, JSON.stringify(telling)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let onResult: (seen: ReaderResult) => void = () => undefined;
  let reads = 0;
  const result = new Promise<ReaderResult>((resolve) => {
    onResult = resolve;
  });
  const started = new Promise<void>((resolve) => {
    child.on('message', (message) => {
      if (message === 'started') resolve();
      else if (typeof message === 'object' && message !== null && !('mixed' in message)) {
        reads = (message as { reads: number }).reads;
      } else onResult(message as ReaderResult);
    });
  });
  return {
    started,
    /** Rounds the reader has finished so far. */
    reads: () => reads,
    stop: async () => {
      child.send('stop');
      const seen = await result;
      seen.versions.sort();
      return seen;
    },
  };
}

interface ReaderResult {
  reads: number;
  mixed: number;
  versions: number[];
  errors: string[];
}
