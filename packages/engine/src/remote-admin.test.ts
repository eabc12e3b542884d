import { readdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  differingFiles,
  makeTempDir,
  randomBytes,
  type TempDir,
  totalSize,
  writeModel,
} from '#fixtures';
import { publish } from './publish.js';
import { pull } from './pull.js';
import { gcRemote, listRefs, unpublish } from './remote-admin.js';

const MiB = 1024 * 1024;
let tmp: TempDir;
let origin: string;
let store: string;

beforeEach(async () => {
  tmp = await makeTempDir('remote-admin');
  origin = join(tmp.path, 'origin');
  store = join(tmp.path, 'store');
});
afterEach(() => tmp.remove());

/** Makes every stored object look `ageMs` old, as if published that long ago. */
async function age(ageMs: number): Promise<void> {
  const then = new Date(Date.now() - ageMs);
  for (const entry of await readdir(store, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) await utimes(join(entry.parentPath, entry.name), then, then);
  }
}

const parts = async () => (await readdir(join(store, '.ferry', 'parts', 'sha256'))).length;

describe('refs, unpublish and gc --remote', () => {
  it('lists refs, removes one, and collects only the parts no remaining ref needs', async () => {
    const v1 = await writeModel(origin, { shards: [3 * MiB] });
    await publish({ dir: origin, dest: store, ref: 'v1', partSize: MiB });
    await writeFile(join(origin, 'model-00001.safetensors'), randomBytes(3 * MiB, 42));
    await publish({ dir: origin, dest: store, ref: 'v2', partSize: MiB });
    const refs = await listRefs({ source: store });
    expect(refs.map((r) => [r.ref, r.files, r.bytes, r.layout])).toEqual([
      ['v1', v1.size, totalSize(v1), 'parts'],
      ['v2', v1.size, totalSize(v1), 'parts'],
    ]);
    // tokenizer and config are shared; the shard's 3 parts differ.
    const before = await parts();

    expect(await unpublish({ source: store, ref: 'v1' })).toBe(refs[0]?.versionId);
    await expect(unpublish({ source: store, ref: 'v1' })).rejects.toMatchObject({
      code: 'FERRY_NOT_FOUND',
    });
    // Everything is fresh: a publish may be about to use it, so nothing goes yet.
    const young = await gcRemote({ source: store });
    expect(young).toMatchObject({ refs: 1, removedParts: 0, removedManifests: 0 });
    expect(young.youngKept).toBeGreaterThan(0);

    await age(48 * 60 * 60 * 1000);
    const dry = await gcRemote({ source: store, dryRun: true });
    expect(dry).toMatchObject({ removedParts: 3, removedBytes: 3 * MiB, removedManifests: 1 });
    expect(await parts()).toBe(before);
    const collected = await gcRemote({ source: store });
    expect(collected).toMatchObject({
      removedParts: 3,
      removedBytes: 3 * MiB,
      removedManifests: 1,
    });
    expect(await parts()).toBe(before - 3);
    const result = await pull({ source: store, ref: 'v2', root: join(tmp.path, 'cache') });
    expect((await differingFiles(result.dir, v1)).sort()).toEqual(['model-00001.safetensors']);
  });

  it('a publish next to a gc never points its ref at a part the gc removed', async () => {
    const files = await writeModel(origin, { shards: [2 * MiB] });
    await publish({ dir: origin, dest: store, ref: 'v1', partSize: MiB });
    await age(48 * 60 * 60 * 1000);
    await unpublish({ source: store, ref: 'v1' });
    // v3 has v1's content: its old, unreferenced parts are not trusted to outlive a gc, so
    // they go up again, fresh, and a gc running meanwhile cannot take what v3 points at.
    let collecting: Promise<unknown> | undefined;
    const v3 = await publish({
      dir: origin,
      dest: store,
      ref: 'v3',
      partSize: MiB,
      onEvent: (e) => {
        if (e.type === 'upload-start') collecting ??= gcRemote({ source: store });
      },
    });
    await collecting;
    expect(v3.uploadedBytes).toBe(totalSize(files));
    // Once more, with nothing in flight: v3's parts are needed, nothing goes.
    expect(await gcRemote({ source: store, graceMs: 0 })).toMatchObject({ removedParts: 0 });
    const result = await pull({ source: store, ref: 'v3', root: join(tmp.path, 'cache') });
    expect(await differingFiles(result.dir, files)).toEqual([]);
  });
});
