import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { CacheIndex } from '@ferry/manifest/store';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  differingFiles,
  type FaultServer,
  makeTempDir,
  partObjectKey,
  startFaultServer,
  type TempDir,
  totalSize,
  writeModel,
} from '#fixtures';
import { bake } from './bake.js';
import { diffVersions } from './diff-versions.js';
import { gc } from './gc.js';
import { publish } from './publish.js';
import { pull } from './pull.js';
import { resume } from './resume.js';
import { status } from './status.js';
import { type VerifyEvent, verify } from './verify.js';

const MiB = 1024 * 1024;
const partSize = MiB;
const CHILD = fileURLToPath(new URL('./test-pull-child.mjs', import.meta.url));

let tmp: TempDir;
let origin: string;
let store: string;
let cache: string;

beforeEach(async () => {
  tmp = await makeTempDir('admin');
  origin = join(tmp.path, 'origin');
  store = join(tmp.path, 'store', 'm');
  cache = join(tmp.path, 'cache');
  await mkdir(store, { recursive: true });
});
afterEach(() => tmp.remove());

/** Pulls over a fault server whose first read of the shard hangs, and kills or aborts it past half. */
async function interruptedPull(
  server: FaultServer,
  files: Map<string, Buffer>,
  how: 'abort' | 'kill',
): Promise<void> {
  server.inject(
    { kind: 'stall', afterBytes: 100 },
    { key: await partObjectKey(store, 'model-00001.safetensors') },
  );
  const half = (totalSize(files) / 2) | 0;
  if (how === 'abort') {
    const controller = new AbortController();
    await expect(
      pull({
        source: `${server.url}/`,
        ref: 'v1',
        root: cache,
        subdir: 'm',
        concurrency: 4,
        signal: controller.signal,
        onEvent: (e) => {
          if (e.type === 'progress' && e.transferredBytes >= half) controller.abort();
        },
      }),
    ).rejects.toMatchObject({ name: 'AbortError' });
    return;
  }
  const child = spawn(process.execPath, [CHILD, `${server.url}/`, cache, 'm', 'v1'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  for await (const line of createInterface({ input: child.stdout })) {
    const event = JSON.parse(line) as { type: string; transferredBytes?: number };
    if (event.type === 'progress' && (event.transferredBytes ?? 0) >= half) {
      child.kill('SIGKILL');
      break;
    }
  }
  const [, signal] = (await once(child, 'exit')) as [number | null, string | null];
  expect(signal).toBe('SIGKILL');
}

describe('resume and status', () => {
  it.each(['abort', 'kill'] as const)(
    'finishes a pull interrupted by %s, fetching only what was missing',
    async (how) => {
      const files = await writeModel(origin, { shards: [16 * MiB], smallFiles: 3 });
      await publish({ dir: origin, dest: store, ref: 'v1', partSize });
      const server = await startFaultServer({ root: store });
      try {
        await interruptedPull(server, files, how);

        const before = await status({ root: cache });
        expect(before.interrupted).toMatchObject([{ dir: 'm', ref: 'v1' }]);
        const [partial] = before.partials;
        expect(partial?.path).toBe('m/model-00001.safetensors');
        expect(partial?.doneBytes).toBeGreaterThanOrEqual(4 * MiB);
        // Nothing partial ever sits at a final path.
        expect(await readdir(join(cache, 'm')).catch(() => [])).not.toContain(
          'model-00001.safetensors',
        );

        const [resumed] = await resume({ root: cache });
        expect(await differingFiles(join(cache, 'm'), files)).toEqual([]);
        // Waste is at most the parts in flight (concurrency 4) when the pull stopped.
        expect(resumed?.fetchedBytes).toBeLessThanOrEqual(
          16 * MiB - (partial?.doneBytes ?? 0) + 4 * partSize,
        );
        expect((await status({ root: cache })).interrupted).toEqual([]);
      } finally {
        await server.close();
      }
    },
  );

  it('resume() finishes an interrupted pull from a local source', async () => {
    const files = await writeModel(origin, { shards: [8 * MiB] });
    await publish({ dir: origin, dest: store, ref: 'v1', partSize });
    const controller = new AbortController();
    await expect(
      pull({
        source: store,
        ref: 'v1',
        root: cache,
        concurrency: 1,
        signal: controller.signal,
        onEvent: (e) => {
          if (e.type === 'file-start') controller.abort();
        },
      }),
    ).rejects.toMatchObject({ name: 'AbortError' });
    expect((await status({ root: cache })).interrupted).toHaveLength(1);
    const results = await resume({ root: cache });
    expect(results).toHaveLength(1);
    expect(await differingFiles(join(cache, 'm'), files)).toEqual([]);
    expect((await status({ root: cache })).interrupted).toEqual([]);
    expect(await resume({ root: cache })).toEqual([]);
  });

  it('status names a missing cache clearly', async () => {
    await expect(status({ root: join(tmp.path, 'nope') })).rejects.toThrow(/no ferry cache at/);
  });
});

describe('verify, gc, diff, bake', () => {
  it('verify reports a changed file by stat, a corrupted one only when deep', async () => {
    await writeModel(origin, { shards: [2 * MiB], smallFiles: 2 });
    await publish({ dir: origin, dest: store, ref: 'v1', partSize });
    await pull({ source: store, ref: 'v1', root: cache });
    expect((await verify({ root: cache })).problems).toEqual([]);

    const shard = join(cache, 'm', 'model-00001.safetensors');
    const bytes = await readFile(shard);
    bytes[100] = (bytes[100] ?? 0) ^ 1;
    await writeFile(shard, bytes);
    await rm(join(cache, 'm', 'config.json'));

    const shallow = await verify({ root: cache });
    expect(shallow.problems.map((p) => [p.path, p.problem])).toEqual([
      ['m/config.json', 'missing'],
      ['m/model-00001.safetensors', 'modified'],
    ]);
    const events: VerifyEvent[] = [];
    const deep = await verify({ root: cache, deep: true, onEvent: (e) => events.push(e) });
    expect(deep.problems.map((p) => [p.path, p.problem])).toEqual([
      ['m/config.json', 'missing'],
      ['m/model-00001.safetensors', 'corrupt'],
    ]);
    // Progress counts every file, the missing one and the corrupt one included, and ends whole.
    expect(events.filter((e) => e.type === 'progress').at(-1)).toMatchObject({
      transferredBytes: deep.bytes,
      totalBytes: deep.bytes,
      active: [],
    });
  });

  it('gc drops partials and records nothing needs, and keeps the files', async () => {
    const files = await writeModel(origin, { shards: [MiB] });
    await publish({ dir: origin, dest: store, ref: 'v1', partSize });
    await pull({ source: store, ref: 'v1', root: cache });
    await writeFile(join(cache, '.ferry', 'tmp', 'stray.part'), Buffer.alloc(1000));
    const result = await gc({ root: cache });
    expect(result).toMatchObject({ removedPartials: 1, freedBytes: 1000 });
    expect(await readdir(join(cache, '.ferry', 'tmp'))).toEqual([]);
    expect(await differingFiles(join(cache, 'm'), files)).toEqual([]);
    expect((await verify({ root: cache })).problems).toEqual([]);
  });

  it('gc frees partial files even when the store cannot be opened', async () => {
    await writeModel(origin, { shards: [MiB] });
    await publish({ dir: origin, dest: store, ref: 'v1', partSize });
    await pull({ source: store, ref: 'v1', root: cache });
    await writeFile(join(cache, '.ferry', 'tmp', 'stuck.part'), Buffer.alloc(5000));
    // What a full disk or a broken database looks like to LevelDB: it cannot open.
    await writeFile(join(cache, '.ferry', 'db', 'CURRENT'), 'MANIFEST-999999\n');
    const result = await gc({ root: cache });
    expect(result).toMatchObject({ removedPartials: 1, freedBytes: 5000 });
    expect(result.storeUnavailable).toMatch(/opening failed/);
    expect(await readdir(join(cache, '.ferry', 'tmp'))).toEqual([]);
  });

  it('status answers while a pull holds the store, from a copy', async () => {
    await writeModel(origin, { shards: [MiB] });
    await publish({ dir: origin, dest: store, ref: 'v1', partSize });
    await pull({ source: store, ref: 'v1', root: cache });
    const holder = await CacheIndex.open(join(cache, '.ferry', 'db'));
    try {
      expect((await status({ root: cache })).trees).toMatchObject([{ dir: 'm', ref: 'v1' }]);
      expect((await verify({ root: cache })).problems).toEqual([]);
    } finally {
      await holder.close();
    }
  });

  it('diffVersions counts the bytes an update would fetch', async () => {
    await writeModel(origin, { shards: [4 * MiB] });
    const v1 = await publish({ dir: origin, dest: store, ref: 'v1', partSize });
    const shard = join(origin, 'model-00001.safetensors');
    const bytes = await readFile(shard);
    bytes[3 * MiB] = (bytes[3 * MiB] ?? 0) ^ 1;
    await writeFile(shard, bytes);
    await writeFile(join(origin, 'new.txt'), 'hello');
    const v2 = await publish({ dir: origin, dest: store, ref: 'v2', partSize });
    const d = await diffVersions({ source: store, from: 'v1', to: 'v2' });
    expect(d.from).toBe(v1.versionId);
    expect(d.to).toBe(v2.versionId);
    expect(d.added.map((e) => e.path)).toEqual(['new.txt']);
    expect(d.changed.map((c) => [c.to.path, c.changedParts])).toEqual([
      ['model-00001.safetensors', [3]],
    ]);
    expect(d.transferBytes).toBe(MiB + 5);

    const weights = await diffVersions({
      source: store,
      from: 'v1',
      to: 'v2',
      include: ['*.safetensors'],
    });
    expect(weights.added).toEqual([]);
    expect(weights.transferBytes).toBe(MiB);
    const rest = await diffVersions({
      source: store,
      from: 'v1',
      to: 'v2',
      exclude: ['*.safetensors'],
    });
    expect(rest.changed).toEqual([]);
    expect(rest.transferBytes).toBe(5);
  });

  it('bake leaves a cache a later pull finds complete without reading files', async () => {
    await writeModel(origin, { shards: [2 * MiB] });
    await publish({ dir: origin, dest: store, ref: 'v1', partSize });
    await bake({ source: store, ref: 'v1', root: cache });
    const later = await pull({ source: store, ref: 'v1', root: cache });
    expect(later.fetchedBytes).toBe(0);
    expect(later.requests).toBeLessThanOrEqual(2);
  });
});
