import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { copyFile, link, mkdir, open, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { publish } from '@ferry/engine';
import { selfSignedCert } from '../../test/fixtures/index.js';
import type { Dataset } from './dataset.js';
import type { Origin, OriginCounters } from './origin.js';
import { PublishedObjects } from './published-objects.js';

const BUCKET = 'bench';
const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'];

/** The nginx binary, or undefined when the Debian package is not installed. */
export function findNginx(): string | undefined {
  return NGINX.find((p) => existsSync(p));
}

/**
 * One nginx serving a directory laid out as `<bucket>/<prefix>/…`, over HTTP and HTTPS,
 * shared by three origins.
 */
export interface NginxServer {
  endpoint: string;
  /** The same files over TLS (`https://127.0.0.1:<port>`), with a self-signed certificate. */
  tlsEndpoint: string;
  /** That certificate, the only root a client needs to trust it. */
  caPath: string;
  publish(dataset: Dataset, prefix: string): Promise<void>;
  /** The dataset's files (or `keys` of them) at `<bucket>/<prefix>/<key>`: {@link Origin.putPlain}. */
  putPlain(dataset: Dataset, prefix: string, keys?: string[]): Promise<void>;
  objects: PublishedObjects;
  counters(): Promise<OriginCounters>;
  close(): Promise<void>;
}

export async function startNginx(workDir: string): Promise<NginxServer> {
  const binary = findNginx();
  if (binary === undefined) throw new Error('nginx is not installed: apt-get install -y nginx');
  const dir = join(workDir, 'nginx');
  const root = join(dir, 'root');
  await mkdir(join(dir, 'tmp'), { recursive: true });
  await mkdir(join(root, BUCKET), { recursive: true });
  const port = await freePort();
  const tlsPort = await freePort();
  const { certPath: caPath, keyPath: key } = await selfSignedCert(dir);
  const log = join(dir, 'access.log');
  const tmp = join(dir, 'tmp');
  // Two workers and sendfile: an origin faster than any client here (see the README's
  // "Latest results" for what it serves).
  // `user root`: the workers must read the runner's 0700 temp directories.
  const conf = `user root;
worker_processes 2;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 1024; }
http {
  log_format bench '$status $body_bytes_sent';
  access_log ${log} bench;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  default_type application/octet-stream;
  client_body_temp_path ${tmp}/body;
  proxy_temp_path ${tmp}/proxy;
  fastcgi_temp_path ${tmp}/fastcgi;
  uwsgi_temp_path ${tmp}/uwsgi;
  scgi_temp_path ${tmp}/scgi;
  server {
    listen 127.0.0.1:${port};
    root ${root};
  }
  server {
    listen 127.0.0.1:${tlsPort} ssl;
    ssl_certificate ${caPath};
    ssl_certificate_key ${key};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:bench:10m;
    root ${root};
  }
}
`;
  const confPath = join(dir, 'nginx.conf');
  await writeFile(confPath, conf);
  const child = spawn(binary, ['-c', confPath, '-g', 'daemon off;'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await waitForPort(port, child);
  await waitForPort(tlsPort, child);
  const endpoint = `http://127.0.0.1:${port}`;
  const objects = new PublishedObjects();
  const meter = new AccessLogMeter(log);
  return {
    endpoint,
    tlsEndpoint: `https://127.0.0.1:${tlsPort}`,
    caPath,
    objects,
    async publish(dataset, prefix) {
      // Published locally, served by nginx: ferry checks a published version's parts
      // against the manifest, so the origin's own ETags need not match the published ones.
      await publish({ dir: dataset.dir, dest: join(root, BUCKET, prefix), ref: 'latest' });
      objects.record(dataset, prefix);
    },
    async putPlain(dataset, prefix, keys) {
      const dir = join(root, BUCKET, prefix);
      // A whole copy starts from an empty folder: nginx and nginx-s3 share this root, and
      // each incremental run copies its own dataset to the same prefix.
      if (keys === undefined) await rm(dir, { recursive: true, force: true });
      for (const key of keys ?? dataset.files.keys()) {
        await placeFile(join(dataset.dir, key), join(dir, key));
      }
      objects.record(dataset, prefix);
    },
    counters: () => meter.read(),
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGQUIT');
      await exited;
    },
  };
}

/**
 * nginx reached as a plain HTTP origin (`http://…/bench/<prefix>`), as one over TLS
 * (`https://…`, every client trusting its certificate through the environment: Node's
 * NODE_EXTRA_CA_CERTS, Go's and OpenSSL's SSL_CERT_FILE, curl's CURL_CA_BUNDLE) or as
 * path-style S3.
 */
export function nginxOrigin(server: NginxServer, via: 'http' | 'https' | 's3'): Origin {
  const endpoint = via === 'https' ? server.tlsEndpoint : server.endpoint;
  const names = { http: 'nginx', https: 'nginx-https', s3: 'nginx-s3' } as const;
  const how = { http: 'http://', https: 'https:// (TLS 1.3)', s3: 's3:// (path-style GETs)' };
  return {
    name: names[via],
    describe: `nginx (2 workers, sendfile) at ${endpoint}, ferry via ${how[via]}`,
    ferryUri: (prefix) =>
      via === 's3' ? `s3://${BUCKET}/${prefix}` : `${endpoint}/${BUCKET}/${prefix}`,
    env:
      via === 'http'
        ? {}
        : via === 'https'
          ? {
              NODE_EXTRA_CA_CERTS: server.caPath,
              SSL_CERT_FILE: server.caPath,
              CURL_CA_BUNDLE: server.caPath,
            }
          : {
              AWS_ENDPOINT_URL: endpoint,
              AWS_ACCESS_KEY_ID: 'nginx',
              AWS_SECRET_ACCESS_KEY: 'nginx',
              AWS_REGION: 'us-east-1',
            },
    writable: true,
    publish: (dataset, prefix) => server.publish(dataset, prefix),
    putPlain: (dataset, prefix, keys) => server.putPlain(dataset, prefix, keys),
    objects: async (prefix) => server.objects.get(prefix),
    // s3rver and nginx both serve unsigned path-style GETs.
    httpBase: (prefix) => `${endpoint}/${BUCKET}/${prefix}`,
    counters: () => server.counters(),
    close: async () => {},
  };
}

/**
 * Requests and body bytes from nginx's access log (`$status $body_bytes_sent` a line),
 * reading only what was appended since the last call: the resume scenario reads it every
 * 10 ms while it waits to kill ferry, and the log grows by a line per request all run long.
 * nginx logs a request when it ends, so bytes of responses still being sent are not in it.
 */
class AccessLogMeter {
  readonly #path: string;
  #offset = 0;
  #rest = '';
  #requests = 0;
  #bytes = 0;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(path: string) {
    this.#path = path;
  }

  /** The totals so far; calls run one after another, so no line is counted twice. */
  read(): Promise<OriginCounters> {
    const next = this.#queue.then(() => this.#read());
    this.#queue = next.catch(() => undefined);
    return next;
  }

  async #read(): Promise<OriginCounters> {
    const handle = await open(this.#path, 'r').catch(() => undefined);
    if (handle !== undefined) {
      try {
        const { size } = await handle.stat();
        if (size > this.#offset) {
          const buffer = Buffer.alloc(size - this.#offset);
          const { bytesRead } = await handle.read(buffer, 0, buffer.length, this.#offset);
          this.#offset += bytesRead;
          const lines = (this.#rest + buffer.toString('utf8', 0, bytesRead)).split('\n');
          // A line nginx is still writing stays for the next read.
          this.#rest = lines.pop() ?? '';
          for (const line of lines) {
            const sent = Number(line.split(' ')[1]);
            if (!Number.isFinite(sent)) continue;
            this.#requests++;
            this.#bytes += sent;
          }
        }
      } finally {
        await handle.close();
      }
    }
    return { requests: this.#requests, bytes: this.#bytes };
  }
}

/**
 * Puts `from` at `to` as a hard link: no second copy on disk (a large-file dataset may be
 * GiBs), and nginx serves it as it would a copy. A copy where links fail (another file
 * system). Whatever was at `to` goes first, so a re-placed file is always `from`'s bytes.
 */
async function placeFile(from: string, to: string): Promise<void> {
  await mkdir(dirname(to), { recursive: true });
  await rm(to, { force: true });
  await link(from, to).catch(async (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EXDEV' && error.code !== 'EPERM') throw error;
    await copyFile(from, to);
  });
}

/** A port free on 127.0.0.1 right now (closed again, for a server started next). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once `child` (an nginx) accepts connections on `port`; throws if it exits. */
export async function waitForPort(port: number, child: ChildProcess): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    if (child.exitCode !== null) throw new Error(`nginx exited with code ${child.exitCode}`);
    const up = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (up) return;
    // nginx gives no readiness signal on stdout: poll the port.
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nginx did not listen on ${port}`);
}
