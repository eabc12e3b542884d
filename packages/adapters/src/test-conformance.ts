import { getEventListeners, once } from 'node:events';
import { buffer } from 'node:stream/consumers';
import { compareUtf8, type FerryErrorCode } from '@ferry/manifest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from '#fixtures';
import type { Source } from './source.js';

/** What a factory sets up for the conformance suite. */
export interface ConformanceFixture {
  /** A source opened on a root holding exactly `files`. */
  source: Source;
  /** Listing page size the source was opened with, when it pages (S3): the suite checks it paged. */
  listPageSize?: number;
  /** Replaces the object at `key` behind the source's back (a new version). */
  replace(key: string, body: Uint8Array): Promise<void>;
  /**
   * Called just before a read that the suite aborts. The returned function resolves once
   * the server side saw that read's connection (or file handle) closed.
   */
  watchRelease(): () => Promise<void>;
  close(): Promise<void>;
}

/** Sets up a real server (or directory) holding `files`, keys relative to the source root. */
export type ConformanceFactory = (
  files: ReadonlyMap<string, Uint8Array>,
) => Promise<ConformanceFixture>;

/** Large enough for ranges far apart and for a read still running when the suite aborts it. */
const BIG = 16 * 1024 * 1024;
const UNICODE_KEY = 'dir with space/ünïcödé ☃ 文件.txt';

/** Options of the suite for one adapter. */
export interface ConformanceOptions {
  /**
   * Whether the store can hold keys whose byte order differs from a directory walk's
   * (`a-b.txt` < `a/b.txt`). s3rver cannot: it lists in walk order and pages by byte order,
   * so it repeats or skips such keys. @default true
   */
  walkOrderDiffers?: boolean;
  /**
   * Whether an upload cut short still leaves an object behind. s3rver stores the bytes
   * that arrived before the connection closed; S3 and the local source do not. @default false
   */
  keepsCutUploads?: boolean;
}

/** The files every adapter serves in the suite. */
export function conformanceFiles(options: ConformanceOptions = {}): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>([
    ['big.bin', randomBytes(BIG, 1)],
    ['empty.bin', new Uint8Array(0)],
    [UNICODE_KEY, Buffer.from('unicode body ✓\n')],
    ['a/b.txt', Buffer.from('a/b')],
    ['changing.bin', randomBytes(1000, 2)],
    ['.ferry/refs/latest', Buffer.from('v1')],
  ]);
  if (options.walkOrderDiffers !== false) files.set('a-b.txt', Buffer.from('a-b'));
  for (let i = 0; i < 7; i++) files.set(`pages/p${i}.bin`, randomBytes(10 + i, 10 + i));
  return files;
}

async function keysOf(iterable: AsyncIterable<{ key: string }>): Promise<string[]> {
  const keys: string[] = [];
  for await (const info of iterable) keys.push(info.key);
  return keys;
}

const code = (c: FerryErrorCode) => expect.objectContaining({ code: c });

/**
 * The contract every Source is held to, run against a real server through `factory`:
 * listing (paged, ordered, prefix), stat, exact ranges, empty objects, awkward keys,
 * not found, a changed object under `ifMatch`, abort mid-read releasing the connection,
 * and writes where the source supports them.
 */
