import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  makeTempDir,
  publishByHand,
  startFaultServer,
  type TempDir,
  treeSnapshot,
  writeModel,
} from '#fixtures';
import { cleanEnv, jsonLines, runFerry } from '../e2e/ferry-process.js';

/**
 * Inputs shaped by an attacker, run through the real CLI as root would run it. Each test
 * snapshots everything outside the cache root (a sibling folder standing for the rest of
 * the machine) and checks it is untouched afterwards.
 */

const MiB = 1024 * 1024;
let tmp: TempDir;
let env: Record<string, string>;
let outside: string;
let store: string;
let cache: string;

beforeEach(async () => {
  tmp = await makeTempDir('hostile');
  env = cleanEnv(tmp.path);
  outside = join(tmp.path, 'outside');
  store = join(tmp.path, 'store');
  cache = join(tmp.path, 'cache');
  await mkdir(outside);
  await writeFile(join(outside, 'precious.txt'), 'keep me');
});
afterEach(() => tmp.remove());

const D = `sha256:${'0'.repeat(64)}`;

/**
 * Pulls `ref` of the store served over HTTP at its root, so the folder is the cache root
 * itself (as a bucket-root source is), and returns the error line.
 */
async function pullExpectingError(ref: string): Promise<Record<string, unknown>> {
  const server = await startFaultServer({ root: store });
  try {
    const run = await runFerry(['pull', `${server.url}/@${ref}`, '--to', cache, '--json'], { env });
    expect(run.code, run.stdout + run.stderr).toBe(1);
    return jsonLines(run.stdout).at(-1) as Record<string, unknown>;
  } finally {
    await server.close();
  }
}

describe('hostile manifests and trees', () => {
  it.each([
    [
      'a path into the cache store',
      [{ digest: D, path: '.ferry/db/CURRENT', size: 30 }],
      'FERRY_MANIFEST_INVALID',
    ],
    [
      'the store path in other case',
      [{ digest: D, path: '.FERRY/db/CURRENT', size: 30 }],
      'FERRY_MANIFEST_INVALID',
    ],
    [
      'a parent-directory path',
      [{ digest: D, path: '../outside/precious.txt', size: 7 }],
      'FERRY_MANIFEST_INVALID',
    ],
    ['an absolute path', [{ digest: D, path: '/etc/passwd', size: 7 }], 'FERRY_MANIFEST_INVALID'],
    [
      'a size beyond any store',
      [{ digest: D, path: 'huge.bin', size: 2 ** 53 - 1 }],
      'FERRY_MANIFEST_INVALID',
    ],
    [
      'a size no disk here holds',
      [{ digest: D, path: 'big.bin', size: 4 * 2 ** 40 }],
      'FERRY_NO_SPACE',
    ],
  ])('refuses %s and touches nothing outside the root', async (_name, entries, code) => {
    await publishByHand(store, 'evil', entries);
    const before = await treeSnapshot(outside);
    expect(await pullExpectingError('evil')).toMatchObject({ type: 'error', code });
    expect(await treeSnapshot(outside)).toEqual(before);
  });

  it('refuses a ref of gigabytes without reading it', async () => {
    await mkdir(join(store, '.ferry', 'refs'), { recursive: true });
    await writeFile(join(store, '.ferry', 'refs', 'long'), Buffer.alloc(16 * MiB, 0x61));
    expect(await pullExpectingError('long')).toMatchObject({ code: 'FERRY_BAD_RESPONSE' });
  });

  it('never writes through a folder of the tree that links outside', async () => {
    const model = join(tmp.path, 'model');
    await writeModel(model, { shards: [MiB] });
    expect((await runFerry(['publish', model, store, '--ref', 'v1'], { env })).code).toBe(0);
    await mkdir(cache);
    // Planted before the first pull: the tokenizer folder is a link to the rest of the machine.
    await mkdir(join(cache, 'store'));
    await symlink(outside, join(cache, 'store', 'tokenizer'));
    const before = await treeSnapshot(outside);
    const run = await runFerry(['pull', `${store}@v1`, '--to', cache, '--json'], { env });
    expect(run.code).toBe(1);
    expect(jsonLines(run.stdout).at(-1)).toMatchObject({ code: 'FERRY_IO' });
    expect(await treeSnapshot(outside)).toEqual(before);
  });

  it('refuses a second folder that would contain the first', async () => {
    const model = join(tmp.path, 'model');
    await writeModel(model, { shards: [MiB] });
    expect(
      (await runFerry(['publish', model, join(store, 'llama'), '--ref', 'v1'], { env })).code,
    ).toBe(0);
    await publishByHand(store, 'root', [{ digest: D, path: 'llama/config.json', size: 7 }]);
    expect(
      (await runFerry(['pull', `${join(store, 'llama')}@v1`, '--to', cache], { env })).code,
    ).toBe(0);
    const config = await treeSnapshot(join(cache, 'llama'));
    expect(await pullExpectingError('root')).toMatchObject({ code: 'FERRY_OVERLAP' });
    expect(await treeSnapshot(join(cache, 'llama'))).toEqual(config);
  });
});
