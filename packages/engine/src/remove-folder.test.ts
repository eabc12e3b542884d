import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CacheIndex } from '@ferry/manifest/store';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeTempDir, type TempDir, writeModel } from '#fixtures';
import { gc } from './gc.js';
import { publish } from './publish.js';
import { pull } from './pull.js';
import { removeFolder } from './remove-folder.js';
import { status } from './status.js';
import { verify } from './verify.js';

const MiB = 1024 * 1024;

let tmp: TempDir;
let store: string;
let cache: string;

beforeEach(async () => {
  tmp = await makeTempDir('rm');
  store = join(tmp.path, 'store');
  cache = join(tmp.path, 'cache');
  await writeModel(join(tmp.path, 'model'), { shards: [MiB], smallFiles: 2 });
  await publish({ dir: join(tmp.path, 'model'), dest: store, ref: 'v1', partSize: MiB });
  await pull({ source: store, ref: 'v1', root: cache, subdir: 'a/llama' });
  await pull({ source: store, ref: 'v1', root: cache, subdir: 'qwen' });
});
afterEach(() => tmp.remove());

async function statPaths(): Promise<string[]> {
  const db = await CacheIndex.open(join(cache, '.ferry', 'db'));
  try {
    return [...(await db.getStats('')).keys()];
  } finally {
    await db.close();
  }
}

describe('removeFolder', () => {
  it("removes a folder's files and records, keeping files someone changed or added", async () => {
    await writeFile(join(cache, 'a', 'llama', 'config.json'), '{"edited": true}');
    await writeFile(join(cache, 'a', 'llama', 'notes.txt'), 'mine');
    const result = await removeFolder({ root: cache, dir: 'a/llama' });
    expect(result.kept).toEqual(['a/llama/config.json']);
    expect(result.removedFiles).toBeGreaterThan(3);
    expect(result.freedBytes).toBeGreaterThan(MiB);
    expect((await readdir(join(cache, 'a', 'llama'))).sort()).toEqual(['config.json', 'notes.txt']);
    expect(await readFile(join(cache, 'a', 'llama', 'notes.txt'), 'utf8')).toBe('mine');
    expect((await status({ root: cache })).trees.map((t) => t.dir)).toEqual(['qwen']);
    expect(await verify({ root: cache })).toMatchObject({ problems: [] });
    expect((await statPaths()).filter((p) => p.startsWith('a/'))).toEqual([]);
    expect((await statPaths()).length).toBeGreaterThan(3);
  });

  it('removes empty folders up to the one named, and never a folder above it', async () => {
    await writeFile(join(cache, 'a', 'keep.txt'), 'mine');
    await removeFolder({ root: cache, dir: 'a/llama/' });
    expect(await readdir(join(cache, 'a'))).toEqual(['keep.txt']);
  });

  it('names the folders the cache holds when asked for another', async () => {
    await expect(removeFolder({ root: cache, dir: 'llama' })).rejects.toMatchObject({
      code: 'FERRY_NOT_FOUND',
      message: expect.stringContaining('holds no folder "llama"'),
      hint: expect.stringContaining('a/llama, qwen'),
    });
    await expect(removeFolder({ root: cache, dir: '../x' })).rejects.toMatchObject({
      code: 'FERRY_USAGE',
    });
  });
});

describe('a folder deleted by hand', () => {
  it('is reported once by status and verify, and gc (or removeFolder) forgets it', async () => {
    await rm(join(cache, 'a', 'llama'), { recursive: true });
    expect((await status({ root: cache })).trees).toMatchObject([
      { dir: 'a/llama', missing: true },
      { dir: 'qwen' },
    ]);
    expect((await status({ root: cache })).trees[1]?.missing).toBeUndefined();
    expect((await verify({ root: cache })).problems).toEqual([
      { path: 'a/llama', problem: 'folder-missing', detail: expect.stringContaining('ferry rm') },
    ]);
    const cleaned = await gc({ root: cache });
    expect(cleaned.removedFolders).toEqual(['a/llama']);
    expect(cleaned.removedRecords).toBeGreaterThan(3);
    // Its version's files went with it: only qwen's version folder is left.
    expect(cleaned.removedVersions).toBe(1);
    expect(await readdir(join(cache, '.ferry', 'trees'))).toHaveLength(1);
    expect(await verify({ root: cache })).toMatchObject({ problems: [] });
    expect((await status({ root: cache })).trees.map((t) => t.dir)).toEqual(['qwen']);

    // Deleting the folder by hand deletes the link to its version: ferry rm frees the files.
    await rm(join(cache, 'qwen'), { recursive: true });
    const removed = await removeFolder({ root: cache, dir: 'qwen' });
    expect(removed).toMatchObject({ kept: [] });
    expect(removed.removedFiles).toBeGreaterThan(0);
    expect(await statPaths()).toEqual([]);
    expect(await readdir(join(cache, '.ferry', 'trees'))).toEqual([]);
  });
});
