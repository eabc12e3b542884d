import { getEventListeners } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { FerryError } from '@ferry/manifest';
import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import {
  type FaultServer,
  makeTempDir,
  randomBytes,
  startFaultServer,
  type TempDir,
} from '#fixtures';
import { HttpSource } from './http-source.js';
import { LocalSource } from './local-source.js';
import type { RetryInfo } from './retry-policy.js';
import type { ObjectInfo, SignalOptions, Source } from './source.js';
import { withRetry } from './with-retry.js';

const SIZE = 1024 * 1024;
const data = randomBytes(SIZE, 42);

/** Parses the first byte of a `bytes=a-b` header. */
function rangeStart(range: string | undefined): number {
  return Number(/^bytes=(\d+)-/.exec(range ?? '')?.[1] ?? Number.NaN);
}

describe('withRetry against the fault server', () => {
  let dir: TempDir;
  let server: FaultServer;
  let http: HttpSource;
  let retries: RetryInfo[];
  let source: Source;

  beforeAll(async () => {
    dir = await makeTempDir('retry');
    await writeFile(join(dir.path, 'model.bin'), data);
    server = await startFaultServer({ root: dir.path });
    http = new HttpSource(`${server.url}/`);
  });
  afterAll(async () => {
    await http.close();
    await server.close();
    await dir.remove();
  });
  beforeEach(() => {
    server.reset();
    retries = [];
    source = withRetry(http, {
      baseDelayMs: 1,
      maxDelayMs: 5,
      onRetry: (info) => retries.push(info),
    });
  });

  it('resumes a reset body from the last byte received, with the same ifMatch', async () => {
    const { etag } = await source.stat('model.bin');
    server.reset();
    server.inject({ kind: 'reset', afterBytes: 300_000 }, { key: 'model.bin', method: 'GET' });
    const body = await buffer(
      await source.read('model.bin', { start: 1000, end: SIZE - 1000, ifMatch: etag ?? '' }),
    );
    expect(body.equals(data.subarray(1000, SIZE - 1000))).toBe(true);
    expect(server.requests).toHaveLength(2);
    const resumedAt = rangeStart(server.requests[1]?.range);
    expect(resumedAt).toBeGreaterThan(1000);
    expect(resumedAt).toBeLessThanOrEqual(1000 + 300_000);
    expect(server.requests[1]?.range).toBe(`bytes=${resumedAt}-${SIZE - 1001}`);
    expect(server.requests[1]?.ifMatch).toBe(etag);
    expect(retries).toHaveLength(1);
    expect(retries[0]).toMatchObject({
      key: 'model.bin',
      attempt: 2,
      error: { code: 'FERRY_TRANSIENT' },
    });
  });

  it('resumes a body truncated under a correct Content-Length', async () => {
    server.inject({ kind: 'truncate', afterBytes: 123_457 }, { key: 'model.bin' });
    const body = await buffer(await source.read('model.bin'));
    expect(body.equals(data)).toBe(true);
    expect(server.requests.map((r) => r.range)).toEqual([undefined, 'bytes=123457-']);
    expect(retries[0]?.error.message).toMatch(/ended after 123457 of 1048576 bytes/);
  });

  it('resumes a stalled body after stallTimeoutMs', async () => {
    source = withRetry(http, {
      baseDelayMs: 1,
      stallTimeoutMs: 150,
      onRetry: (info) => retries.push(info),
    });
    server.inject({ kind: 'stall', afterBytes: 65_536 }, { key: 'model.bin' });
    const body = await buffer(await source.read('model.bin', { start: 10, end: SIZE }));
    expect(body.equals(data.subarray(10))).toBe(true);
    expect(retries).toHaveLength(1);
    expect(retries[0]?.error).toMatchObject({
      code: 'FERRY_TRANSIENT',
      message: expect.stringMatching(/stalled/),
    });
    expect(server.requests).toHaveLength(2);
    expect(await server.settled(0)).toBe('aborted');
  });

  it('waits out Retry-After on 503 SlowDown before retrying, past maxDelayMs', async () => {
    const waits: Array<{ ms: number; requestsSent: number }> = [];
    source = withRetry(http, {
      baseDelayMs: 1,
      maxDelayMs: 5,
      onRetry: (info) => retries.push(info),
      // Records the wait instead of spending 30 s of the test's time on it.
      sleep: async (ms) => {
        waits.push({ ms, requestsSent: server.requests.length });
      },
    });
    server.inject(
      { kind: 'status', status: 503, code: 'SlowDown', retryAfterSeconds: 30 },
      { key: 'model.bin' },
    );
    const body = await buffer(await source.read('model.bin', { start: 0, end: 100 }));
    expect(body.equals(data.subarray(0, 100))).toBe(true);
    // One wait, of all the server asked for, between the refused request and the retry.
    expect(waits).toEqual([{ ms: 30_000, requestsSent: 1 }]);
    expect(server.requests).toHaveLength(2);
    expect(retries).toHaveLength(1);
    expect(retries[0]).toMatchObject({
      delayMs: 30_000,
      error: { code: 'FERRY_THROTTLED', retryAfterSeconds: 30, statusCode: 503 },
    });
  });

  it('does not retry a 200 to a ranged read (FERRY_RANGE_MISMATCH)', async () => {
    server.inject({ kind: 'ignore-range' }, { key: 'model.bin' });
    await expect(source.read('model.bin', { start: 5, end: 10 })).rejects.toMatchObject({
      code: 'FERRY_RANGE_MISMATCH',
      retryable: false,
      statusCode: 200,
    });
    expect(server.requests).toHaveLength(1);
    expect(retries).toHaveLength(0);
  });

  it('does not retry FERRY_NOT_FOUND', async () => {
    await expect(source.stat('missing.bin')).rejects.toMatchObject({
      code: 'FERRY_NOT_FOUND',
      statusCode: 404,
    });
    expect(server.requests).toHaveLength(1);
  });

  it('gives up after `retries` with the last error as cause', async () => {
    source = withRetry(http, { retries: 2, baseDelayMs: 1, onRetry: (info) => retries.push(info) });
    server.inject({ kind: 'status', status: 500 }, { key: 'model.bin', times: 5 });
    const error = await source.stat('model.bin').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(FerryError);
    expect(error).toMatchObject({
      code: 'FERRY_TRANSIENT',
      message: expect.stringMatching(/gave up after 3 attempts/),
      cause: { code: 'FERRY_TRANSIENT', statusCode: 500 },
    });
    // It says everything the last failure said.
    const last = (error as FerryError).cause as FerryError;
    expect(error).toMatchObject({
      statusCode: 500,
      key: 'model.bin',
      url: `${server.url}/model.bin`,
      retryable: true,
      hint: last.hint,
    });
    expect(server.requests).toHaveLength(3);
    expect(retries.map((r) => r.attempt)).toEqual([2, 3]);
  });

  it('gives up on a body that keeps breaking, counting open and body failures together', async () => {
    source = withRetry(http, { retries: 2, baseDelayMs: 1 });
    server.inject({ kind: 'truncate', afterBytes: 1000 }, { key: 'model.bin', times: 3 });
    await expect(source.read('model.bin').then(buffer)).rejects.toMatchObject({
      code: 'FERRY_TRANSIENT',
      message: expect.stringMatching(/gave up after 3 attempts/),
    });
    expect(server.requests.map((r) => r.range)).toEqual([undefined, 'bytes=1000-', 'bytes=2000-']);
  });

  it('aborts promptly during a backoff and leaves no listeners', async () => {
    const controller = new AbortController();
    const sourceWide = new AbortController();
    source = withRetry(http, {
      signal: sourceWide.signal,
      onRetry: () => controller.abort(new Error('stop')),
    });
    server.inject(
      { kind: 'status', status: 503, code: 'SlowDown', retryAfterSeconds: 30 },
      { key: 'model.bin' },
    );
    const started = Date.now();
    await expect(source.stat('model.bin', { signal: controller.signal })).rejects.toMatchObject({
      name: 'AbortError',
      cause: new Error('stop'),
    });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    expect(getEventListeners(sourceWide.signal, 'abort')).toHaveLength(0);
  });

  it('aborts a resumable body mid-read and leaves no listeners', async () => {
    const controller = new AbortController();
    // Held open after 64 KiB, so the response cannot complete before the abort.
    server.inject({ kind: 'stall', afterBytes: 65_536 }, { key: 'model.bin' });
    const body = await source.read('model.bin', { signal: controller.signal });
    await new Promise((resolve) => body.once('readable', resolve));
    const failed = new Promise<unknown>((resolve) => body.once('error', resolve));
    const closed = new Promise((resolve) => body.once('close', resolve));
    controller.abort();
    expect(await failed).toMatchObject({ name: 'AbortError' });
    await closed;
    expect(await server.settled(0)).toBe('aborted');
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('removes its listeners after a successful read', async () => {
    const controller = new AbortController();
    await buffer(
      await source.read('model.bin', { start: 0, end: 1000, signal: controller.signal }),
    );
    await source.stat('model.bin', { signal: controller.signal });
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('rejects at once when the signal is already aborted', async () => {
    await expect(source.read('model.bin', { signal: AbortSignal.abort() })).rejects.toMatchObject({
      name: 'AbortError',
    });
    expect(server.requests).toHaveLength(0);
  });
});

describe('withRetry listing', () => {
  it('lists again after a failure and continues after the last key yielded', async () => {
    const dir = await makeTempDir('retry-list');
    onTestFinished(() => dir.remove());
    for (const name of ['a', 'b', 'c', 'd']) await writeFile(join(dir.path, name), name);
    const local = new LocalSource(dir.path);
    let failuresLeft = 1;
    // A listing that breaks once after two keys, as a dropped connection between pages does.
    const flaky: Source = Object.assign(Object.create(local) as Source, {
      async *list(prefix?: string, options?: SignalOptions): AsyncIterable<ObjectInfo> {
        let n = 0;
        for await (const info of local.list(prefix, options)) {
          if (n++ === 2 && failuresLeft-- > 0) {
            throw new FerryError('FERRY_TRANSIENT', 'connection reset between pages', {
              retryable: true,
            });
          }
          yield info;
        }
      },
    });
    const keys: string[] = [];
    const retried: RetryInfo[] = [];
    for await (const info of withRetry(flaky, {
      baseDelayMs: 1,
      onRetry: (r) => retried.push(r),
    }).list()) {
      keys.push(info.key);
    }
    expect(keys).toEqual(['a', 'b', 'c', 'd']);
    expect(retried).toHaveLength(1);
  });
});

describe('withRetry backoff', () => {
  it('by default backs off below 200, 400, 800, 1600 and 3200 ms, then gives up', async () => {
    const waits: number[] = [];
    const refused: Source = Object.assign(Object.create(new LocalSource('/')) as Source, {
      stat: async () => {
        throw new FerryError('FERRY_TRANSIENT', 'connection refused', { retryable: true });
      },
    });
    const source = withRetry(refused, {
      random: () => 0.999,
      // What a test that spawns the CLI saves with FERRY_RETRY_BASE_MS: these waits, real.
      sleep: async (ms) => {
        waits.push(ms);
      },
    });
    await expect(source.stat('x')).rejects.toMatchObject({
      message: 'connection refused (gave up after 6 attempts)',
    });
    expect(waits).toEqual([199, 399, 799, 1598, 3196]);
  });
});
