import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AbortError, type Digest, type FerryError, isFerryError } from '@ferry/manifest';
import { describe, expect, it, onTestFinished } from 'vitest';
import { makeTempDir, randomBytes, startFaultServer } from '#fixtures';
import {
  defaultConcurrency,
  hashingWorkers,
  PartPool,
  pullThreads,
  sharedRunner,
  type TaskRunner,
} from './part-pool.js';
import type { PartTask, PartTaskOutcome } from './part-task.js';

const MiB = 2 ** 20;

describe('pullThreads', () => {
  it.each([
    // bytes, concurrency, cores → worker threads beside the calling one
    [10 * MiB, 16, 16, 0], // a small update: the main thread's own work
    [256 * MiB, 16, 16, 0], // one thread's worth: no worker to boot and message
    [257 * MiB, 16, 16, 1], // two threads' worth: the main thread and one worker
    [768 * MiB, 16, 2, 1], // a model on two cores: both, one of them the main thread
    [768 * MiB, 16, 16, 2], // 256 MiB of work each
    [64 * MiB, 16, 2, 0], // many small files: a file costs the same on any thread
    [768 * MiB, 2, 16, 0], // one request at a time per thread: one thread is enough
    [100 * 1024 * MiB, 16, 64, 7], // two requests in flight each at least
    [100 * 1024 * MiB, 256, 64, 63], // a large box is not capped by a constant
    [0, 1, 8, 0],
  ])('%d bytes, concurrency %d, %d cores: %d workers', (bytes, concurrency, cores, want) => {
    expect(pullThreads({ bytes }, concurrency, cores)).toEqual({
      workers: want,
      shareCallingThread: want > 0,
    });
  });

  it('keeps the calling thread to itself when it is busy', () => {
    expect(pullThreads({ bytes: 768 * MiB, callerBusy: true }, 16, 2)).toEqual({
      workers: 2,
      shareCallingThread: false,
    });
    expect(pullThreads({ bytes: 64 * MiB, callerBusy: true }, 16, 2)).toEqual({
      workers: 0,
      shareCallingThread: false,
    });
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

  it('lets a 16-core box run a thread on every core for a large model', () => {
    expect(pullThreads({ bytes: 70 * 1024 * MiB }, defaultConcurrency(16), 16)).toEqual({
      workers: 15,
      shareCallingThread: true,
    });
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

  it('with a worker and the calling thread sharing: fetches in parallel on both, and stop() ends them all', async () => {
    const { dir, bytes, server } = await serving();
    // Share of 2 each: the first two run on this thread, the next two on the worker.
    const pool = new PartPool({ workers: 1, shareCallingThread: true, concurrency: 4 });
    onTestFinished(() => pool.destroy());
    const want: Digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const parts = ['p0', 'p1', 'p2', 'p3'];
    const fetched = await Promise.all(
      parts.map((p) => pool.run(fetchTask(dir, server.url, p), 0, 'blob.bin')),
    );
    expect(fetched.map((r) => r.digest)).toEqual(parts.map(() => want));
    for (const p of parts) expect((await readFile(join(dir, p))).equals(bytes)).toBe(true);
    expect(pool.workers).toBe(1);

    server.inject({ kind: 'stall', afterBytes: 64 * 1024 }, { times: 4 });
    const running = ['s0', 's1', 's2', 's3'].map((p) =>
      pool.run(fetchTask(dir, server.url, p)).catch((e: unknown) => e),
    );
    await expect.poll(() => pool.fetchedBytes() - 4 * size).toBeGreaterThanOrEqual(4 * 64 * 1024);
    pool.stop();
    for (const outcome of await Promise.all(running)) expect(outcome).toBeInstanceOf(AbortError);
  });

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

describe('sharedRunner', () => {
  /** A runner whose tasks end when told to, recording which it was given. */
  function heldRunner() {
    const ran: string[] = [];
    const release: (() => void)[] = [];
    let closed = false;
    const runner: TaskRunner = {
      run: (task) => {
        ran.push((task as { path: string }).path);
        return new Promise<PartTaskOutcome>((resolve) =>
          release.push(() =>
            resolve({ ok: true, result: { digest: 'sha256:00', bytes: 0 }, retries: [] }),
          ),
        );
      },
      close: async () => {
        closed = true;
      },
    };
    return { runner, ran, release, closed: () => closed };
  }
  const fetch = (path: string) => ({ kind: 'fetch', path }) as unknown as PartTask;
  const hash = (path: string) => ({ kind: 'hash', path }) as unknown as PartTask;
  const copy = (path: string) => ({ kind: 'copy', path }) as unknown as PartTask;

  it('runs up to its share of fetches and copies on the calling thread, the rest and every hash on the workers', async () => {
    const here = heldRunner();
    const workers = heldRunner();
    const shared = sharedRunner(Promise.resolve(here.runner), Promise.resolve(workers.runner), 2);
    const first = [shared.run(fetch('a')), shared.run(fetch('b')), shared.run(fetch('c'))];
    await expect.poll(() => here.ran.length + workers.ran.length).toBe(3);
    expect(here.ran).toEqual(['a', 'b']);
    expect(workers.ran).toEqual(['c']);
    here.release.shift()?.();
    await first[0];
    // A slot free on the calling thread: the next fetch or copy takes it, a hash never does.
    const hashed = shared.run(hash('h'));
    const next = shared.run(copy('d'));
    await expect.poll(() => here.ran).toEqual(['a', 'b', 'd']);
    expect(workers.ran).toEqual(['c', 'h']);
    for (const done of [...here.release, ...workers.release]) done();
    await Promise.all([...first, hashed, next]);
    await shared.close();
    expect(here.closed() && workers.closed()).toBe(true);
  });
});
