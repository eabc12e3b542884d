import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type FaultServer,
  makeTempDir,
  randomBytes,
  startFaultServer,
  type TempDir,
} from '#fixtures';
import { HttpSource } from './http-source.js';

describe('HTTP source', () => {
  const data = randomBytes(100_000, 3);
  let dir: TempDir;
  let server: FaultServer;
  let source: HttpSource;

  beforeAll(async () => {
    dir = await makeTempDir('http');
    await writeFile(join(dir.path, 'f.bin'), data);
    server = await startFaultServer({ root: dir.path });
    source = new HttpSource(`${server.url}/`);
  });
  afterAll(async () => {
    await source.close();
    await server.close();
    await dir.remove();
  });
  beforeEach(() => server.reset());

  it('accepts a 200 to a ranged read only when the range is the whole object', async () => {
    server.inject({ kind: 'ignore-range' }, { times: 2 });
    expect(
      (await buffer(await source.read('f.bin', { start: 0, end: data.length }))).equals(data),
    ).toBe(true);
    await expect(source.read('f.bin', { start: 0, end: 10 })).rejects.toMatchObject({
      code: 'FERRY_RANGE_MISMATCH',
      hint: expect.stringMatching(/Range/),
    });
  });

  it('reports a truncated body as FERRY_TRANSIENT, not a short part', async () => {
    server.inject({ kind: 'truncate', afterBytes: 5000 });
    await expect(
      source.read('f.bin', { start: 100, end: 90_000 }).then(buffer),
    ).rejects.toMatchObject({
      code: 'FERRY_TRANSIENT',
      retryable: true,
      message: expect.stringMatching(/ended after 5000 of 89900 bytes/),
    });
  });

  it('maps 503 SlowDown with Retry-After to FERRY_THROTTLED', async () => {
    server.inject({ kind: 'status', status: 503, code: 'SlowDown', retryAfterSeconds: 7 });
    await expect(source.stat('f.bin')).rejects.toMatchObject({
      code: 'FERRY_THROTTLED',
      retryAfterSeconds: 7,
      statusCode: 503,
      url: `${server.url}/f.bin`,
    });
  });

  it('names https:// when a plain-HTTP request reached a port that speaks TLS', async () => {
    // nginx's answer; Go's servers (MinIO, Caddy) say "Client sent an HTTP request to an HTTPS server."
    const html =
      '<html><head><title>400 The plain HTTP request was sent to HTTPS port</title></head></html>';
    server.inject({ kind: 'status', status: 400, html });
    await expect(source.readText('f.bin')).rejects.toMatchObject({
      code: 'FERRY_BAD_SOURCE',
      retryable: false,
      message: `${server.url} speaks HTTPS, not plain HTTP (HTTP 400)`,
      hint: `Use ${server.url.replace('http:', 'https:')} in the source URI.`,
    });
    // Any other 400 stays a response ferry cannot use.
    server.inject({ kind: 'status', status: 400, html: '<html>400 Bad Request</html>' });
    await expect(source.readText('f.bin')).rejects.toMatchObject({ code: 'FERRY_BAD_RESPONSE' });
  });

  it('percent-encodes key segments and sends If-Match', async () => {
    await writeFile(join(dir.path, 'a b#?%.bin'), 'x');
    const { etag } = await source.stat('a b#?%.bin');
    expect(await source.readText('a b#?%.bin')).toBe('x');
    await buffer(await source.read('a b#?%.bin', { ifMatch: etag ?? '' }));
    expect(server.requests.map((r) => r.url)).toEqual(Array(3).fill('/a%20b%23%3F%25.bin'));
    expect(server.requests[2]?.ifMatch).toBe(etag);
  });

  it('cannot list or write, and says so without asking the server', async () => {
    const listing = (async () => {
      for await (const _ of source.list()) break;
    })();
    await expect(listing).rejects.toMatchObject({
      code: 'FERRY_UNSUPPORTED',
      hint: expect.stringMatching(/ferry publish/),
    });
    for (const attempt of [
      () => source.write('x', new Uint8Array(1), { size: 1 }),
      () => source.writeText('x', 'y'),
      () => source.delete('x'),
      () => source.copy('y', 'x'),
    ]) {
      await expect(attempt()).rejects.toMatchObject({ code: 'FERRY_UNSUPPORTED', key: 'x' });
    }
    expect(server.requests).toHaveLength(0);
    // Callers branch on these instead of catching: they must say what the calls above did.
    expect(source.capabilities).toMatchObject({ list: false, write: false });
  });
});