export function describeSourceConformance(
  name: string,
  factory: ConformanceFactory,
  options: ConformanceOptions = {},
): void {
  describe(`Source conformance: ${name}`, () => {
    const files = conformanceFiles(options);
    let fixture: ConformanceFixture;
    let source: Source;
    const big = files.get('big.bin') ?? new Uint8Array(0);

    beforeAll(async () => {
      fixture = await factory(files);
      source = fixture.source;
    });
    afterAll(async () => {
      await fixture?.close();
    });

    it('lists every key in byte order, paginated, including .ferry/', async (ctx) => {
      if (!source.capabilities.list) {
        await expect(keysOf(source.list(''))).rejects.toEqual(code('FERRY_UNSUPPORTED'));
        ctx.skip();
      }
      const before = source.metrics.requests;
      const listed: Array<{ key: string; size: number; etag?: string }> = [];
      for await (const info of source.list()) listed.push(info);
      const expected = [...files.keys()].sort(compareUtf8);
      expect(listed.map((i) => i.key)).toEqual(expected);
      for (const info of listed) expect(info.size).toBe(files.get(info.key)?.length);
      expect(listed.every((i) => typeof i.etag === 'string' && i.etag.length > 0)).toBe(true);
      if (fixture.listPageSize !== undefined) {
        const pages = Math.ceil(expected.length / fixture.listPageSize);
        expect(pages).toBeGreaterThanOrEqual(3);
        expect(source.metrics.requests - before).toBe(pages);
      }
    });

    it('lists under a prefix, as a string prefix', async (ctx) => {
      if (!source.capabilities.list) ctx.skip();
      expect(await keysOf(source.list('pages/'))).toEqual(
        [...Array(7).keys()].map((i) => `pages/p${i}.bin`),
      );
      expect(await keysOf(source.list('a'))).toEqual(
        files.has('a-b.txt') ? ['a-b.txt', 'a/b.txt'] : ['a/b.txt'],
      );
      expect(await keysOf(source.list('a/'))).toEqual(['a/b.txt']);
      expect(await keysOf(source.list('nothing/here/'))).toEqual([]);
      await expect(keysOf(source.list('../up'))).rejects.toEqual(code('FERRY_BAD_PATH'));
    });

    it('stats an object, an empty one and a missing one', async () => {
      const info = await source.stat('big.bin');
      expect(info).toMatchObject({ key: 'big.bin', size: BIG });
      expect(info.etag).toMatch(/^".+"$/);
      expect(await source.stat('empty.bin')).toMatchObject({ key: 'empty.bin', size: 0 });
      await expect(source.stat('missing.bin')).rejects.toEqual(code('FERRY_NOT_FOUND'));
    });

    it('reads exact ranges at the start, middle and end', async () => {
      const bytesBefore = source.metrics.bytesRead;
      const ranges: Array<[number, number | undefined]> = [
        [0, 100],
        [1_000_003, 1_070_001],
        [BIG - 100, BIG],
        [BIG - 10, undefined],
        [BIG - 1, BIG],
      ];
      let total = 0;
      for (const [start, end] of ranges) {
        const body = await buffer(await source.read('big.bin', { start, end }));
        const want = big.subarray(start, end ?? BIG);
        expect(body.length).toBe(want.length);
        expect(body.equals(want)).toBe(true);
        total += want.length;
      }
      expect(source.metrics.bytesRead - bytesBefore).toBe(total);
      const signal = new AbortController().signal;
      await buffer(await source.read('big.bin', { start: 0, end: 10, signal }));
      await source.stat('big.bin', { signal });
      expect(getEventListeners(signal, 'abort')).toHaveLength(0);
      const pages = files.get('pages/p3.bin') ?? new Uint8Array(0);
      expect((await buffer(await source.read('pages/p3.bin'))).equals(pages)).toBe(true);
    });

    it('reads a zero-length object and an empty range', async () => {
      expect((await buffer(await source.read('empty.bin'))).length).toBe(0);
      expect((await buffer(await source.read('big.bin', { start: 5, end: 5 }))).length).toBe(0);
      await expect(source.read('missing.bin', { start: 0, end: 0 })).rejects.toEqual(
        code('FERRY_NOT_FOUND'),
      );
    });

    it('refuses a range past the end', async () => {
      await expect(
        source.read('big.bin', { start: BIG - 10, end: BIG + 10 }).then(buffer),
      ).rejects.toEqual(code('FERRY_RANGE_MISMATCH'));
    });

    it('reads a key with spaces and unicode', async () => {
      expect(await source.readText(UNICODE_KEY)).toBe('unicode body ✓\n');
      expect((await source.stat(UNICODE_KEY)).size).toBe(files.get(UNICODE_KEY)?.length);
    });

    it('reports a missing object as FERRY_NOT_FOUND and a bad key as FERRY_BAD_PATH', async () => {
      await expect(source.read('missing/nothing.bin')).rejects.toEqual(code('FERRY_NOT_FOUND'));
      await expect(source.readText('missing.txt')).rejects.toEqual(code('FERRY_NOT_FOUND'));
      await expect(source.read('../outside')).rejects.toEqual(code('FERRY_BAD_PATH'));
      await expect(source.stat('/absolute')).rejects.toEqual(code('FERRY_BAD_PATH'));
    });

    it('fails with FERRY_SOURCE_CHANGED when the object changed under ifMatch', async () => {
      const old = await source.stat('changing.bin');
      const oldEtag = old.etag ?? '';
      const part = await buffer(
        await source.read('changing.bin', { start: 0, end: 10, ifMatch: oldEtag }),
      );
      expect(part.length).toBe(10);
      await fixture.replace('changing.bin', randomBytes(1000, 3));
      await expect(
        source.read('changing.bin', { start: 10, end: 20, ifMatch: oldEtag }).then(buffer),
      ).rejects.toEqual(code('FERRY_SOURCE_CHANGED'));
      const fresh = await source.stat('changing.bin');
      expect(fresh.etag).not.toBe(oldEtag);
      const body = await buffer(
        await source.read('changing.bin', { start: 10, end: 20, ifMatch: fresh.etag ?? '' }),
      );
      expect(body.equals(randomBytes(1000, 3).subarray(10, 20))).toBe(true);
    });

    it('aborts mid-read, rejecting with AbortError and releasing the connection', async () => {
      const controller = new AbortController();
      const released = fixture.watchRelease();
      const body = await source.read('big.bin', { signal: controller.signal });
      const [first] = (await once(body, 'data')) as [Buffer];
      expect(first.length).toBeGreaterThan(0);
      const closed = new Promise((resolve) => body.once('close', resolve));
      const failed = new Promise<unknown>((resolve) => body.once('error', resolve));
      controller.abort(new Error('user gave up'));
      expect(await failed).toMatchObject({ name: 'AbortError', code: 'FERRY_ABORTED' });
      await closed;
      await released();
      expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
      await expect(source.read('big.bin', { signal: controller.signal })).rejects.toMatchObject({
        name: 'AbortError',
      });
    });

    it('round-trips writeText/readText and write where it can write', async () => {
      if (!source.capabilities.write) {
        await expect(source.writeText('new.txt', 'x')).rejects.toEqual(code('FERRY_UNSUPPORTED'));
        return;
      }
      await source.writeText('.ferry/refs/next', 'version ✓');
      expect(await source.readText('.ferry/refs/next')).toBe('version ✓');
      const data = randomBytes(300_001, 9);
      const { Readable } = await import('node:stream');
      const stream = Readable.from([data.subarray(0, 100_000), data.subarray(100_000)]);
      const result = await source.write('written/stream.bin', stream, { size: data.length });
      expect(result.etag).toEqual((await source.stat('written/stream.bin')).etag);
      expect((await buffer(await source.read('written/stream.bin'))).equals(data)).toBe(true);
      await expect(
        source.write('written/short.bin', Readable.from([data.subarray(0, 10)]), { size: 11 }),
      ).rejects.toEqual(code('FERRY_INTEGRITY'));
      if (!options.keepsCutUploads) {
        await expect(source.stat('written/short.bin')).rejects.toEqual(code('FERRY_NOT_FOUND'));
      }
    });

    it('deletes an object where it can write; a missing one is no error', async () => {
      if (!source.capabilities.write) {
        await expect(source.delete('a.bin')).rejects.toEqual(code('FERRY_UNSUPPORTED'));
        return;
      }
      await source.writeText('gone/soon.txt', 'x');
      await source.delete('gone/soon.txt');
      await expect(source.stat('gone/soon.txt')).rejects.toEqual(code('FERRY_NOT_FOUND'));
      await source.delete('gone/soon.txt');
      await source.delete('never/was.txt');
    });

    it('copies an object inside the store where it can write: same bytes, a new object', async () => {
      if (!source.capabilities.write) {
        await expect(source.copy('a/b.txt', 'copied/b.txt')).rejects.toEqual(
          code('FERRY_UNSUPPORTED'),
        );
        return;
      }
      const before = Date.now() - 2000;
      await source.copy('big.bin', 'copied/big.bin');
      expect((await buffer(await source.read('copied/big.bin'))).equals(big)).toBe(true);
      const copied = await source.stat('copied/big.bin');
      expect(copied.size).toBe(big.length);
      // A copy is as new as a write: what keeps fresh objects from a remote gc relies on it.
      expect(copied.lastModified?.getTime()).toBeGreaterThan(before);
      await source.copy(UNICODE_KEY, 'copied/ünï ☃.txt');
      expect((await source.readText('copied/ünï ☃.txt')).toString()).toBe('unicode body ✓\n');
      await expect(source.copy('never/was.bin', 'copied/never.bin')).rejects.toEqual(
        code('FERRY_NOT_FOUND'),
      );
      await expect(source.stat('copied/never.bin')).rejects.toEqual(code('FERRY_NOT_FOUND'));
    });
  });
}
