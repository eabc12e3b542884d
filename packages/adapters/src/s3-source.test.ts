import { once } from 'node:events';
import { createServer } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { randomBytes, S3RVER_CREDENTIALS, type S3Server, s3Env, startS3Server } from '#fixtures';
import { openSource } from './open-source.js';
import type { Source, SourceOptions } from './source.js';

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}

describe('S3 source against s3rver', () => {
  let server: S3Server;
  const sources: Source[] = [];
  const open = (uri: string, options: SourceOptions = {}) => {
    const source = openSource(uri, {
      endpoint: server.endpoint,
      credentials: S3RVER_CREDENTIALS,
      ...options,
    });
    sources.push(source);
    return source;
  };

  beforeAll(async () => {
    server = await startS3Server();
    await server.createBucket('models');
    await server.putObject('models', 'm/v1/config.json', '{"a":1}');
  });
  afterAll(async () => {
    await Promise.all(sources.map((s) => s.close()));
    await server.close();
  });

  it('uploads a stream byte-exact with the custom-endpoint checksum default', async () => {
    const source = open('s3://models/m/v2');
    const data = randomBytes(3 * 1024 * 1024 + 17, 5);
    const body = Readable.from([data.subarray(0, 1_000_000), data.subarray(1_000_000)]);
    await source.write('weights.bin', body, { size: data.length });
    expect((await source.stat('weights.bin')).size).toBe(data.length);
    expect((await collect(await source.read('weights.bin'))).equals(data)).toBe(true);
  });

  it('shows why: with SDK-default checksums s3rver stores the aws-chunked framing', async () => {
    const source = open('s3://models/m/v2', { checksums: 'when-supported' });
    const data = randomBytes(256 * 1024, 6);
    await source.write('framed.bin', Readable.from([data]), { size: data.length });
    expect((await source.stat('framed.bin')).size).toBeGreaterThan(data.length);
  });

  it('uploads large bodies as a parallel multipart upload', async () => {
    const source = open('s3://models/m/v3', { uploadPartSize: 5 * 1024 * 1024 });
    const data = randomBytes(12 * 1024 * 1024 + 3, 7);
    const before = source.metrics.requests;
    await source.write('big.bin', Readable.from([data]), { size: data.length });
    expect(source.metrics.requests - before).toBe(3 + 2);
    expect((await collect(await source.read('big.bin'))).equals(data)).toBe(true);
    expect(
      (
        await collect(
          await source.read('big.bin', { start: 5 * 1024 * 1024 - 1, end: 5 * 1024 * 1024 + 1 }),
        )
      ).equals(data.subarray(5 * 1024 * 1024 - 1, 5 * 1024 * 1024 + 1)),
    ).toBe(true);
  });

  it('reads endpoint and credentials from AWS_ENDPOINT_URL and friends', async () => {
    for (const [name, value] of Object.entries(s3Env(server.endpoint))) vi.stubEnv(name, value);
    try {
      const source = openSource('s3://models/m/v1');
      sources.push(source);
      expect(await source.readText('config.json')).toBe('{"a":1}');
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('maps wrong credentials to FERRY_ACCESS_DENIED with a hint', async () => {
    const source = open('s3://models/m/v1', {
      credentials: { accessKeyId: 'WRONG', secretAccessKey: 'WRONG' },
    });
    await expect(source.stat('config.json')).rejects.toMatchObject({
      code: 'FERRY_ACCESS_DENIED',
      statusCode: 403,
    });
    await expect(source.readText('config.json')).rejects.toMatchObject({
      code: 'FERRY_ACCESS_DENIED',
      message: expect.stringMatching(/InvalidAccessKeyId/),
      hint: expect.stringMatching(/AWS_ACCESS_KEY_ID/),
      retryable: false,
    });
  });

  it('maps missing credentials and region to errors that are not retried', async () => {
    vi.stubEnv('AWS_ACCESS_KEY_ID', '');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', '');
    vi.stubEnv('AWS_PROFILE', 'ferry-test-no-such-profile');
    vi.stubEnv('AWS_REGION', '');
    vi.stubEnv('AWS_DEFAULT_REGION', '');
    vi.stubEnv('AWS_ENDPOINT_URL', '');
    vi.stubEnv('AWS_ENDPOINT_URL_S3', '');
    try {
      const noCredentials = openSource('s3://models/m/v1', { endpoint: server.endpoint });
      sources.push(noCredentials);
      await expect(noCredentials.stat('config.json')).rejects.toMatchObject({
        code: 'FERRY_ACCESS_DENIED',
        retryable: false,
      });
      const noRegion = openSource('s3://models/m/v1', { credentials: S3RVER_CREDENTIALS });
      sources.push(noRegion);
      await expect(noRegion.stat('config.json')).rejects.toMatchObject({
        code: 'FERRY_BAD_CONFIG',
        retryable: false,
      });
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('names a missing bucket', async () => {
    const source = open('s3://no-such-bucket/x');
    const listing = (async () => {
      for await (const _ of source.list()) break;
    })();
    await expect(listing).rejects.toMatchObject({
      code: 'FERRY_NOT_FOUND',
      statusCode: 404,
      message: expect.stringMatching(/Bucket "no-such-bucket" does not exist/),
      hint: expect.stringMatching(/no-such-bucket/),
    });
  });

  it('names an unreachable endpoint and AWS_ENDPOINT_URL', async () => {
    const closed = createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const address = closed.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    closed.close();
    await once(closed, 'close');
    const endpoint = `http://127.0.0.1:${port}`;
    const source = open('s3://models/m/v1', { endpoint });
    await expect(source.stat('config.json')).rejects.toMatchObject({
      code: 'FERRY_TRANSIENT',
      retryable: true,
      message: expect.stringContaining(`Cannot connect to ${endpoint} (ECONNREFUSED)`),
      hint: expect.stringContaining('AWS_ENDPOINT_URL'),
    });
  });

  it('refuses an unknown FERRY_S3_CHECKSUMS value when opening', () => {
    vi.stubEnv('FERRY_S3_CHECKSUMS', 'sometimes');
    try {
      expect(() => openSource('s3://models/x', { endpoint: server.endpoint })).toThrow(
        expect.objectContaining({ code: 'FERRY_BAD_CONFIG' }),
      );
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('fails a listing with a key that is not a clean path, naming it', async () => {
    await server.putObject('models', 'bad/a\\b.bin', 'x');
    const source = open('s3://models/bad');
    const listing = (async () => {
      for await (const _ of source.list()) {
        // drain
      }
    })();
    await expect(listing).rejects.toMatchObject({ code: 'FERRY_BAD_PATH', key: 'a\\b.bin' });
  });
});
