import { getEventListeners, once } from 'node:events';
import {
  createServer as createHttpServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer } from 'node:net';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { compareUtf8 } from '@ferry/manifest';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { randomBytes, S3RVER_CREDENTIALS, type S3Server, s3Env, startS3Server } from '#fixtures';
import { openSource } from './open-source.js';
import type { Source, SourceOptions } from './source.js';

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
    expect((await buffer(await source.read('weights.bin'))).equals(data)).toBe(true);
  });

  it('shows why: with SDK-default checksums s3rver stores the aws-chunked framing', async () => {
    const source = open('s3://models/m/v2', { checksums: 'when-supported' });
    const data = randomBytes(256 * 1024, 6);
    await source.write('framed.bin', Readable.from([data]), { size: data.length });
    expect((await source.stat('framed.bin')).size).toBeGreaterThan(data.length);
  });

  it('uploads large bodies as a parallel multipart upload', async () => {
    const relay = await startRecordingRelay(server.endpoint);
    const source = open('s3://models/m/v3', {
      endpoint: relay.endpoint,
      uploadPartSize: 5 * 1024 * 1024,
    });
    const data = randomBytes(12 * 1024 * 1024 + 3, 7);
    try {
      await source.write('big.bin', Readable.from([data]), { size: data.length });
      // What s3rver was sent: one multipart upload of three parts, the last one short.
      const sent = relay.requests.map((r) =>
        r.operation.startsWith('part')
          ? `${r.method} ${r.operation} ${r.bytes}`
          : `${r.method} ${r.operation}`,
      );
      expect(sent.sort()).toEqual([
        'POST complete',
        'POST create',
        `PUT part 1 ${5 * 1024 * 1024}`,
        `PUT part 2 ${5 * 1024 * 1024}`,
        `PUT part 3 ${2 * 1024 * 1024 + 3}`,
      ]);
      expect(relay.maxPartsInFlight).toBeGreaterThan(1);
      // Every request it sent is counted, no more.
      expect(source.metrics.requests).toBe(relay.requests.length);
    } finally {
      await source.close();
      await relay.close();
    }
    const reader = open('s3://models/m/v3');
    expect((await buffer(await reader.read('big.bin'))).equals(data)).toBe(true);
    expect(
      (
        await buffer(
          await reader.read('big.bin', { start: 5 * 1024 * 1024 - 1, end: 5 * 1024 * 1024 + 1 }),
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

  it('hands its resolved reads to another source, which reads with no credential chain of its own', async () => {
    const first = open('s3://models/m/v1');
    const { options, expiresAt } = await (first.handoff?.() ?? Promise.reject(new Error('none')));
    expect(expiresAt).toBeUndefined(); // static credentials do not expire
    expect(options.s3ReadGrant?.credentials.accessKeyId).toBe(S3RVER_CREDENTIALS.accessKeyId);
    vi.stubEnv('AWS_ACCESS_KEY_ID', '');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', '');
    vi.stubEnv('AWS_PROFILE', 'ferry-test-no-such-profile');
    try {
      // Only the grant can sign: without it this source has no credentials at all.
      const { credentials: _dropped, ...rest } = options;
      const second = openSource('s3://models/m/v1', rest);
      sources.push(second);
      expect((await buffer(await second.read('config.json'))).toString()).toBe('{"a":1}');
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

  it('takes FERRY_S3_PATH_STYLE as an override and refuses an unknown value', async () => {
    vi.stubEnv('FERRY_S3_PATH_STYLE', 'sideways');
    try {
      expect(() => openSource('s3://models/x', { endpoint: server.endpoint })).toThrow(
        expect.objectContaining({
          code: 'FERRY_BAD_CONFIG',
          message: expect.stringContaining('FERRY_S3_PATH_STYLE'),
        }),
      );
      vi.stubEnv('FERRY_S3_PATH_STYLE', '1');
      await server.putObject('models', 'style/a.txt', 'path-style');
      expect(await open('s3://models/style').readText('a.txt')).toBe('path-style');
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('lists keys with XML and URL specials as they were written, page by page', async () => {
    const keys = [`a&b <c>.bin`, `q'uote"s.bin`, 'plus+sign=eq%41.bin', 'sp ace/ü☃.bin'];
    for (const key of keys) await server.putObject('models', `specials/${key}`, key);
    const source = open('s3://models/specials', { listPageSize: 2 });
    const listed: string[] = [];
    for await (const info of source.list()) {
      listed.push(info.key);
      expect(info.size).toBe(Buffer.byteLength(info.key));
      expect(info.etag).toMatch(/^"[0-9a-f]{32}"$/);
      expect(info.lastModified).toBeInstanceOf(Date);
    }
    expect(listed).toEqual([...keys].sort(compareUtf8));
    expect(source.metrics.requests).toBe(2);
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

describe('S3 reads sent directly (fake S3 origin)', () => {
  const body = randomBytes(1000, 9);
  const seen: IncomingHttpHeaders[] = [];
  let answer: (req: IncomingMessage, res: ServerResponse) => void;
  let server: Server;
  let endpoint: string;
  const sources: Source[] = [];
  const open = () => {
    const source = openSource('s3://bucket/root', { endpoint, credentials: S3RVER_CREDENTIALS });
    sources.push(source);
    return source;
  };
  const fail = (status: number, code: string, headers: Record<string, string> = {}) => {
    answer = (_req, res) => {
      res.writeHead(status, {
        'content-type': 'application/xml',
        'x-amz-request-id': 'REQ1',
        ...headers,
      });
      res.end(
        `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>m</Message><RequestId>REQ1</RequestId></Error>`,
      );
    };
  };
  const serveRange = (req: IncomingMessage, res: ServerResponse) => {
    const [, first, last] = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '') ?? [];
    res.writeHead(206, {
      etag: '"e1"',
      'content-range': `bytes ${first}-${last}/${body.length}`,
      'content-length': String(Number(last) - Number(first) + 1),
    });
    res.end(body.subarray(Number(first), Number(last) + 1));
  };

  beforeAll(async () => {
    server = createHttpServer((req, res) => {
      seen.push({ ...req.headers, ':path': req.url });
      answer(req, res);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const address = server.address();
    endpoint = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
  });
  afterAll(async () => {
    await Promise.all(sources.map((s) => s.close()));
    server.close();
  });

  it('sends a signed GET without the SDK and checks it like the SDK path', async () => {
    answer = serveRange;
    seen.length = 0;
    const source = open();
    const part = await buffer(
      await source.read('a b/ü+.bin', { start: 10, end: 20, ifMatch: '"e1"' }),
    );
    expect(part.equals(body.subarray(10, 20))).toBe(true);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({
      ':path': '/bucket/root/a%20b/%C3%BC%2B.bin?x-id=GetObject',
      range: 'bytes=10-19',
      'if-match': '"e1"',
      authorization: expect.stringMatching(
        /^AWS4-HMAC-SHA256 Credential=S3RVER\/\d+\/us-east-1\/s3\//,
      ),
    });
    expect(seen[0]).not.toHaveProperty('amz-sdk-invocation-id');
    await expect(
      source.read('x.bin', { start: 0, end: 10, ifMatch: '"other"' }),
    ).rejects.toMatchObject({
      code: 'FERRY_SOURCE_CHANGED',
    });
  });

  it('maps S3 error bodies like the SDK path', async () => {
    const source = open();
    fail(404, 'NoSuchBucket');
    await expect(source.read('x.bin', { start: 0, end: 10 })).rejects.toMatchObject({
      code: 'FERRY_NOT_FOUND',
      statusCode: 404,
      requestId: 'REQ1',
      message: expect.stringMatching(/Bucket "bucket" does not exist/),
    });
    fail(404, 'NoSuchKey');
    await expect(source.read('x.bin')).rejects.toMatchObject({
      code: 'FERRY_NOT_FOUND',
      key: 'x.bin',
    });
    fail(412, 'PreconditionFailed');
    await expect(source.read('x.bin', { ifMatch: '"e1"' })).rejects.toMatchObject({
      code: 'FERRY_SOURCE_CHANGED',
    });
    fail(403, 'SignatureDoesNotMatch');
    await expect(source.read('x.bin')).rejects.toMatchObject({
      code: 'FERRY_ACCESS_DENIED',
      message: expect.stringMatching(/SignatureDoesNotMatch/),
    });
    fail(503, 'SlowDown', { 'retry-after': '3' });
    await expect(source.read('x.bin')).rejects.toMatchObject({
      code: 'FERRY_THROTTLED',
      retryable: true,
      retryAfterSeconds: 3,
    });
  });

  it('hands a region redirect to the SDK, which follows it', async () => {
    seen.length = 0;
    answer = (req, res) => {
      if (req.headers['amz-sdk-invocation-id'] === undefined) {
        res.writeHead(301, { 'x-amz-bucket-region': 'eu-west-1' });
        res.end('<Error><Code>PermanentRedirect</Code></Error>');
      } else serveRange(req, res);
    };
    const source = open();
    for (let i = 0; i < 2; i++) {
      const part = await buffer(await source.read('x.bin', { start: 0, end: 5 }));
      expect(part.equals(body.subarray(0, 5))).toBe(true);
    }
    // One direct attempt; after it, this source reads through the SDK.
    expect(seen.filter((h) => h['amz-sdk-invocation-id'] === undefined)).toHaveLength(1);
  });

  it('aborting a direct read destroys its request', async () => {
    let arrived: () => void = () => {};
    let closed: () => void = () => {};
    const requestArrived = new Promise<void>((resolve) => {
      arrived = resolve;
    });
    const connectionClosed = new Promise<void>((resolve) => {
      closed = resolve;
    });
    answer = (req) => {
      // Never answers: the read is waiting for headers when it is aborted.
      req.socket.once('close', closed);
      arrived();
    };
    const source = open();
    const controller = new AbortController();
    const reading = source.read('x.bin', { signal: controller.signal });
    await requestArrived;
    controller.abort(new Error('user gave up'));
    await expect(reading).rejects.toMatchObject({
      name: 'AbortError',
      cause: new Error('user gave up'),
    });
    // The server sees the connection go now, not when the 30 s request timeout would cut it.
    await connectionClosed;
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  }, 5_000);
});

/** One request the relay passed to s3rver. */
interface RelayedRequest {
  method: string;
  /** The S3 operation, from the query: `create`, `part <n>`, `complete`, else the path. */
  operation: string;
  /** Body bytes the client sent. */
  bytes: number;
}

/**
 * An HTTP relay in front of a real server that records each request's S3 operation and
 * body size, and how many UploadPart requests were in flight at once.
 */
async function startRecordingRelay(target: string): Promise<{
  endpoint: string;
  requests: RelayedRequest[];
  maxPartsInFlight: number;
  close(): Promise<void>;
}> {
  const upstream = new URL(target);
  const requests: RelayedRequest[] = [];
  let partsInFlight = 0;
  const relay = {
    endpoint: '',
    requests,
    maxPartsInFlight: 0,
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
  const server = createHttpServer((req, res) => {
    const query = new URL(req.url ?? '/', 'http://relay').searchParams;
    const part = query.get('partNumber');
    const operation = query.has('uploads')
      ? 'create'
      : part !== null
        ? `part ${part}`
        : query.has('uploadId')
          ? 'complete'
          : (req.url ?? '');
    const record: RelayedRequest = { method: req.method ?? '', operation, bytes: 0 };
    requests.push(record);
    if (part !== null) {
      partsInFlight += 1;
      relay.maxPartsInFlight = Math.max(relay.maxPartsInFlight, partsInFlight);
      res.once('close', () => {
        partsInFlight -= 1;
      });
    }
    req.on('data', (chunk: Buffer) => {
      record.bytes += chunk.length;
    });
    const forward = httpRequest(
      {
        hostname: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  relay.endpoint = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
  return relay;
}
