import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createManifest, encodeManifest, parseManifest, versionIdOf } from '@ferry/manifest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { differingFiles, makeTempDir, randomBytes, type TempDir, writeModel } from '#fixtures';
import { type PublishEvent, publish } from './publish.js';
import { pull } from './pull.js';

const MiB = 1024 * 1024;

/** Every file under `dir` with its bytes, as `differingFiles` compares them. */
async function snapshot(dir: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    files.set(path.slice(dir.length + 1), await readFile(path));
  }
  return files;
}
let tmp: TempDir;
beforeEach(async () => {
  tmp = await makeTempDir('publish');
});
afterEach(() => tmp.remove());

describe('publish', () => {
  it('uploads only what changed, and a republish of the same folder uploads nothing', async () => {
    const origin = join(tmp.path, 'origin');
    const dest = join(tmp.path, 'store');
    const files = await writeModel(origin, { shards: [2 * MiB], smallFiles: 3 });
    const first = await publish({ dir: origin, dest, ref: 'v1', partSize: MiB });
    // Every file but the empty one, which is its manifest entry alone.
    expect(first.uploadedFiles).toBe(files.size - 1);
    const again = await publish({ dir: origin, dest, ref: 'v2', partSize: MiB });
    expect(again.uploadedFiles).toBe(0);
    expect(again.versionId).toBe(first.versionId);
  });

  it('reports hashing, then uploading, as progress events that end with every byte counted', async () => {
    const origin = join(tmp.path, 'origin');
    const dest = join(tmp.path, 'store');
    await writeModel(origin, { shards: [3 * MiB], smallFiles: 2 });
    const events: PublishEvent[] = [];
    const result = await publish({
      dir: origin,
      dest,
      ref: 'v1',
      partSize: MiB,
      onEvent: (e) => events.push(e),
    });
    const progress = events.filter((e) => e.type === 'progress');
    const last = (phase: 'hash' | 'upload') => progress.filter((e) => e.phase === phase).at(-1);
    expect(last('hash')).toMatchObject({
      transferredBytes: result.bytes,
      totalBytes: result.bytes,
      etaSeconds: 0,
      active: [],
    });
    expect(last('upload')).toMatchObject({
      transferredBytes: result.uploadedBytes,
      totalBytes: result.uploadedBytes,
      active: [],
    });
    // The hash phase ends before the first upload starts.
    const hashed = events.findIndex((e) => e.type === 'hashed');
    expect(events.indexOf(last('hash') as PublishEvent)).toBeLessThan(hashed);
    expect(events.findIndex((e) => e.type === 'upload-start')).toBeGreaterThan(hashed);

    // Nothing left to upload: the upload phase counts zero of zero.
    const again: PublishEvent[] = [];
    await publish({ dir: origin, dest, ref: 'v2', partSize: MiB, onEvent: (e) => again.push(e) });
    expect(again.filter((e) => e.type === 'progress' && e.phase === 'upload').at(-1)).toMatchObject(
      { transferredBytes: 0, totalBytes: 0 },
    );
  });

  it('resumes an interrupted publish: files already uploaded are not sent again', async () => {
    const origin = join(tmp.path, 'origin');
    const dest = join(tmp.path, 'store');
    const files = await writeModel(origin, { shards: [MiB, MiB], smallFiles: 4 });
    const controller = new AbortController();
    const uploaded: string[] = [];
    await expect(
      publish({
        dir: origin,
        dest,
        ref: 'v1',
        partSize: MiB,
        concurrency: 1,
        signal: controller.signal,
        onEvent: (e) => {
          if (e.type !== 'upload-done') return;
          uploaded.push(e.path);
          if (uploaded.length === 2) controller.abort(new Error('stop'));
        },
      }),
    ).rejects.toMatchObject({ name: 'AbortError' });

    const resumed = await publish({ dir: origin, dest, ref: 'v1', partSize: MiB });
    expect(resumed.uploadedFiles).toBe(files.size - 1 - 2);
    const result = await pull({ source: dest, ref: 'v1', root: join(tmp.path, 'cache') });
    expect(await differingFiles(result.dir, files)).toEqual([]);
  });

  it('keeps every version pullable: v1…v5 with overlapping changes, each byte-exact in a fresh root', async () => {
    const origin = join(tmp.path, 'origin');
    const dest = join(tmp.path, 'store');
    await writeModel(origin, { shards: [4 * MiB, 2 * MiB] });
    const shard = join(origin, 'model-00001.safetensors');
    const versions: Array<Map<string, Buffer>> = [];
    const uploaded: number[] = [];
    for (let v = 1; v <= 5; v++) {
      if (v > 1) {
        // Each version rewrites 1 MiB inside the shard, where the previous one did or next to it.
        const bytes = await readFile(shard);
        randomBytes(MiB, 100 + v).copy(bytes, ((v % 3) + 0.5) * MiB);
        await writeFile(shard, bytes);
        if (v === 4) await rm(join(origin, 'config.json'));
        if (v === 5) await writeFile(join(origin, 'config.json'), '{"back": true}');
      }
      versions.push(await snapshot(origin));
      const result = await publish({ dir: origin, dest, ref: `v${v}`, partSize: MiB });
      uploaded.push(result.uploadedBytes);
    }
    // After the first, a version uploads only the parts it changed: two of 1 MiB at most.
    for (const bytes of uploaded.slice(1)) expect(bytes).toBeLessThanOrEqual(2 * MiB + 64);
    for (let v = 1; v <= 5; v++) {
      const root = join(tmp.path, `fresh-${v}`);
      const result = await pull({ source: dest, ref: `v${v}`, root });
      expect(
        await differingFiles(result.dir, versions[v - 1] as Map<string, Buffer>),
        `v${v}`,
      ).toEqual([]);
    }
    // Rolling back in place: the root at v5 goes back to v1.
    const back = await pull({ source: dest, ref: 'v1', root: join(tmp.path, 'fresh-5') });
    expect(await differingFiles(back.dir, versions[0] as Map<string, Buffer>)).toEqual([]);
  });

  it('a publish killed midway leaves every older ref pullable', async () => {
    const origin = join(tmp.path, 'origin');
    const dest = join(tmp.path, 'store');
    const v1 = await writeModel(origin, { shards: [3 * MiB] });
    await publish({ dir: origin, dest, ref: 'v1', partSize: MiB });
    // v2 changes every byte of the shard; its publish stops after one part.
    await writeFile(join(origin, 'model-00001.safetensors'), randomBytes(3 * MiB, 77));
    const controller = new AbortController();
    await expect(
      publish({
        dir: origin,
        dest,
        ref: 'latest',
        partSize: MiB,
        concurrency: 1,
        signal: controller.signal,
        onEvent: (e) => {
          if (e.type === 'upload-start') controller.abort(new Error('killed'));
        },
      }),
    ).rejects.toMatchObject({ name: 'AbortError' });
    const result = await pull({ source: dest, ref: 'v1', root: join(tmp.path, 'fresh') });
    expect(await differingFiles(result.dir, v1)).toEqual([]);
  });

  it('pulls a prefix published before content addressing, and a new publish leaves it intact', async () => {
    const origin = join(tmp.path, 'origin');
    const dest = join(tmp.path, 'store');
    const files = await writeModel(origin, { shards: [2 * MiB] });
    const v2 = await publish({ dir: origin, dest, ref: 'tmp', partSize: MiB });
    // The old layout, as an older ferry left it: the files at their paths, no parts.
    const text = await readFile(join(dest, '.ferry', 'manifests', `${v2.versionId}.json`), 'utf8');
    const old = createManifest(parseManifest(text).entries);
    const oldId = versionIdOf(old);
    await writeFile(join(dest, '.ferry', 'manifests', `${oldId}.json`), encodeManifest(old));
    await writeFile(join(dest, '.ferry', 'refs', 'old'), oldId);
    for (const [path, bytes] of files) {
      await mkdir(dirname(join(dest, path)), { recursive: true });
      await writeFile(join(dest, path), bytes);
    }
    await rm(join(dest, '.ferry', 'parts'), { recursive: true });
    const pulled = await pull({ source: dest, ref: 'old', root: join(tmp.path, 'a') });
    expect(await differingFiles(pulled.dir, files)).toEqual([]);

    await writeFile(join(origin, 'model-00001.safetensors'), randomBytes(2 * MiB, 5));
    await publish({ dir: origin, dest, ref: 'new', partSize: MiB });
    const again = await pull({ source: dest, ref: 'old', root: join(tmp.path, 'b') });
    expect(await differingFiles(again.dir, files)).toEqual([]);
  });

  it('publishes paths that differ only by case, with a warning naming them', async () => {
    const origin = join(tmp.path, 'origin');
    await mkdir(origin, { recursive: true });
    await writeFile(join(origin, 'Model.bin'), 'upper');
    await writeFile(join(origin, 'model.bin'), 'lower');
    const warnings: string[] = [];
    await publish({
      dir: origin,
      dest: join(tmp.path, 'store'),
      ref: 'v1',
      onEvent: (e) => {
        if (e.type === 'warning') warnings.push(e.message);
      },
    });
    expect(warnings).toEqual([
      expect.stringMatching(
        /"(Model|model)\.bin" and "(Model|model)\.bin" differ only by case: this version cannot be pulled onto a case-insensitive file system/,
      ),
    ]);
    const pulled = await pull({
      source: join(tmp.path, 'store'),
      ref: 'v1',
      root: join(tmp.path, 'c'),
    });
    expect(await readFile(join(pulled.dir, 'model.bin'), 'utf8')).toBe('lower');
  });

  it('names a folder that does not exist', async () => {
    await expect(
      publish({ dir: join(tmp.path, 'nope'), dest: join(tmp.path, 'store'), ref: 'v1' }),
    ).rejects.toThrow(/nope is not a directory/);
  });
});
