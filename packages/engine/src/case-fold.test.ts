import { mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError } from '@ferry/manifest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeTempDir, type TempDir } from '#fixtures';
import { checkFoldedPaths, foldsCase } from './case-fold.js';
import { publish } from './publish.js';
import { pull } from './pull.js';

let tmp: TempDir;
beforeEach(async () => {
  tmp = await makeTempDir('case-fold');
});
afterEach(() => tmp.remove());

/** A root whose `.FERRY` resolves to its `.ferry`, as on a file system that folds case. */
async function foldingRoot(root: string): Promise<void> {
  await mkdir(join(root, '.ferry'), { recursive: true });
  await symlink('.ferry', join(root, '.FERRY'));
}

describe('checkFoldedPaths', () => {
  const paths = ['a/config.json', 'a/Model.bin', 'a/model.bin'];

  it('lets paths that differ by case through on a root that keeps case', () => {
    expect(() => checkFoldedPaths(paths, false, '/cache')).not.toThrow();
  });

  it('refuses them on a root that folds case, naming both paths and the root, with a hint', () => {
    let caught: unknown;
    try {
      checkFoldedPaths(paths, true, '/cache');
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(FerryError);
    const error = caught as FerryError;
    expect(error.code).toBe('FERRY_BAD_PATH');
    expect(error.message).toBe(
      '/cache is on a case-insensitive file system, and the version\'s paths "a/Model.bin" and "a/model.bin" differ only by case',
    );
    expect(error.hint).toMatch(/--exclude/);
  });

  it('lets a version without such paths through on a root that folds case', () => {
    expect(() => checkFoldedPaths(['a/x', 'a/y'], true, '/cache')).not.toThrow();
  });
});

describe('foldsCase', () => {
  it('is false for a root without .ferry, and for one that keeps case', async () => {
    expect(await foldsCase(tmp.path)).toBe(false);
    await mkdir(join(tmp.path, '.ferry'));
    expect(await foldsCase(tmp.path)).toBe(false);
  });

  it('is true when .FERRY is the .ferry folder', async () => {
    await foldingRoot(tmp.path);
    expect(await foldsCase(tmp.path)).toBe(true);
  });
});

describe('pull onto a root that folds case', () => {
  it('refuses a version whose paths differ only by case, before writing any file', async () => {
    const origin = join(tmp.path, 'origin');
    await mkdir(origin);
    await writeFile(join(origin, 'Model.bin'), 'upper');
    await writeFile(join(origin, 'model.bin'), 'lower');
    await publish({ dir: origin, dest: join(tmp.path, 'store'), ref: 'v1' });
    const root = join(tmp.path, 'cache');
    await foldingRoot(root);
    const error = await pull({ source: join(tmp.path, 'store'), ref: 'v1', root }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(FerryError);
    expect((error as FerryError).code).toBe('FERRY_BAD_PATH');
    expect((error as FerryError).message).toMatch(
      /"Model\.bin" and "model\.bin" differ only by case/,
    );
    expect((await readdir(root)).sort()).toEqual(['.FERRY', '.ferry']);
    // Leaving one of them out makes the version fit.
    const pulled = await pull({
      source: join(tmp.path, 'store'),
      ref: 'v1',
      root,
      exclude: ['Model.bin'],
    });
    expect(pulled.files).toBe(1);
  });
});
