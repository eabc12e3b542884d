import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { createServer as createHttpsServer, get as httpsGet } from 'node:https';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type FileServer,
  makeTempDir,
  randomBytes,
  selfSignedCert,
  startHttpServer,
  type TempDir,
} from '#fixtures';
import { HttpSource } from './http-source.js';
import { HttpsProxyAgent, proxyFor } from './proxy-agent.js';

describe('proxyFor', () => {
  const env = {
    HTTP_PROXY: 'http://proxy:3128',
    HTTPS_PROXY: 'proxy:3129',
    NO_PROXY: 'localhost, .internal,cdn.example.com:8080, 10.0.0.5',
  };
  it.each([
    ['http://models.example.com/x', 'http://proxy:3128/'],
    ['https://s3.eu-west-1.amazonaws.com/b', 'http://proxy:3129/'],
    ['http://localhost:9000/', undefined],
    ['http://store.internal/x', undefined],
    ['http://internal/x', undefined],
    ['http://cdn.example.com:8080/x', undefined],
    ['http://cdn.example.com/x', 'http://proxy:3128/'],
    ['http://10.0.0.5/x', undefined],
  ])('%s → %s', (target, want) => {
    expect(proxyFor(new URL(target), env)?.href).toBe(want);
  });

  it('uses none without the variables, and none for anything with NO_PROXY=*', () => {
    expect(proxyFor(new URL('http://a/'), {})).toBeUndefined();
    expect(proxyFor(new URL('http://a/'), { ...env, NO_PROXY: '*' })).toBeUndefined();
  });

  it('sends loopback direct unless NO_PROXY is set', () => {
    const only = { HTTP_PROXY: 'http://proxy:3128' };
    expect(proxyFor(new URL('http://127.0.0.1:9000/'), only)).toBeUndefined();
    expect(proxyFor(new URL('http://localhost/'), only)).toBeUndefined();
    expect(proxyFor(new URL('http://127.0.0.1:9000/'), { ...only, NO_PROXY: '' })?.host).toBe(
      'proxy:3128',
    );
  });
});

describe('an HTTP source behind HTTP_PROXY', () => {
  let dir: TempDir;
  let origin: FileServer;
  let proxy: Server;
  const seen: string[] = [];
  const data = randomBytes(300_000, 3);

  beforeAll(async () => {
    dir = await makeTempDir('proxy');
    await writeFile(join(dir.path, 'model.bin'), data);
    origin = await startHttpServer({ root: dir.path });
    // A forward proxy: absolute-form requests are passed on, CONNECT is tunnelled.
    proxy = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      const upstream = httpRequest(
        req.url ?? '',
        { method: req.method, headers: req.headers },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      req.pipe(upstream);
    });
    proxy.on('connect', (req, socket) => {
      seen.push(`CONNECT ${req.url}`);
      const [host, port] = (req.url ?? '').split(':');
      const upstream = connect(Number(port), host, () => {
        socket.write('HTTP/1.1 200 Connection established\r\n\r\n');
        upstream.pipe(socket).pipe(upstream);
      });
    });
    proxy.listen(0, '127.0.0.1');
    await once(proxy, 'listening');
  });
  afterAll(async () => {
    proxy.close();
    await origin.close();
    await dir.remove();
  });

  it('tunnels HTTPS through CONNECT, with TLS checked end to end', async () => {
    const address = proxy.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    const { key, cert: pem } = await selfSignedCert(dir.path);
    const tlsServer = createHttpsServer({ key, cert: pem }, (_req, res) => {
      res.end('secret');
    });
    tlsServer.listen(0, '127.0.0.1');
    await once(tlsServer, 'listening');
    const tlsAddress = tlsServer.address();
    if (tlsAddress === null || typeof tlsAddress === 'string') throw new Error('no port');
    try {
      const agent = new HttpsProxyAgent(new URL(`http://127.0.0.1:${address.port}`), { ca: pem });
      const body = await new Promise<string>((resolve, reject) => {
        httpsGet(`https://127.0.0.1:${tlsAddress.port}/x`, { agent }, (res) => {
          let text = '';
          res
            .setEncoding('utf8')
            .on('data', (c: string) => (text += c))
            .on('end', () => resolve(text));
        }).on('error', reject);
      });
      agent.destroy();
      expect(body).toBe('secret');
      expect(seen).toContain(`CONNECT 127.0.0.1:${tlsAddress.port}`);
    } finally {
      tlsServer.close();
    }
  });

  it('sends its requests through the proxy, in absolute form', async () => {
    seen.length = 0;
    const address = proxy.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    process.env.HTTP_PROXY = `http://127.0.0.1:${address.port}`;
    // Set, so that the loopback origin is not sent direct.
    process.env.NO_PROXY = '';
    try {
      const source = new HttpSource(`${origin.url}/`);
      const chunks: Buffer[] = [];
      for await (const chunk of await source.read('model.bin', { start: 1000, end: 250_000 })) {
        chunks.push(chunk as Buffer);
      }
      await source.close();
      expect(Buffer.concat(chunks).equals(data.subarray(1000, 250_000))).toBe(true);
      expect(seen).toEqual([`GET ${origin.url}/model.bin`]);
    } finally {
      delete process.env.HTTP_PROXY;
      delete process.env.NO_PROXY;
    }
  });
});
