import { execFileSync } from 'node:child_process';
import { mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { type PullResult, publish } from '@ferry/engine';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeTempDir, type TempDir, writeModel } from '#fixtures';
import { cleanEnv, doneResult, jsonLines, runFerry } from './ferry-process.js';

const MiB = 1024 * 1024;

let tmp: TempDir;
let env: Record<string, string>;

beforeEach(async () => {
  tmp = await makeTempDir('e2e-image');
  env = cleanEnv(tmp.path);
});
afterEach(() => tmp.remove());

/** Every regular file under `dir`, with its stat. */
async function walk(
  dir: string,
): Promise<Array<{ path: string; mtimeMs: number; ino: number; uid: number }>> {
  const out: Array<{ path: string; mtimeMs: number; ino: number; uid: number }> = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    const st = await stat(path);
    out.push({ path: path.slice(dir.length + 1), mtimeMs: st.mtimeMs, ino: st.ino, uid: st.uid });
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : 1));
}

describe('a baked cache in a container image', () => {
  it('survives a GNU tar layer round trip (whole-second mtimes, new inodes, another owner): no file read, two requests', async () => {
    const model = join(tmp.path, 'model');
    const store = join(tmp.path, 'store', 'm');
    await writeModel(model, { shards: [3 * MiB, MiB + 7], smallFiles: 5 });
    // In this process: the test is about `ferry bake`, `verify` and `pull`, each spawned.
    await publish({ dir: model, dest: store, ref: 'v1' });
    const baked = join(tmp.path, 'baked');
    expect((await runFerry(['bake', `${store}@v1`, '--to', baked], { env })).code).toBe(0);

    // What `COPY --from=builder` or an OCI layer does to the tree: GNU tar keeps whole seconds.
    const layer = join(tmp.path, 'layer.tar');
    execFileSync('tar', [
      '--format=gnu',
      '--owner=65534',
      '--group=65534',
      '-C',
      baked,
      '-cf',
      layer,
      '.',
    ]);
    const image = join(tmp.path, 'image');
    await mkdir(image);
    execFileSync('tar', ['-C', image, '-xf', layer]);
    const before = await walk(baked);
    const after = await walk(image);
    expect(after.map((f) => f.path)).toEqual(before.map((f) => f.path));
    const shard = (files: typeof before) =>
      files.find((f) => f.path.endsWith('model-00001.safetensors'));
    expect(shard(after)?.mtimeMs).toBe(Math.floor((shard(before)?.mtimeMs ?? 0) / 1000) * 1000);
    expect(shard(after)?.ino).not.toBe(shard(before)?.ino);
    expect(shard(after)?.uid).toBe(65534);

    const verify = await runFerry(['verify', image], { env });
    expect(verify.stdout + verify.stderr).not.toContain('modified');
    expect(verify.code).toBe(0);
    const warm = await runFerry(['pull', `${store}@v1`, '--to', image, '--json'], { env });
    expect(warm.code).toBe(0);
    expect(doneResult<PullResult>(warm.stdout)).toMatchObject({ fetchedBytes: 0, requests: 1 });
    const plan = jsonLines(warm.stdout).find((e) => e.type === 'plan');
    expect(plan).toMatchObject({ plan: { hashed: { files: 0 } } });
  });
});
