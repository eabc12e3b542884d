import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError } from '@ferry/manifest';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type FaultServer,
  makeTempDir,
  randomBytes,
  startFaultServer,
  type TempDir,
} from '#fixtures';
import { HttpSource } from './http-source.js';
import { readRange } from './read-range.js';

const SIZE = 1024 * 1024;
const data = randomBytes(SIZE, 7);
const FAST = { baseDelayMs: 1, maxDelayMs: 5 };

describe('readRange', () => {
  let dir: TempDir;
  let server: FaultServer;
  let http: HttpSource;

  beforeAll(async () => {
    dir = await makeTempDir('read-range');
    await writeFile(join(dir.path, 'model.bin'), data);
    server = await startFaultServer({ root: dir.path });
    http = new HttpSource(`${server.url}/`);
  });
  afterAll(async () => {
    await http.close();
    await server.close();
    await dir.remove();
  });
  beforeEach(() => server.reset());

  it('delivers exactly the range, in order, resuming a reset body from the byte it reached', async () => {
    server.inject({ kind: 'reset', afterBytes: 200_000 }, { key: 'model.bin' });
    const chunks: Buffer[] = [];
    await readRange(
      http,
      'model.bin',
      { start: 1000, end: SIZE - 1000 },
      (chunk) => {
        chunks.push(chunk);
        return undefined;
      },
      FAST,
    );
    expect(Buffer.concat(chunks).equals(data.subarray(1000, SIZE - 1000))).toBe(true);
    expect(server.requests).toHaveLength(2);
    const resumedAt = Number(/^bytes=(\d+)-/.exec(server.requests[1]?.range ?? '')?.[1]);
    expect(resumedAt).toBeGreaterThan(1000);
    expect(Buffer.concat(chunks).subarray(0, resumedAt - 1000).length).toBe(resumedAt - 1000);
  });

  it('lends chunks only to a reader that asks, from a body that can (ferry’s own client, not node:http)', async () => {
    const read = async (source: HttpSource, transientChunks: boolean) => {
      const chunks: Buffer[] = [];
      const lent = new Set<boolean>();
      await readRange(
        source,
        'model.bin',
        { start: 0, transientChunks },
        (chunk, isLent) => {
          lent.add(isLent);
          chunks.push(isLent ? Buffer.from(chunk) : chunk);
          return undefined;
        },
        FAST,
      );
      expect(Buffer.concat(chunks).equals(data)).toBe(true);
      return [...lent];
    };
    expect(await read(http, true)).toEqual([true]);
    expect(await read(http, false)).toEqual([false]);
    const before = process.env.FERRY_NODE_HTTP;
    process.env.FERRY_NODE_HTTP = '1';
    const nodeHttp = new HttpSource(`${server.url}/`);
    if (before === undefined) delete process.env.FERRY_NODE_HTTP;
    else process.env.FERRY_NODE_HTTP = before;
    try {
      expect(await read(nodeHttp, true)).toEqual([false]);
    } finally {
      await nodeHttp.close();
    }
  });

  it('does not retry a failure of its consumer', async () => {
    const failure = new FerryError('FERRY_IO', 'disk full', { retryable: true });
    await expect(
      readRange(
        http,
        'model.bin',
        { start: 0, end: SIZE },
        () => {
          throw failure;
        },
        FAST,
      ),
    ).rejects.toBe(failure);
    expect(server.requests).toHaveLength(1);
  });

  it('does not take a consumer that holds the body back for a stalled server', async () => {
    let received = 0;
    let first = true;
    await readRange(
      http,
      'model.bin',
      { start: 0, end: SIZE },
      (chunk) => {
        received += chunk.length;
        if (!first) return undefined;
        first = false;
        // Four stall timeouts of back-pressure: only a body the reader wants can stall.
        return new Promise((resolve) => setTimeout(resolve, 200));
      },
      { ...FAST, stallTimeoutMs: 50 },
    );
    expect(received).toBe(SIZE);
    expect(server.requests).toHaveLength(1);
  });

  it('reads a stalled body again from where it stopped', async () => {
    server.inject({ kind: 'stall', afterBytes: 65_536 }, { key: 'model.bin' });
    const notices: string[] = [];
    let received = 0;
    await readRange(
      http,
      'model.bin',
      { start: 0, end: SIZE },
      (chunk) => {
        received += chunk.length;
        return undefined;
      },
      { ...FAST, stallTimeoutMs: 100, onRetry: ({ error }) => notices.push(error.message) },
    );
    expect(received).toBe(SIZE);
    expect(notices).toEqual([expect.stringMatching(/model\.bin stalled: no bytes for 100 ms/)]);
  });

  it('measures a stalled body’s idle time by the clock, so a starved event loop hedges it', async () => {
    server.inject({ kind: 'stall', afterBytes: 65_536 }, { key: 'model.bin' });
    const idle: number[] = [];
    let blocked = false;
    let received = 0;
    await readRange(
      http,
      'model.bin',
      {
        start: 0,
        end: SIZE,
        lagging: (idleMs) => {
          idle.push(idleMs);
          if (!blocked) {
            // A machine too busy to run timers: the next tick comes 600 ms late.
            blocked = true;
            const until = performance.now() + 600;
            while (performance.now() < until);
            return false;
          }
          return true;
        },
      },
      (chunk) => {
        received += chunk.length;
        return undefined;
      },
      { ...FAST, stallTimeoutMs: 60_000 },
    );
    expect(received).toBe(SIZE);
    // Counted in ticks, the late tick read 2 × 250 ms; the clock says at least the 600 ms.
    expect(idle[1]).toBeGreaterThanOrEqual(600);
  });
});
