import { lstat, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeTempDir, type TempDir } from '#fixtures';
import { ensureRealDirs, type KnownDirs, realParents } from './real-dirs.js';

let tmp: TempDir;
beforeEach(async () => {
  tmp = await makeTempDir('real-dirs');
});
afterEach(() => tmp.remove());

describe('ensureRealDirs and realParents', () => {
  it('makes missing folders one by one and remembers them', async () => {
    const known: KnownDirs = new Map();
    await ensureRealDirs(tmp.path, 'a/b/c', known);
    expect((await lstat(join(tmp.path, 'a', 'b', 'c'))).isDirectory()).toBe(true);
    expect([...known.keys()]).toEqual(['a', 'a/b', 'a/b/c'].map((d) => join(tmp.path, d)));
    expect(await realParents(tmp.path, 'a/b/c/file.bin')).toBe(true);
  });

  it('gives every file that arrives at once its folder, and every one the refusal of a file in the way', async () => {
    const known: KnownDirs = new Map();
    await Promise.all(Array.from({ length: 16 }, () => ensureRealDirs(tmp.path, 'x/y', known)));
    expect((await lstat(join(tmp.path, 'x', 'y'))).isDirectory()).toBe(true);
    expect(known.size).toBe(2);
    await writeFile(join(tmp.path, 'f'), 'x');
    const inTheWay = await Promise.allSettled(
      Array.from({ length: 4 }, () => ensureRealDirs(tmp.path, 'f/z', known)),
    );
    expect(inTheWay.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected', 'rejected']);
    expect(known.size).toBe(3);
  });

  it('refuses a link or a file on the way, naming it', async () => {
    const outside = join(tmp.path, 'outside');
    await mkdir(join(tmp.path, 'root', 'a'), { recursive: true });
    await mkdir(outside);
    await symlink(outside, join(tmp.path, 'root', 'a', 'link'));
    await writeFile(join(tmp.path, 'root', 'a', 'file'), 'x');
    const root = join(tmp.path, 'root');
    await expect(ensureRealDirs(root, 'a/link/b', new Map())).rejects.toMatchObject({
      code: 'FERRY_IO',
      message: `${join(root, 'a', 'link')} is a symbolic link: ferry does not write through links`,
    });
    await expect(ensureRealDirs(root, 'a/file/b', new Map())).rejects.toMatchObject({
      code: 'FERRY_IO',
      message: `${join(root, 'a', 'file')} is in the way: a file where a folder goes`,
    });
    expect(await realParents(root, 'a/link/x.bin')).toBe(false);
    expect(await realParents(root, 'a/x.bin')).toBe(true);
  });

  it('lets the root itself be a link', async () => {
    await mkdir(join(tmp.path, 'real'));
    await symlink(join(tmp.path, 'real'), join(tmp.path, 'root'));
    await ensureRealDirs(join(tmp.path, 'root'), 'a', new Map());
    expect((await lstat(join(tmp.path, 'real', 'a'))).isDirectory()).toBe(true);
  });
});
