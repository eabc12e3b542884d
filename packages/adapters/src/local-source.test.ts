import { mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { makeTempDir, type TempDir } from '#fixtures';
import { LocalSource } from './local-source.js';

async function keys(source: LocalSource, prefix?: string): Promise<string[]> {
  const out: string[] = [];
  for await (const info of source.list(prefix)) out.push(info.key);
  return out;
}

describe('local source', () => {
  let outside: TempDir;
  let root: TempDir;

  beforeAll(async () => {
    outside = await makeTempDir('outside');
    root = await makeTempDir('local');
    await writeFile(join(outside.path, 'secret'), 'secret');
    await mkdir(join(root.path, 'real'));
    await writeFile(join(root.path, 'real', 'f.txt'), 'inside');
  });
  afterAll(async () => {
    await root.remove();
    await outside.remove();
  });

  it('follows symlinks that stay inside the root', async () => {
    await symlink(join(root.path, 'real', 'f.txt'), join(root.path, 'link.txt'));
    await symlink(join(root.path, 'real'), join(root.path, 'linkdir'));
    const source = new LocalSource(root.path);
    expect(await source.readText('link.txt')).toBe('inside');
    expect(await keys(source)).toEqual(['link.txt', 'linkdir/f.txt', 'real/f.txt']);
  });

  it('refuses symlinks that resolve outside the root, in reads and listings', async () => {
    const dir = await makeTempDir('escape');
    onTestFinished(() => dir.remove());
    await symlink(join(outside.path, 'secret'), join(dir.path, 'escape'));
    const source = new LocalSource(dir.path);
    await expect(source.readText('escape')).rejects.toMatchObject({
      code: 'FERRY_BAD_PATH',
      key: 'escape',
    });
    await expect(source.stat('escape')).rejects.toMatchObject({ code: 'FERRY_BAD_PATH' });
    await expect(keys(source)).rejects.toMatchObject({
      code: 'FERRY_BAD_PATH',
      key: 'escape',
      message: expect.stringMatching(/outside the source root/),
    });
  });

  it('writes through a temp file and rename, leaving nothing behind on failure', async () => {
    const dir = await makeTempDir('write');
    onTestFinished(() => dir.remove());
    const source = new LocalSource(dir.path);
    await source.write('d/e/f.bin', Readable.from([Buffer.from('abc')]), { size: 3 });
    await expect(
      source.write('d/e/g.bin', Readable.from([Buffer.from('ab')]), { size: 3 }),
    ).rejects.toMatchObject({
      code: 'FERRY_INTEGRITY',
    });
    expect(await readdir(join(dir.path, 'd', 'e'))).toEqual(['f.bin']);
  });

  it('creates a destination root that does not exist yet on first write', async () => {
    const dir = await makeTempDir('write-new-root');
    onTestFinished(() => dir.remove());
    const source = new LocalSource(join(dir.path, 'new', 'root'));
    await source.writeText('.ferry/refs/v1', 'x');
    expect(await source.readText('.ferry/refs/v1')).toBe('x');
  });

  it('at the file system root, reads and writes any path (a store above the destination)', async () => {
    const source = new LocalSource('/');
    const key = join(root.path, 'from-slash', 'x.txt').slice(1);
    await source.writeText(key, 'x');
    expect(await source.readText(key)).toBe('x');
    expect((await source.stat(join(root.path, 'real', 'f.txt').slice(1))).size).toBe(6);
  });

  it('refuses to write through a symlinked directory that leads outside the root', async () => {
    const dir = await makeTempDir('write-escape');
    onTestFinished(() => dir.remove());
    await symlink(outside.path, join(dir.path, 'out'));
    const source = new LocalSource(dir.path);
    await expect(source.writeText('out/new/x.txt', 'x')).rejects.toMatchObject({
      code: 'FERRY_BAD_PATH',
    });
    expect(await readdir(outside.path)).toEqual(['secret']);
  });

  it('reports a missing root as FERRY_NOT_FOUND with a hint', async () => {
    const source = new LocalSource(join(root.path, 'does-not-exist'));
    await expect(keys(source)).rejects.toMatchObject({
      code: 'FERRY_NOT_FOUND',
      hint: expect.any(String),
    });
  });
});
