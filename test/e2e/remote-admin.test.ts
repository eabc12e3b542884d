import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { publish } from '@ferry/engine';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeTempDir, randomBytes, type TempDir, writeModel } from '#fixtures';
import { cleanEnv, doneResult, runFerry } from './ferry-process.js';

const MiB = 1024 * 1024;
let tmp: TempDir;
let env: Record<string, string>;

beforeEach(async () => {
  tmp = await makeTempDir('e2e-remote');
  env = cleanEnv(tmp.path);
});
afterEach(() => tmp.remove());

describe('refs, unpublish, gc --remote', () => {
  it('lists refs, removes one, collects what only it needed, and the other still pulls', async () => {
    const model = join(tmp.path, 'model');
    const store = join(tmp.path, 'store', 'm');
    await writeModel(model, { shards: [2 * MiB] });
    // Published in this process: `ferry publish` has its own end-to-end tests (pull-cycle).
    await publish({ dir: model, dest: store, ref: 'v1', partSize: MiB });
    await writeFile(join(model, 'model-00001.safetensors'), randomBytes(2 * MiB, 3));
    await publish({ dir: model, dest: store, ref: 'v2', partSize: MiB });

    const refs = await runFerry(['refs', store, '--json'], { env });
    expect(
      doneResult<Array<{ ref: string; layout: string }>>(refs.stdout).map((r) => r.ref),
    ).toEqual(['v1', 'v2']);
    const text = await runFerry(['refs', store], { env });
    expect(text.stdout).toMatch(
      /^REF +VERSION +PUBLISHED +FILES +SIZE +LAYOUT\nv1 +sha256:\w{12} /,
    );

    expect((await runFerry(['unpublish', `${store}@v1`], { env })).code).toBe(0);
    const gone = await runFerry(['pull', `${store}@v1`, '--to', join(tmp.path, 'c1')], { env });
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain('ref "v1" is not published');

    const gc = await runFerry(['gc', '--remote', store, '--grace', '0', '--json'], { env });
    expect(doneResult(gc.stdout)).toMatchObject({
      refs: 1,
      removedParts: 2,
      removedBytes: 2 * MiB,
      removedManifests: 1,
    });
    const pulled = await runFerry(['pull', `${store}@v2`, '--to', join(tmp.path, 'c2'), '--json'], {
      env,
    });
    expect(pulled.code).toBe(0);
  });

  it('refuses --grace without --remote and a ref-less unpublish, as usage errors', async () => {
    expect((await runFerry(['gc', '--grace', '1h'], { env })).code).toBe(2);
    expect((await runFerry(['unpublish', join(tmp.path, 'store')], { env })).code).toBe(2);
  });
});
