import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeTempDir, type TempDir } from '#fixtures';
import { findCacheRoot } from './cache-root.js';
import { type PullTargetOptions, resolvePullTarget } from './pull-target.js';
import { fakeIo } from './test-io.js';

let tmp: TempDir;
beforeEach(async () => {
  tmp = await makeTempDir('pull-target');
});
afterEach(() => tmp.remove());

const notWritable = async () => false;

function target(
  options: Partial<PullTargetOptions> & { env?: Record<string, string> },
  isWritable = notWritable,
) {
  const { io } = fakeIo({ cwd: tmp.path, env: { HOME: '/home/u', ...options.env } });
  return resolvePullTarget({ command: 'pull', io, isWritable, ...options });
}

async function writeConfig(json: unknown, name = 'model.json') {
  await writeFile(join(tmp.path, name), JSON.stringify(json));
}

describe('source and ref', () => {
  it('takes the whole source from the argument, and its ref after the last @', async () => {
    expect(await target({ arg: 's3://bucket/a/b@v2', to: '/cache' })).toEqual({
      source: 's3://bucket/a/b',
      ref: 'v2',
      root: '/cache',
    });
  });

  it('resolves a local source against the working directory', async () => {
    expect((await target({ arg: 'store/m', to: 'c' })).source).toBe(join(tmp.path, 'store/m'));
  });

  it('joins the store and download_files_from, which is also the folder', async () => {
    await writeConfig({ download_files_from: 'models/llama', download_files_to: 'cache' });
    expect(await target({ source: 's3://bucket/' })).toMatchObject({
      source: 's3://bucket/models/llama',
      subdir: 'models/llama',
      root: join(tmp.path, 'cache'),
    });
  });

  it('takes the store from --source, then model.json, then FERRY_SOURCE', async () => {
    const env = { FERRY_SOURCE: 's3://env' };
    await writeConfig({ download_files_from: 'm', source: 's3://config' });
    expect((await target({ env, source: 's3://flag' })).source).toBe('s3://flag/m');
    expect((await target({ env })).source).toBe('s3://config/m');
    await writeConfig({ download_files_from: 'm' });
    expect((await target({ env })).source).toBe('s3://env/m');
  });

  it('pulls model.json’s folder at a ref given alone as @ref', async () => {
    await writeConfig({ download_files_from: 'm', source: 's3://bkt' });
    expect(await target({ arg: '@v7' })).toMatchObject({ source: 's3://bkt/m', ref: 'v7' });
  });

  it('reads --config instead of ./model.json', async () => {
    await writeConfig({ download_files_from: 'other', source: 's3://bkt' }, 'other.json');
    await writeConfig({ download_files_from: 'm', source: 's3://bkt' });
    expect((await target({ config: 'other.json' })).source).toBe('s3://bkt/other');
  });

  it('refuses --source together with a <source> argument', async () => {
    await expect(target({ arg: 's3://bkt/m', source: 's3://bkt' })).rejects.toMatchObject({
      code: 'FERRY_USAGE',
      message: expect.stringContaining('pull: --source names the store'),
    });
  });

  it('says what is missing when there is no source at all', async () => {
    await expect(target({})).rejects.toMatchObject({
      code: 'FERRY_USAGE',
      message: 'pull: no source: give one, as in `ferry pull s3://bucket/folder`',
    });
    await writeConfig({ download_files_from: 'm' });
    await expect(target({})).rejects.toMatchObject({
      code: 'FERRY_USAGE',
      message: `pull: ${join(tmp.path, 'model.json')} sets "download_files_from" but not where the store is`,
      hint: expect.stringContaining('FERRY_SOURCE'),
    });
  });

  it('refuses a malformed source URI before touching the disk', async () => {
    await expect(target({ arg: 'ftp://host/m', to: '/c' })).rejects.toMatchObject({
      code: 'FERRY_BAD_SOURCE',
    });
    await expect(target({ arg: 's3://bkt/../m', to: '/c' })).rejects.toMatchObject({
      code: 'FERRY_BAD_SOURCE',
    });
  });
});

describe('cache root', () => {
  const arg = 's3://bkt/m';

  it('prefers --to, then download_files_to, then FERRY_CACHE', async () => {
    const env = { FERRY_CACHE: '/env-cache' };
    await writeConfig({ download_files_to: '/config-cache' });
    expect((await target({ arg, env, to: '/flag' })).root).toBe('/flag');
    expect((await target({ arg, env })).root).toBe('/config-cache');
    await writeConfig({});
    expect((await target({ arg, env })).root).toBe('/env-cache');
  });

  it('falls back to /var/cache/ferry when writable, else the user cache', async () => {
    expect((await target({ arg }, async () => true)).root).toBe('/var/cache/ferry');
    expect((await target({ arg, env: { XDG_CACHE_HOME: '/xdg' } })).root).toBe('/xdg/ferry');
    expect((await target({ arg })).root).toBe('/home/u/.cache/ferry');
  });
});

describe('findCacheRoot', () => {
  it('finds the cache a folder inside it belongs to', async () => {
    await mkdir(join(tmp.path, 'cache', '.ferry'), { recursive: true });
    await mkdir(join(tmp.path, 'cache', 'a', 'b'), { recursive: true });
    expect(await findCacheRoot(join(tmp.path, 'cache', 'a', 'b'))).toBe(join(tmp.path, 'cache'));
    expect(await findCacheRoot(join(tmp.path, 'cache'))).toBe(join(tmp.path, 'cache'));
    expect(await findCacheRoot(join(tmp.path, 'elsewhere'))).toBe(join(tmp.path, 'elsewhere'));
  });
});
