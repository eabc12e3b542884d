import { execFileSync } from 'node:child_process';
import { mkdir, readdir, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isFerryError } from '@ferry/manifest';
import { afterEach, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import {
  differingFiles,
  type FaultServer,
  makeTempDir,
  partObjectKey,
  publishByHand,
  randomBytes,
  startFaultServer,
  type TempDir,
  totalSize,
  writeModel,
} from '#fixtures';
import { gc } from './gc.js';
import { publish } from './publish.js';
import { pull, pullIter } from './pull.js';
import { resume } from './resume.js';
import { status } from './status.js';
import type { PullEvent } from './types.js';
import { verify } from './verify.js';

const MiB = 1024 * 1024;
const partSize = MiB;

let tmp: TempDir;
let origin: string;
let store: string;
let cache: string;

beforeEach(async () => {
  tmp = await makeTempDir('pull');
  origin = join(tmp.path, 'origin');
  store = join(tmp.path, 'store', 'models', 'm');
  cache = join(tmp.path, 'cache');
  // `store` does not exist yet: publishing creates it.
});
afterEach(() => tmp.remove());

/**
 * Publishes a model of one 16 MiB shard (two 8 MiB parts), serves it from a fault server
 * (closed when the test finishes), pulls it with the second part stalled after 5 MiB, and
 * stops the pull once everything else is in.
 */
async function pullCutShort(): Promise<{
  files: Map<string, Buffer>;
  server: FaultServer;
  shard: string;
  secondPart: string;
}> {
  const files = await writeModel(origin, { shards: [16 * MiB] });
  await publish({ dir: origin, dest: store, ref: 'v1', partSize: 8 * MiB });
  const server = await startFaultServer({ root: store });
  onTestFinished(() => server.close());
  const shard = 'model-00001.safetensors';
  const secondPart = await partObjectKey(store, shard, 1);
  server.inject({ kind: 'stall', afterBytes: 5 * MiB }, { key: secondPart });
  await pullAbortedAt(server, 13 * MiB + 40_000);
  return { files, server, shard, secondPart };
}

/** Pulls `v1` from `server` into `m` and aborts it once `bytes` have been transferred. */
async function pullAbortedAt(server: FaultServer, bytes: number, concurrency?: number) {
  const controller = new AbortController();
  const aborted = pull({
    source: `${server.url}/`,
    ref: 'v1',
    root: cache,
    subdir: 'm',
    ...(concurrency === undefined ? {} : { concurrency }),
    signal: controller.signal,
    onEvent: (e) => {
      if (e.type === 'progress' && e.transferredBytes >= bytes)
        controller.abort(new Error('enough'));
    },
  });
  await expect(aborted).rejects.toMatchObject({ name: 'AbortError' });
}

describe('pull from a published local prefix', () => {
  it('pulls byte-identical files, then a warm pull moves nothing', async () => {
    const files = await writeModel(origin, { shards: [3 * MiB + 17, 2 * MiB], smallFiles: 20 });
    const published = await publish({ dir: origin, dest: store, ref: 'v1', partSize });
    const first = await pull({ source: store, ref: 'v1', root: cache, partSize });
    expect(first.versionId).toBe(published.versionId);
    expect(first.dir).toBe(join(cache, 'm'));
    expect(await differingFiles(first.dir, files)).toEqual([]);
    expect(first.fetchedBytes).toBe(totalSize(files));

    const warm = await pull({ source: store, ref: 'v1', root: cache });
    expect(warm.fetchedBytes).toBe(0);
    expect(warm.skippedFiles).toBe(files.size);
    expect(warm.requests).toBeLessThanOrEqual(2);
    expect(await readdir(join(cache, '.ferry', 'tmp'))).toEqual([]);
  });

  it('creates a root whose parent folders do not exist yet', async () => {
    const files = await writeModel(origin, { shards: [MiB], smallFiles: 2 });
    await publish({ dir: origin, dest: store, ref: 'v1', partSize });
    const root = join(tmp.path, 'not', 'there', 'yet');
    const result = await pull({ source: store, ref: 'v1', root });
    expect(await differingFiles(join(root, 'm'), files)).toEqual([]);
    expect(result.fetchedBytes).toBe(totalSize(files));
  });

  it('warm-starts hundreds of files with one read (the ref: the cache holds its manifest) and no transfer', async () => {
    const files = await writeModel(origin, { shards: [MiB], smallFiles: 200 });
    await publish({ dir: origin, dest: store, ref: 'v1', partSize });
    await pull({ source: store, ref: 'v1', root: cache });
    const events: string[] = [];
    const warm = await pull({
      source: store,
      ref: 'v1',
      root: cache,
      onEvent: (e) => events.push(e.type),
    });
    expect(warm).toMatchObject({
      fetchedBytes: 0,
      reusedBytes: 0,
      skippedFiles: files.size,
      requests: 1,
    });
    expect(events).toEqual(['resolved', 'plan', 'done']);
  });

  it('fetches only the changed parts and the new file of a new version', async () => {
    const files = await writeModel(origin, { shards: [4 * MiB, 2 * MiB] });
    await publish({ dir: origin, dest: store, ref: 'v1', partSize });
    await pull({ source: store, ref: 'v1', root: cache });

    const shard = join(origin, 'model-00001.safetensors');
    const changed = Buffer.from(await readFile(shard));
    randomBytes(MiB, 99).copy(changed, 2 * MiB + 10);
    await writeFile(shard, changed);
    await writeFile(join(origin, 'added.bin'), randomBytes(300_000, 5));
    files.set('model-00001.safetensors', changed);
    files.set('added.bin', randomBytes(300_000, 5));
    await publish({ dir: origin, dest: store, ref: 'v2', partSize });

    const update = await pull({ source: store, ref: 'v2', root: cache });
    expect(await differingFiles(update.dir, files)).toEqual([]);
    // 1 MiB written at offset 2 MiB + 10 touches parts 2 and 3.
    expect(update.fetchedBytes).toBe(2 * partSize + 300_000);
    expect(update.reusedBytes).toBe(2 * partSize);
  });

  it('removes files the new version lacks, but not files someone changed', async () => {
    await writeModel(origin, { shards: [MiB], smallFiles: 2 });
    await publish({ dir: origin, dest: store, ref: 'v1', partSize });
    await pull({ source: store, ref: 'v1', root: cache });
    await writeFile(join(cache, 'm', 'extra', 'file 1.txt'), 'my notes');
    await rm(join(origin, 'extra'), { recursive: true });
    await publish({ dir: origin, dest: store, ref: 'v2', partSize });

    const result = await pull({ source: store, ref: 'v2', root: cache });
    expect(result.removed).toEqual(['m/extra/file 0.txt']);
    expect(await readFile(join(cache, 'm', 'extra', 'file 1.txt'), 'utf8')).toBe('my notes');
  });

  it('hashes a tree copied in without its database once, and fetches nothing', async () => {
    const files = await writeModel(origin, { shards: [2 * MiB] });
    await publish({ dir: origin, dest: store, ref: 'v1', partSize });
    await writeModel(join(cache, 'm'), { shards: [2 * MiB] });

    const result = await pull({ source: store, ref: 'v1', root: cache });
    expect(result.fetchedBytes).toBe(0);
    expect(result.skippedFiles).toBe(files.size);
    const again = await pull({ source: store, ref: 'v1', root: cache, workers: 1 });
    expect(again.fetchedBytes).toBe(0);
  });

  it('re-fetches a file changed on disk when asked to verify by hash', async () => {
    const files = await writeModel(origin, { shards: [2 * MiB] });
    await publish({ dir: origin, dest: store, ref: 'v1', partSize });
    await pull({ source: store, ref: 'v1', root: cache });
    const target = join(cache, 'm', 'model-00001.safetensors');
    // Whole seconds, so the mtime can be put back exactly after the bytes change.
    await utimes(target, 1_700_000_000, 1_700_000_000);
    await pull({ source: store, ref: 'v1', root: cache });
    const bytes = await readFile(target);
    bytes[5] = (bytes[5] ?? 0) ^ 0xff;
    await writeFile(target, bytes);
    await utimes(target, 1_700_000_000, 1_700_000_000);

    const trusting = await pull({ source: store, ref: 'v1', root: cache });
    expect(trusting.fetchedBytes).toBe(0);
    const checking = await pull({ source: store, ref: 'v1', root: cache, verify: 'hash' });
    expect(checking.fetchedBytes).toBe(partSize);
    expect(await differingFiles(checking.dir, files)).toEqual([]);
  });

  it('says so when it replaces a file someone changed since it wrote it', async () => {
    await writeModel(origin, { shards: [MiB] });
    await publish({ dir: origin, dest: store, ref: 'v1', partSize });
    await pull({ source: store, ref: 'v1', root: cache });
    await writeFile(join(cache, 'm', 'config.json'), '{"edited": true}');
    const warnings: string[] = [];
    await pull({
      source: store,
      ref: 'v1',
      root: cache,
      onEvent: (e) => {
        if (e.type === 'warning') warnings.push(e.message);
      },
    });
    expect(warnings).toEqual([
      "m/config.json was changed since ferry wrote it; the version's copy replaces it",
    ]);
  });

  it('repairs a file changed on disk by fetching only its bad parts', async () => {
    const files = await writeModel(origin, { shards: [3 * MiB] });
    await publish({ dir: origin, dest: store, ref: 'v1', partSize });
    await pull({ source: store, ref: 'v1', root: cache });
    const target = join(cache, 'm', 'model-00001.safetensors');
    const bytes = await readFile(target);
    bytes[MiB + 1] = (bytes[MiB + 1] ?? 0) ^ 0xff;
    await writeFile(target, bytes);

    const repaired = await pull({ source: store, ref: 'v1', root: cache });
    expect(repaired.fetchedBytes).toBe(partSize);
    expect(repaired.reusedBytes).toBe(2 * partSize);
    expect(await differingFiles(repaired.dir, files)).toEqual([]);
  });

  it('pulls a published folder from an origin whose ETags differ from the published ones', async () => {
    const files = await writeModel(origin, { shards: [2 * MiB] });
    await publish({ dir: origin, dest: store, ref: 'v1', partSize });
    // Same bytes, new mtime: every ETag the origin serves differs from any seen at publish.
    const later = new Date(Date.now() + 60_000);
    for (const entry of await readdir(store, { recursive: true, withFileTypes: true })) {
      if (entry.isFile()) await utimes(join(entry.parentPath, entry.name), later, later);
    }
    const server = await startFaultServer({ root: store });
    try {
      const result = await pull({ source: `${server.url}/`, ref: 'v1', root: cache, subdir: 'm' });
      expect(await differingFiles(result.dir, files)).toEqual([]);
    } finally {
      await server.close();
    }
  });

  it('reports a missing ref by name', async () => {
    await writeModel(origin, { shards: [10] });
    await publish({ dir: origin, dest: store, ref: 'v1', partSize });
    const failure = pull({ source: store, ref: 'v9', root: cache });
    await expect(failure).rejects.toThrow(/ref "v9" is not published/);
    await expect(failure).rejects.toSatisfy((e) => isFerryError(e, 'FERRY_NOT_FOUND'));
  });
});

describe('pull from a plain folder (no published manifest)', () => {
  it('builds the version from the listing and catches a same-size rewrite', async () => {
    const files = await writeModel(store, { shards: [MiB + 3] });
    const first = await pull({ source: store, root: cache, partSize });
    expect(await differingFiles(first.dir, files)).toEqual([]);
    expect(first.versionId).toMatch(/^sha256:/);

    const warm = await pull({ source: store, root: cache, partSize });
    expect(warm.fetchedBytes).toBe(0);

    const rewritten = randomBytes(MiB + 3, 42);
    await writeFile(join(store, 'model-00001.safetensors'), rewritten);
    const later = new Date(Date.now() + 5000);
    await utimes(join(store, 'model-00001.safetensors'), later, later);
    const update = await pull({ source: store, root: cache, partSize });
    expect(update.fetchedBytes).toBe(MiB + 3);
    expect((await readFile(join(first.dir, 'model-00001.safetensors'))).equals(rewritten)).toBe(
      true,
    );
  });
});

describe('cancellation and resume', () => {
  it('aborts promptly, keeps finished parts, and the next pull fetches only the rest', async () => {
    const files = await writeModel(origin, { shards: [24 * MiB] });
    await publish({ dir: origin, dest: store, ref: 'v1', partSize });
    const server = await startFaultServer({ root: store });
    try {
      // One part hangs: the pull is still running when the others have landed.
      server.inject(
        { kind: 'stall', afterBytes: 1000 },
        { key: await partObjectKey(store, 'model-00001.safetensors') },
      );
      await pullAbortedAt(server, 12 * MiB, 2);
      expect(
        await stat(join(cache, 'm', 'model-00001.safetensors')).catch(() => undefined),
      ).toBeUndefined();

      const resumed = await pull({ source: `${server.url}/`, ref: 'v1', root: cache, subdir: 'm' });
      expect(await differingFiles(resumed.dir, files)).toEqual([]);
      // At most the two parts in flight at the abort are fetched again.
      const total = totalSize(files);
      expect(resumed.fetchedBytes).toBeLessThanOrEqual(total - 12 * MiB + 2 * partSize);
    } finally {
      await server.close();
    }
  });

  it('keeps the bytes of a part cut short: the next pull re-hashes them and fetches only the rest', async () => {
    const { files, server, shard, secondPart } = await pullCutShort();
    const events: PullEvent[] = [];
    const resumed = await pull({
      source: `${server.url}/`,
      ref: 'v1',
      root: cache,
      subdir: 'm',
      onEvent: (e) => events.push(e),
    });
    expect(await differingFiles(resumed.dir, files)).toEqual([]);
    const start = events.find((e) => e.type === 'file-start' && e.path === shard);
    const done = events.find((e) => e.type === 'file-done' && e.path === shard);
    expect(start).toMatchObject({ bytesToFetch: 3 * MiB });
    expect(done).toMatchObject({ fetchedBytes: 3 * MiB });
    // The resumed request asked for the rest of the part only.
    expect(server.requests.at(-1)).toMatchObject({
      url: `/${secondPart}`,
      range: `bytes=${5 * MiB}-${8 * MiB - 1}`,
    });
  });

  it("keeps the partial files of another folder's interrupted pull", async () => {
    const { files, server } = await pullCutShort();
    const other = join(tmp.path, 'other');
    await writeModel(join(tmp.path, 'origin-n'), { shards: [MiB], seed: 7 });
    await publish({ dir: join(tmp.path, 'origin-n'), dest: other, ref: 'v1', partSize });
    await pull({ source: other, ref: 'v1', root: cache, subdir: 'n' });

    const resumed = await pull({ source: `${server.url}/`, ref: 'v1', root: cache, subdir: 'm' });
    expect(await differingFiles(resumed.dir, files)).toEqual([]);
    // Only the rest of the part cut short: the other pull left m's partial file alone.
    expect(resumed.fetchedBytes).toBe(3 * MiB);
  });

  it('resumes a transfer whose cuts sidecar is missing (killed between its journal and the sidecar): parts start over, the pull completes', async () => {
    const { files, server } = await pullCutShort();
    const tmpDir = join(cache, '.ferry', 'tmp');
    const sidecars = (await readdir(tmpDir)).filter((name) => name.endsWith('.cuts'));
    expect(sidecars).toHaveLength(1);
    await rm(join(tmpDir, sidecars[0] as string));

    const resumed = await pull({ source: `${server.url}/`, ref: 'v1', root: cache, subdir: 'm' });
    expect(await differingFiles(resumed.dir, files)).toEqual([]);
    // Without cuts only the journal's finished part is kept: the cut-short one starts over.
    expect(resumed.fetchedBytes).toBe(8 * MiB);
  });

  it('hedges bodies that stall while the rest of the pull flows, long before the stall timeout', async () => {
    const files = await writeModel(origin, { shards: [12 * MiB] });
    await publish({ dir: origin, dest: store, ref: 'v1', partSize });
    const server = await startFaultServer({ root: store });
    const shard = 'model-00001.safetensors';
    try {
      const stalled = [2, 5, 9];
      const keys = await Promise.all(stalled.map((part) => partObjectKey(store, shard, part)));
      for (const key of keys) server.inject({ kind: 'stall', afterBytes: 100_000 }, { key });
      const events: PullEvent[] = [];
      const result = await pull({
        source: `${server.url}/`,
        ref: 'v1',
        root: cache,
        subdir: 'm',
        // Only a hedge can finish this pull in time: the stall timeout would take a minute.
        stallTimeoutMs: 60_000,
        hedgeAfterMs: 300,
        onEvent: (e) => events.push(e),
      });
      expect(await differingFiles(result.dir, files)).toEqual([]);
      const hedges = events.filter((e) => e.type === 'retry' && e.attempt === 0);
      expect(hedges.map((e) => (e.type === 'retry' ? e.part : undefined)).sort()).toEqual([
        2, 5, 9,
      ]);
      // Each hedge asked for the rest of its part only, from the byte the stalled body reached.
      for (const key of keys) {
        expect(server.requests).toContainEqual(
          expect.objectContaining({ url: `/${key}`, range: `bytes=100000-${MiB - 1}` }),
        );
      }
    } finally {
      await server.close();
    }
  });

  it('does not hedge on a link that is slow for every connection alike', async () => {
    const files = await writeModel(origin, { shards: [2 * MiB] });
    await publish({ dir: origin, dest: store, ref: 'v1', partSize: 256 * 1024 });
    const server = await startFaultServer({ root: store });
    try {
      // Every body pauses longer than the hedge delay between its bursts, and for more than
      // two of the reader's 250 ms idle ticks, so that a tick always finds the body quiet.
      server.inject({ kind: 'throttle', bytes: 128 * 1024, everyMs: 600 }, { times: 1000 });
      const events: PullEvent[] = [];
      const result = await pull({
        source: `${server.url}/`,
        ref: 'v1',
        root: cache,
        subdir: 'm',
        hedgeAfterMs: 200,
        onEvent: (e) => events.push(e),
      });
      expect(await differingFiles(result.dir, files)).toEqual([]);
      expect(events.filter((e) => e.type === 'retry')).toEqual([]);
    } finally {
      await server.close();
    }
  });

  it("refuses a manifest whose entry would land in the cache's own .ferry/, and the store stays usable", async () => {
    const files = await writeModel(origin, { shards: [MiB] });
    await publish({ dir: origin, dest: store, ref: 'v1', partSize });
    const good = await pull({ source: store, ref: 'v1', root: cache, subdir: '' });
    expect(await differingFiles(good.dir, files)).toEqual([]);
    // A hostile version: one entry aimed at the store's CURRENT file, pulled at the root.
    await publishByHand(store, 'evil', [
      { digest: `sha256:${'0'.repeat(64)}`, path: '.ferry/db/CURRENT', size: 30 },
    ]);
    const error = await pull({ source: store, ref: 'evil', root: cache, subdir: '' }).catch(
      (e: unknown) => e,
    );
    expect(isFerryError(error, 'FERRY_MANIFEST_INVALID')).toBe(true);
    expect(String((error as Error).message)).toContain('".ferry/db/CURRENT" is inside .ferry/');
    const again = await pull({ source: store, ref: 'v1', root: cache, subdir: '' });
    expect(again.fetchedBytes).toBe(0);
  });

  it('verifies a copy of a file found elsewhere in the cache, and fetches it when the twin rotted', async () => {
    const files = await writeModel(origin, { shards: [3 * MiB] });
    await publish({ dir: origin, dest: store, ref: 'v1', partSize });
    const other = join(tmp.path, 'store', 'models', 'twin');
    await publish({ dir: origin, dest: other, ref: 'v1', partSize });
    await pull({ source: store, ref: 'v1', root: cache, subdir: 'm' });
    // Bit rot in the cached shard, its mtime kept to the nanosecond (`touch -r`, as the
    // issue's reproduction did): the stat record still vouches for it.
    const shard = join(cache, 'm', 'model-00001.safetensors');
    const reference = join(tmp.path, 'mtime-reference');
    execFileSync('cp', ['--preserve=timestamps', shard, reference]);
    const bytes = await readFile(shard);
    bytes.fill(0x55, MiB, MiB + 1024);
    await writeFile(shard, bytes);
    execFileSync('touch', ['-r', reference, shard]);

    const events: PullEvent[] = [];
    const twin = await pull({
      source: other,
      ref: 'v1',
      root: cache,
      subdir: 'twin',
      onEvent: (e) => events.push(e),
    });
    expect(await differingFiles(twin.dir, files)).toEqual([]);
    expect(events).toContainEqual(
      expect.objectContaining({
        type: 'retry',
        code: 'FERRY_INTEGRITY',
        path: 'model-00001.safetensors',
      }),
    );
    // The rotten twin lost its record: the next pull of its folder finds and repairs it.
    const repaired = await pull({ source: store, ref: 'v1', root: cache, subdir: 'm' });
    expect(await differingFiles(repaired.dir, files)).toEqual([]);
    expect(repaired.fetchedBytes).toBe(partSize);
  });

  it('never writes through a symlinked folder inside the tree', async () => {
    const files = await writeModel(origin, { shards: [MiB] });
    await publish({ dir: origin, dest: store, ref: 'v1', partSize });
    await pull({ source: store, ref: 'v1', root: cache, subdir: 'm' });
    // Someone swaps the tokenizer folder for a link to a folder outside the cache.
    const outside = join(tmp.path, 'outside');
    await mkdir(outside);
    await writeFile(join(outside, 'tokenizer.json'), "not ferry's");
    await rm(join(cache, 'm', 'tokenizer'), { recursive: true });
    await symlink(outside, join(cache, 'm', 'tokenizer'));
    // Mending v1 in place would write the tokenizer through the link.
    const error = await pull({ source: store, ref: 'v1', root: cache, subdir: 'm' }).catch(
      (e: unknown) => e,
    );
    expect(isFerryError(error, 'FERRY_IO')).toBe(true);
    expect(String((error as Error).message)).toMatch(
      /\/tokenizer is a symbolic link: ferry does not write through links$/,
    );
    // v2 is built in a folder of its own: the link is neither followed nor carried over.
    await writeFile(join(origin, 'tokenizer', 'tokenizer.json'), randomBytes(1000, 9));
    files.set('tokenizer/tokenizer.json', randomBytes(1000, 9));
    await publish({ dir: origin, dest: store, ref: 'v2', partSize });
    const v2 = await pull({ source: store, ref: 'v2', root: cache, subdir: 'm' });
    expect(await differingFiles(v2.dir, files)).toEqual([]);
    expect(await readdir(outside)).toEqual(['tokenizer.json']);
    expect(await readFile(join(outside, 'tokenizer.json'), 'utf8')).toBe("not ferry's");
  });

  it('refuses folders that overlap in one root, either way round', async () => {
    await writeModel(origin, { shards: [MiB] });
    await publish({ dir: origin, dest: store, ref: 'v1', partSize });
    await pull({ source: store, ref: 'v1', root: cache, subdir: 'models/m' });
    for (const subdir of ['', 'models', 'models/m/inner']) {
      const error = await pull({ source: store, ref: 'v1', root: cache, subdir }).catch(
        (e: unknown) => e,
      );
      expect(isFerryError(error, 'FERRY_OVERLAP'), subdir).toBe(true);
      expect(String((error as Error).message)).toContain(`overlaps ${join(cache, 'models', 'm')}`);
    }
    // A sibling is fine, and so is the same folder again.
    await pull({ source: store, ref: 'v1', root: cache, subdir: 'models/m2' });
    expect(
      (await pull({ source: store, ref: 'v1', root: cache, subdir: 'models/m' })).fetchedBytes,
    ).toBe(0);
  });

  it('fails before any transfer when the disk cannot hold the version, saying how much is free and needed', async () => {
    await writeModel(origin, { shards: [MiB] });
    await publish({ dir: origin, dest: store, ref: 'v1', partSize });
    // A version no test machine's disk holds (below the 5 TiB a manifest may claim).
    await publishByHand(store, 'huge', [
      { digest: `sha256:${'0'.repeat(64)}`, path: 'huge.bin', size: 4 * 2 ** 40 },
    ]);
    const error = await pull({ source: store, ref: 'huge', root: cache, subdir: 'm' }).catch(
      (e: unknown) => e,
    );
    expect(isFerryError(error, 'FERRY_NO_SPACE')).toBe(true);
    expect(String((error as Error).message)).toMatch(
      new RegExp(`^${cache} has [\\d.]+ [KMGT]?i?B free; this pull needs 4\\.00 TiB`),
    );
    expect(await readdir(join(cache, '.ferry', 'tmp')).catch(() => [])).toEqual([]);
  });

  it('says a source with no files holds none, unless told to accept it', async () => {
    const empty = join(tmp.path, 'empty');
    await mkdir(empty);
    const error = await pull({ source: empty, root: cache }).catch((e: unknown) => e);
    expect(isFerryError(error, 'FERRY_NOT_FOUND')).toBe(true);
    expect(String((error as Error).message)).toMatch(/empty holds no files$/);
    expect((await pull({ source: empty, root: cache, allowEmpty: true })).files).toBe(0);
  });

  it('refuses a ref that is not a version id without reading it all', async () => {
    await writeModel(origin, { shards: [MiB] });
    await publish({ dir: origin, dest: store, ref: 'v1', partSize });
    await writeFile(join(store, '.ferry', 'refs', 'huge'), Buffer.alloc(8 * MiB, 0x61));
    const error = await pull({ source: store, ref: 'huge', root: cache }).catch((e: unknown) => e);
    expect(isFerryError(error, 'FERRY_BAD_RESPONSE')).toBe(true);
    expect(String((error as Error).message)).toBe(
      '.ferry/refs/huge is larger than 4096 bytes, more than it can be',
    );
  });

  it('reads parts through a mirror first, falls back to the source, and never trusts a mirror', async () => {
    const files = await writeModel(origin, { shards: [4 * MiB] });
    await publish({ dir: origin, dest: store, ref: 'v1', partSize });
    const source = await startFaultServer({ root: store });
    const mirror = await startFaultServer({ root: store });
    const empty = join(tmp.path, 'empty-mirror');
    await mkdir(empty);
    const cold = await startFaultServer({ root: empty });
    const partsFrom = (server: { requests: Array<{ url: string }> }) =>
      server.requests.filter((r) => r.url.startsWith('/.ferry/parts/')).length;
    try {
      // A warm mirror serves every part: the source only answers the ref and the manifest.
      const first = await pull({
        source: `${source.url}/`,
        ref: 'v1',
        root: join(tmp.path, 'a'),
        subdir: 'm',
        mirrors: [`${mirror.url}/`],
      });
      expect(await differingFiles(first.dir, files)).toEqual([]);
      expect(partsFrom(source)).toBe(0);
      expect(partsFrom(mirror)).toBeGreaterThan(0);

      // A mirror that has nothing, then one that serves a wrong byte: the source fills in,
      // and the wrong part is read again from the source, not trusted.
      source.reset();
      const key = await partObjectKey(store, 'model-00001.safetensors', 2);
      mirror.reset();
      mirror.inject({ kind: 'flip-byte', offset: 10 }, { key, times: 100 });
      const events: PullEvent[] = [];
      const second = await pull({
        source: `${source.url}/`,
        ref: 'v1',
        root: join(tmp.path, 'b'),
        subdir: 'm',
        mirrors: [`${cold.url}/`, `${mirror.url}/`],
        onEvent: (e) => events.push(e),
      });
      expect(await differingFiles(second.dir, files)).toEqual([]);
      expect(source.requests.map((r) => r.url)).toContain(`/${key}`);
      expect(events).toContainEqual(
        expect.objectContaining({
          type: 'retry',
          message: expect.stringMatching(/^mirror http.* failed/),
        }),
      );
      expect(events).toContainEqual(
        expect.objectContaining({ type: 'retry', code: 'FERRY_INTEGRITY' }),
      );
    } finally {
      await Promise.all([source.close(), mirror.close(), cold.close()]);
    }
  });

  it('stops the pull when the consumer leaves the event loop early', async () => {
    await writeModel(origin, { shards: [8 * MiB] });
    await publish({ dir: origin, dest: store, ref: 'v1', partSize });
    for await (const event of pullIter({ source: store, ref: 'v1', root: cache })) {
      if (event.type === 'plan') break;
    }
    // The store lock was released: another pull can open the root at once.
    const result = await pull({ source: store, ref: 'v1', root: cache, waitForLock: false });
    expect(result.files).toBeGreaterThan(0);
  });

  it('rejects at once when the signal is already aborted, and leaves no listener behind', async () => {
    const controller = new AbortController();
    controller.abort('no');
    await expect(
      pull({ source: store, root: cache, signal: controller.signal }),
    ).rejects.toMatchObject({
      name: 'AbortError',
      cause: 'no',
    });
    const live = new AbortController();
    await writeModel(origin, { shards: [10] });
    await publish({ dir: origin, dest: store, ref: 'v1', partSize });
    let added = 0;
    let removed = 0;
    const signal = live.signal;
    const add = signal.addEventListener.bind(signal);
    const remove = signal.removeEventListener.bind(signal);
    signal.addEventListener = ((...args: Parameters<typeof add>) => {
      added++;
      add(...args);
    }) as typeof signal.addEventListener;
    signal.removeEventListener = ((...args: Parameters<typeof remove>) => {
      removed++;
      remove(...args);
    }) as typeof signal.removeEventListener;
    await pull({ source: store, ref: 'v1', root: cache, signal });
    expect(added).toBeGreaterThan(0);
    expect(removed).toBe(added);
  });
});

describe('pulling a subset by glob', () => {
  it('pulls only the selected files, drops what a narrower selection leaves out, and keeps the selection for verify, status, gc and resume', async () => {
    const files = await writeModel(origin, { shards: [2 * MiB, MiB], smallFiles: 3 });
    await publish({ dir: origin, dest: store, ref: 'v1', partSize });
    const only = (match: (path: string) => boolean) =>
      new Map([...files].filter(([path]) => match(path)));
    const onDisk = async () =>
      (await readdir(join(cache, 'm'), { recursive: true, withFileTypes: true }))
        .filter((d) => d.isFile())
        .map((d) => join(d.parentPath, d.name).slice(join(cache, 'm').length + 1))
        .sort();

    const weights = await pull({
      source: store,
      ref: 'v1',
      root: cache,
      include: ['*.safetensors'],
    });
    const shards = only((p) => p.endsWith('.safetensors'));
    expect(await differingFiles(weights.dir, shards)).toEqual([]);
    expect(await onDisk()).toEqual([...shards.keys()].sort());
    expect(weights.fetchedBytes).toBe(3 * MiB);
    expect(await verify({ root: cache })).toMatchObject({ files: 2, problems: [] });
    // Narrowed further: a damaged file outside the globs is not looked at.
    await writeFile(join(cache, 'm', 'model-00002.safetensors'), 'damaged');
    expect(await verify({ root: cache, deep: true, exclude: ['model-00002.*'] })).toMatchObject({
      files: 1,
      bytes: 2 * MiB,
      problems: [],
    });
    expect((await verify({ root: cache, include: ['*-00002.*'] })).problems).toMatchObject([
      { path: 'm/model-00002.safetensors', problem: 'size' },
    ]);
    await pull({ source: store, ref: 'v1', root: cache, include: ['*.safetensors'] });
    expect((await status({ root: cache })).trees[0]).toMatchObject({
      files: 2,
      bytes: 3 * MiB,
      filter: { include: ['*.safetensors'] },
    });
    expect((await gc({ root: cache })).removedRecords).toBe(0);
    const warm = await pull({ source: store, ref: 'v1', root: cache, include: ['*.safetensors'] });
    expect(warm.fetchedBytes).toBe(0);
    expect(warm.requests).toBeLessThanOrEqual(2);

    // A different selection of the same version: the tokenizer arrives, the shards go.
    const tokenizer = await pull({
      source: store,
      ref: 'v1',
      root: cache,
      include: ['tokenizer/**', '*.json'],
      exclude: ['config.json'],
    });
    const selected = only((p) => p.endsWith('.json') && p !== 'config.json');
    expect(await onDisk()).toEqual([...selected.keys()].sort());
    expect(tokenizer.fetchedBytes).toBe(totalSize(selected));

    // An interrupted filtered pull resumes the same subset.
    const server = await startFaultServer({ root: store });
    try {
      server.inject(
        { kind: 'stall', afterBytes: 1000 },
        { key: await partObjectKey(store, 'model-00001.safetensors') },
      );
      const controller = new AbortController();
      const interrupted = pull({
        source: `${server.url}/`,
        ref: 'v1',
        root: cache,
        subdir: 'm',
        include: ['model-00001.safetensors'],
        hedgeAfterMs: 0,
        signal: controller.signal,
        onEvent: (e) => {
          if (e.type === 'progress' && e.transferredBytes >= MiB)
            controller.abort(new Error('stop'));
        },
      });
      await expect(interrupted).rejects.toMatchObject({ name: 'AbortError' });
      const [resumed] = await resume({ root: cache });
      expect(resumed?.fetchedBytes).toBeLessThan(2 * MiB);
      expect(await onDisk()).toEqual(['model-00001.safetensors']);
    } finally {
      await server.close();
    }

    // Every file again when the selection is dropped.
    await pull({ source: store, ref: 'v1', root: cache });
    expect(await differingFiles(join(cache, 'm'), files)).toEqual([]);
    expect((await status({ root: cache })).trees[0]?.filter).toBeUndefined();
  });

  it('pulls single files by exact path, and names the near miss of a path the version lacks', async () => {
    const files = await writeModel(origin, { shards: [MiB] });
    await publish({ dir: origin, dest: store, ref: 'v1', partSize });
    const one = await pull({
      source: store,
      ref: 'v1',
      root: cache,
      only: ['tokenizer/tokenizer.json'],
    });
    expect(one.fetchedFiles).toBe(1);
    expect(await readdir(join(cache, 'm'), { recursive: true })).toEqual([
      'tokenizer',
      join('tokenizer', 'tokenizer.json'),
    ]);
    expect(await readFile(join(cache, 'm', 'tokenizer', 'tokenizer.json'))).toEqual(
      files.get('tokenizer/tokenizer.json'),
    );
    await expect(
      pull({ source: store, ref: 'v1', root: cache, only: ['tokenizer.json'] }),
    ).rejects.toMatchObject({
      code: 'FERRY_NOT_FOUND',
      message: expect.stringMatching(/has no file tokenizer\.json$/),
      hint: expect.stringContaining('Did you mean tokenizer/tokenizer.json?'),
    });
  });

  it('says so when the globs select none of the files', async () => {
    await writeModel(origin, { shards: [MiB] });
    await publish({ dir: origin, dest: store, ref: 'v1', partSize });
    await expect(
      pull({ source: store, ref: 'v1', root: cache, include: ['*.gguf'] }),
    ).rejects.toMatchObject({
      code: 'FERRY_NOT_FOUND',
      message: expect.stringMatching(/filters select none/),
    });
  });
});

describe('bandwidth limit', () => {
  it('holds the whole pull to the limit across workers and requests', async () => {
    const files = await writeModel(origin, { shards: [6 * MiB, 6 * MiB] });
    await publish({ dir: origin, dest: store, ref: 'v1', partSize });
    const server = await startFaultServer({ root: store });
    try {
      const limit = 6 * MiB;
      const started = performance.now();
      const samples: Array<{ at: number; bytes: number }> = [];
      const result = await pull({
        source: `${server.url}/`,
        ref: 'v1',
        root: cache,
        subdir: 'm',
        workers: 2,
        bandwidthLimit: limit,
        onEvent: (e) => {
          if (e.type === 'progress')
            samples.push({ at: performance.now(), bytes: e.transferredBytes });
        },
      });
      const ended = performance.now();
      expect(await differingFiles(result.dir, files)).toEqual([]);
      const total = totalSize(files);
      expect(result.fetchedBytes).toBe(total);
      // 12 MiB at 6 MiB/s is 2 s of booked time: never less, whatever the workers and
      // requests. While bytes flow, the rate is the limit within 10 %: measured between the
      // first and the last progress sample of the transfer, so that worker start-up (slow on
      // a loaded machine) and the commit after the last byte are left out.
      expect((ended - started) / 1000).toBeGreaterThanOrEqual(2 * 0.95);
      const flowing = samples.filter((x) => x.bytes > 0 && x.bytes < total);
      const first = flowing[0];
      const last = flowing.at(-1);
      if (first === undefined || last === undefined || last.at - first.at < 1000) {
        throw new Error(`too few progress samples while bytes flowed: ${flowing.length}`);
      }
      const rate = (last.bytes - first.bytes) / ((last.at - first.at) / 1000);
      expect(rate / limit).toBeGreaterThan(0.9);
      expect(rate / limit).toBeLessThan(1.1);
    } finally {
      await server.close();
    }
  });

  it('refuses a limit too small to mean anything', async () => {
    await expect(pull({ source: store, root: cache, bandwidthLimit: 10 })).rejects.toMatchObject({
      code: 'FERRY_USAGE',
      message: expect.stringContaining('bandwidthLimit'),
    });
  });
});
