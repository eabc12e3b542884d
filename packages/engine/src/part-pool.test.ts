import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AbortError, type Digest, type FerryError, isFerryError } from '@ferry/manifest';
import { describe, expect, it, onTestFinished } from 'vitest';
import { makeTempDir, randomBytes, startFaultServer } from '#fixtures';
import { defaultConcurrency, defaultWorkers, hashingWorkers, PartPool } from './part-pool.js';

const MiB = 2 ** 20;

describe('defaultWorkers', () => {
  it.each([
    // bytes, concurrency, cores → workers
    [10 * MiB, 16, 16, 0], // a small update: the main thread's own work
    [256 * MiB, 16, 16, 0], // one thread's worth: no worker to boot and message
    [257 * MiB, 16, 16, 2], // more: two threads beside the main one
    [768 * MiB, 16, 2, 2], // a model on two cores: both
    [768 * MiB, 16, 16, 3], // 256 MiB of work each
    [64 * MiB, 16, 2, 0], // many small files: a file costs the same on any thread
    [768 * MiB, 2, 16, 0], // one request at a time per thread: one thread is enough
    [100 * 1024 * MiB, 16, 64, 8], // two requests in flight each at least
    [100 * 1024 * MiB, 256, 64, 64], // a large box is not capped by a constant
    [0, 1, 8, 0],
  ])('%d bytes, concurrency %d, %d cores: %d', (bytes, concurrency, cores, want) => {
    expect(defaultWorkers({ bytes }, concurrency, cores)).toBe(want);
  });
});

describe('defaultConcurrency', () => {
  it.each([
    // cores → requests in flight
    [1, 16],
    [2, 16], // the machines measured here
    [8, 16],
    [16, 32], // two per core: a worker per core
    [64, 128],
  ])('%d cores: %d', (cores, want) => {
    expect(defaultConcurrency(cores)).toBe(want);
  });

  it('lets a 16-core box run a worker on every core for a large model', () => {
    expect(defaultWorkers({ bytes: 70 * 1024 * MiB }, defaultConcurrency(16), 16)).toBe(16);
  });
});

describe('hashingWorkers', () => {
  it.each([
    // bytes, cores → workers
    [4 * MiB, 16, 0], // a small publish is hashed on the main thread
    [256 * MiB, 16, 0],
    [257 * MiB, 16, 2],
    [768 * MiB, 2, 2],
    [768 * MiB, 16, 3],
    [100 * 1024 * MiB, 64, 64], // every core for a large model
    [0, 8, 0],
  ])('%d bytes, %d cores: %d', (bytes, cores, want) => {
    expect(hashingWorkers(bytes, cores)).toBe(want);
  });
});

describe('PartPool on the main thread and on a worker thread', () => {
  const size = 3 * MiB + 17;

  async function serving() {
    const dir = await makeTempDir('pool');
    onTestFinished(dir.remove);
    const bytes = randomBytes(size, 9);
    await writeFile(join(dir.path, 'blob.bin'), bytes);
    const server = await startFaultServer({ root: dir.path });
    onTestFinished(server.close);
    return { dir: dir.path, bytes, server };
  }

  const fetchTask = (dir: string, uri: string, tmpPath: string, expected?: Digest) =>
    ({
      kind: 'fetch',
      uri,
      sourceOptions: {},
      key: 'blob.bin',
      path: 'blob.bin',
      tmpPath: join(dir, tmpPath),
      start: 0,
      end: size,
      algorithm: 'sha256',
      create: true,
      ...(expected === undefined ? {} : { expectedDigest: expected }),
    }) as const;

  it.each([0, 1])(
    'with %d workers: fetches and hashes a range, and a wrong one fails with its code, key and hint',
    async (workers) => {
      const { dir, bytes, server } = await serving();
      const pool = new PartPool({ workers, concurrency: 4 });
      onTestFinished(() => pool.destroy());
      const want: Digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

      const fetched = await pool.run(fetchTask(dir, server.url, 'a.part'), 0, 'blob.bin');
      expect(fetched).toMatchObject({ digest: want, bytes: size });
      // Not toEqual: it compares a Buffer byte by byte through its matchers (seconds for 3 MiB).
      expect((await readFile(join(dir, 'a.part'))).equals(bytes)).toBe(true);
      expect(pool.fetchedBytes()).toBe(size);
      expect(pool.workers).toBe(workers);

      const hashed = await pool.run({
        kind: 'hash',
        path: join(dir, 'a.part'),
        start: 0,
        end: size,
        algorithm: 'sha256',
      });
      expect(hashed.digest).toBe(want);

      // A flipped byte on the wire: the error crosses back whole, as a FerryError.
      server.inject({ kind: 'flip-byte', offset: 1000 });
      const failed = await pool
        .run(fetchTask(dir, server.url, 'b.part', want))
        .catch((e: unknown) => e);
      expect(isFerryError(failed, 'FERRY_INTEGRITY')).toBe(true);
      expect(failed).toMatchObject({ key: 'blob.bin', retryable: true });
      expect((failed as FerryError).hint).toContain('Publish the version again');
    },
  );

  it.each([0, 1])(
    'with %d workers: stop() ends a running fetch with an AbortError',
    async (workers) => {
      const { dir, server } = await serving();
      server.inject({ kind: 'stall', afterBytes: 64 * 1024 });
      const pool = new PartPool({ workers, concurrency: 4 });
      onTestFinished(() => pool.destroy());
      const running = pool.run(fetchTask(dir, server.url, 'c.part')).catch((e: unknown) => e);
      await expect.poll(() => pool.fetchedBytes()).toBeGreaterThan(0);
      pool.stop();
      expect(await running).toBeInstanceOf(AbortError);
      await expect(pool.run(fetchTask(dir, server.url, 'd.part'))).rejects.toBeInstanceOf(
        AbortError,
      );
    },
  );
});
