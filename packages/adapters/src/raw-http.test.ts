import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { createServer as createTlsServer } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, randomBytes, selfSignedCert, type TlsIdentity } from '#fixtures';
import { RawHttpPool, type RawRequest, type RawResponse } from './raw-http.js';

/** One request as the server saw it: its head, and which connection (0, 1, …) carried it. */
interface Seen {
  head: string;
  connection: number;
}

type Respond = (socket: Socket, request: Seen, index: number) => void | Promise<void>;

/** A certificate for 127.0.0.1 and its key. */
type Tls = Pick<TlsIdentity, 'key' | 'cert'>;

/**
 * A TCP server (TLS with `tls`) that answers each request head with whatever bytes
 * `respond` writes.
 */
async function rawServer(respond: Respond, tls?: Tls) {
  const seen: Seen[] = [];
  const sockets: Socket[] = [];
  let open = 0;
  let peak = 0;
  const onSocket = (socket: Socket) => {
    const connection = sockets.length;
    sockets.push(socket);
    open += 1;
    peak = Math.max(peak, open);
    socket.on('close', () => {
      open -= 1;
    });
    socket.on('error', () => {});
    let text = '';
    socket.on('data', async (data) => {
      text += data.toString('latin1');
      for (let end = text.indexOf('\r\n\r\n'); end >= 0; end = text.indexOf('\r\n\r\n')) {
        const request = { head: text.slice(0, end), connection };
        text = text.slice(end + 4);
        seen.push(request);
        await respond(socket, request, seen.length - 1);
      }
    });
  };
  const server: Server =
    tls === undefined ? createServer(onSocket) : createTlsServer(tls, onSocket);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    port,
    seen,
    connections: () => sockets.length,
    peak: () => peak,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

/** The protocol of the suite running. */
let protocol: 'http:' | 'https:' = 'http:';

function get(port: number, path = '/f', headers: Record<string, string> = {}): RawRequest {
  return { method: 'GET', protocol, hostname: '127.0.0.1', port, path, headers };
}

const options = {
  timeoutMs: 5_000,
  timeoutError: () => Object.assign(new Error('no headers in time'), { code: 'TimeoutError' }),
};

async function body(response: RawResponse): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of response) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function ok(payload: Buffer, extra = ''): Buffer {
  return Buffer.concat([
    Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${payload.length}\r\n${extra}\r\n`),
    payload,
  ]);
}

describe.each(['http:', 'https:'] as const)('RawHttpPool over %s', (suiteProtocol) => {
  const cleanups: (() => Promise<void> | void)[] = [];
  let tls: Tls | undefined;
  let removeDir = async () => {};
  beforeAll(async () => {
    protocol = suiteProtocol;
    if (protocol === 'https:') {
      const dir = await makeTempDir('raw-https');
      removeDir = () => dir.remove();
      tls = await selfSignedCert(dir.path);
    }
  });
  afterAll(() => removeDir());
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  async function setup(respond: Respond, maxSockets = 4) {
    const server = await rawServer(respond, tls);
    const pool = new RawHttpPool({ maxSockets, ca: tls?.cert });
    cleanups.push(server.close, () => pool.destroy());
    return { server, pool };
  }

  it('reads Content-Length bodies larger than its read buffer, and reuses the connection', async () => {
    const payload = randomBytes(5 * 2 ** 20 + 123, 7);
    const { server, pool } = await setup((socket) => {
      socket.write(ok(payload, 'ETag: "abc"\r\nX-Two: a\r\nx-two: b\r\n'));
    });
    for (let i = 0; i < 3; i++) {
      const response = await pool.send(get(server.port), options);
      expect(response.statusCode).toBe(200);
      expect(response.headers.etag).toBe('"abc"');
      expect(response.headers['x-two']).toBe('a, b');
      expect((await body(response)).equals(payload)).toBe(true);
    }
    expect(server.connections()).toBe(1);
    expect(server.seen[0]?.head).toBe(
      `GET /f HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nConnection: keep-alive`,
    );
  });

  it('decodes chunked bodies delivered a few bytes at a time, extensions and trailers included', async () => {
    const wire =
      'HTTP/1.1 206 Partial Content\r\nTransfer-Encoding: chunked\r\n\r\n' +
      '5;name=value\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: yes\r\n\r\n';
    const { server, pool } = await setup(async (socket) => {
      for (let at = 0; at < wire.length; at += 3) {
        socket.write(wire.slice(at, at + 3), 'latin1');
        await sleep(1);
      }
    });
    const first = await pool.send(get(server.port), options);
    expect(first.statusCode).toBe(206);
    expect((await body(first)).toString()).toBe('hello 0123456789');
    const second = await pool.send(get(server.port), options);
    expect((await body(second)).toString()).toBe('hello 0123456789');
    expect(server.connections()).toBe(1);
  });

  it('finds the end of a head split anywhere around its blank line, before a body full of blank lines', async () => {
    const payload = Buffer.from('\r\n\r\nbody\r\n\r\n\r\n', 'latin1');
    const wire = ok(payload, 'X-Pad: 1\r\n');
    const headLength = wire.length - payload.length;
    const splits = [...Array(9).keys()].map((i) => headLength - 6 + i);
    const { server, pool } = await setup(async (socket, _request, index) => {
      const at = splits[index] ?? 0;
      socket.write(wire.subarray(0, at));
      await sleep(5);
      socket.write(wire.subarray(at));
    });
    for (const _ of splits) {
      const response = await pool.send(get(server.port), options);
      expect(response.headers['x-pad']).toBe('1');
      expect((await body(response)).equals(payload)).toBe(true);
    }
  });

  it('reads a body without a length to the close, and then uses a new connection', async () => {
    const { server, pool } = await setup((socket) => {
      socket.end('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end');
    });
    for (let i = 0; i < 2; i++) {
      expect((await body(await pool.send(get(server.port), options))).toString()).toBe(
        'until the end',
      );
    }
    expect(server.connections()).toBe(2);
  });

  it('closes after Connection: close, skips 1xx responses and reads no body after HEAD', async () => {
    const { server, pool } = await setup((socket, request) => {
      if (request.head.startsWith('HEAD')) {
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n');
      } else {
        socket.write('HTTP/1.1 100 Continue\r\n\r\n');
        socket.write(ok(Buffer.from('after continue'), 'Connection: close\r\n'));
      }
    });
    const head = await pool.send({ ...get(server.port), method: 'HEAD' }, options);
    expect(head.headers['content-length']).toBe('1000');
    expect(await body(head)).toHaveLength(0);
    const response = await pool.send(get(server.port), options);
    expect((await body(response)).toString()).toBe('after continue');
    await pool.send(get(server.port), options).then(body);
    expect(server.connections()).toBe(2);
  });

  it('replaces a kept-alive connection the server closed while it was idle, once', async () => {
    const { server, pool } = await setup((socket, _request, index) => {
      socket.write(ok(Buffer.from(`answer ${index}`)));
      // The server forgets the connection without telling: the next request meets a reset
      // (over TLS, whose sockets cannot be reset, a close).
      if (index === 0)
        setImmediate(() => ('encrypted' in socket ? socket.destroy() : socket.resetAndDestroy()));
    });
    expect((await body(await pool.send(get(server.port), options))).toString()).toBe('answer 0');
    await sleep(20);
    expect((await body(await pool.send(get(server.port), options))).toString()).toBe('answer 1');
    expect(server.connections()).toBe(2);
  });

  it('fails a body cut short with ECONNRESET, like node:http', async () => {
    const { server, pool } = await setup((socket) => {
      socket.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this');
    });
    const response = await pool.send(get(server.port), options);
    await expect(body(response)).rejects.toMatchObject({ code: 'ECONNRESET' });
  });

  it.each([
    ['a bad status line', 'HTTP/1.1 20 OK\r\n\r\n', 'HPE_INVALID_CONSTANT'],
    [
      'a header that is no token',
      'HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n',
      'HPE_INVALID_HEADER_TOKEN',
    ],
    ['a folded header', 'HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n', 'HPE_INVALID_HEADER_TOKEN'],
    [
      'Content-Length beside chunked',
      'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n',
      'HPE_UNEXPECTED_CONTENT_LENGTH',
    ],
    [
      'two Content-Lengths',
      'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n',
      'HPE_UNEXPECTED_CONTENT_LENGTH',
    ],
    [
      'a bad Content-Length',
      'HTTP/1.1 200 OK\r\nContent-Length: 3x\r\n\r\n',
      'HPE_INVALID_CONTENT_LENGTH',
    ],
    [
      'headers that never end',
      `HTTP/1.1 200 OK\r\nA: ${'x'.repeat(70_000)}`,
      'HPE_HEADER_OVERFLOW',
    ],
  ])('refuses %s', async (_name, wire, code) => {
    const { server, pool } = await setup((socket) => {
      socket.write(wire);
    });
    await expect(pool.send(get(server.port), options)).rejects.toMatchObject({ code });
  });

  it('fails a chunked body with a bad chunk size', async () => {
    const { server, pool } = await setup((socket) => {
      socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n');
    });
    const response = await pool.send(get(server.port), options);
    await expect(body(response)).rejects.toMatchObject({ code: 'HPE_INVALID_CHUNK_SIZE' });
  });

  it('refuses a request that could split its head, before sending anything', async () => {
    const { server, pool } = await setup(() => {});
    await expect(
      pool.send(get(server.port, '/f', { 'if-match': '"a"\r\nX-Injected: 1' }), options),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_CHAR' });
    await expect(pool.send(get(server.port, '/a b'), options)).rejects.toMatchObject({
      code: 'ERR_UNESCAPED_CHARACTERS',
    });
    expect(server.connections()).toBe(0);
  });

  it('times out without headers, and aborts on its signal', async () => {
    const { server, pool } = await setup(() => {});
    await expect(pool.send(get(server.port), { ...options, timeoutMs: 50 })).rejects.toMatchObject({
      code: 'TimeoutError',
    });
    const controller = new AbortController();
    const sent = pool.send(get(server.port), { ...options, signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await expect(sent).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('keeps to maxSockets, queueing the rest', async () => {
    const { server, pool } = await setup(async (socket) => {
      await sleep(20);
      socket.write(ok(Buffer.from('x')));
    }, 2);
    const answers = await Promise.all(
      Array.from({ length: 6 }, () => pool.send(get(server.port), options).then(body)),
    );
    expect(answers.map(String)).toEqual(Array(6).fill('x'));
    expect(server.peak()).toBe(2);
  });

  it('pauses the socket while the body is not read, losing nothing', async () => {
    const payload = randomBytes(8 * 2 ** 20, 9);
    const { server, pool } = await setup((socket) => {
      socket.write(ok(payload));
    });
    const response = await pool.send(get(server.port), options);
    const chunks: Buffer[] = [];
    for await (const chunk of response) {
      chunks.push(chunk as Buffer);
      await sleep(1);
    }
    expect(Buffer.concat(chunks).equals(payload)).toBe(true);
  });

  it.each([
    ['in large writes', 12 * 2 ** 20 + 77, 3 * 2 ** 20],
    ['in small writes', 256 * 2 ** 10 + 77, 2 * 2 ** 10],
  ])(
    'lends chunks from one reused buffer to a reader that copies them, pausing or not (%s)',
    async (_, size, piece) => {
      const payload = randomBytes(size, 11);
      const { server, pool } = await setup(async (socket) => {
        const whole = ok(payload);
        for (let at = 0; at < whole.length; at += piece) {
          socket.write(whole.subarray(at, at + piece));
          await sleep(1);
        }
      });
      const response = await pool.send(get(server.port), options);
      response.lend();
      const copies: Buffer[] = [];
      const memory = new Set<ArrayBufferLike>();
      response.on('data', (chunk: Buffer) => {
        copies.push(Buffer.from(chunk));
        memory.add(chunk.buffer);
        // A paused body keeps what arrives meanwhile, which must then be its own memory.
        if (copies.length % 5 === 0) {
          response.pause();
          setTimeout(() => response.resume(), 5);
        }
      });
      await once(response, 'end');
      expect(Buffer.concat(copies).equals(payload)).toBe(true);
      expect(memory.size).toBeLessThan(copies.length);
    },
  );

  it('closes a connection whose body was dropped, or that sent bytes nobody asked for', async () => {
    const { server, pool } = await setup((socket, request) => {
      // In the same write: a second one could reach the client after its next request.
      const junk = request.connection === 1 ? 'HTTP/1.1 200 OK\r\n\r\n' : '';
      socket.write(Buffer.concat([ok(randomBytes(3 * 2 ** 20, 1)), Buffer.from(junk)]));
    });
    const dropped = await pool.send(get(server.port), options);
    dropped.destroy();
    await pool.send(get(server.port), options).then(body);
    await pool.send(get(server.port), options).then(body);
    expect(server.connections()).toBe(3);
  });
});

describe('RawHttpPool over TLS', () => {
  let tls: Tls;
  let dir: Awaited<ReturnType<typeof makeTempDir>>;
  beforeAll(async () => {
    dir = await makeTempDir('raw-tls');
    tls = await selfSignedCert(dir.path);
  });
  afterAll(() => dir.remove());

  function https(port: number, hostname = '127.0.0.1'): RawRequest {
    return { method: 'GET', protocol: 'https:', hostname, port, path: '/f', headers: {} };
  }

  it('checks the server against the roots it trusts, and its name against the certificate', async () => {
    const server = await rawServer((socket) => {
      socket.write(ok(Buffer.from('secret')));
    }, tls);
    const untrusting = new RawHttpPool({ maxSockets: 2 });
    const trusting = new RawHttpPool({ maxSockets: 2, ca: tls.cert });
    try {
      await expect(untrusting.send(https(server.port), options)).rejects.toMatchObject({
        code: 'DEPTH_ZERO_SELF_SIGNED_CERT',
      });
      await expect(trusting.send(https(server.port, 'localhost'), options)).rejects.toMatchObject({
        code: 'ERR_TLS_CERT_ALTNAME_INVALID',
      });
      expect(server.seen).toEqual([]);
      const response = await trusting.send(https(server.port), options);
      expect((await body(response)).toString()).toBe('secret');
    } finally {
      untrusting.destroy();
      trusting.destroy();
      await server.close();
    }
  });

  it('gathers TLS records into larger chunks before its body sees them', async () => {
    const payload = randomBytes(4 * 2 ** 20, 9);
    const server = await rawServer((socket) => {
      socket.write(ok(payload));
    }, tls);
    const pool = new RawHttpPool({ maxSockets: 1, ca: tls.cert });
    try {
      const response = await pool.send(https(server.port), options);
      const sizes: number[] = [];
      const chunks: Buffer[] = [];
      for await (const chunk of response) {
        sizes.push((chunk as Buffer).length);
        chunks.push(chunk as Buffer);
      }
      expect(Buffer.concat(chunks).equals(payload)).toBe(true);
      // One TLS record is 16 KiB: 256 of them, handed over in far fewer chunks.
      expect(sizes.length).toBeLessThanOrEqual(64);
      expect(Math.max(...sizes)).toBe(256 * 1024);
    } finally {
      pool.destroy();
      await server.close();
    }
  });

  it('resumes the TLS session of the origin on its next connection', async () => {
    const resumed: boolean[] = [];
    const server = await rawServer((socket) => {
      resumed.push((socket as unknown as { isSessionReused(): boolean }).isSessionReused());
      socket.end(ok(Buffer.from('x'), 'Connection: close\r\n'));
    }, tls);
    const pool = new RawHttpPool({ maxSockets: 1, ca: tls.cert });
    try {
      for (let i = 0; i < 3; i++) await body(await pool.send(https(server.port), options));
      expect(server.connections()).toBe(3);
      expect(resumed).toEqual([false, true, true]);
    } finally {
      pool.destroy();
      await server.close();
    }
  });
});
