import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { publish } from '@ferry/engine';
import type { Dataset } from './dataset.js';
import type { Origin, OriginCounters } from './origin.js';
import { PublishedObjects } from './published-objects.js';

const BUCKET = 'bench';
const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'];

/** The nginx binary, or undefined when the Debian package is not installed. */
export function findNginx(): string | undefined {
  return NGINX.find((p) => existsSync(p));
}

/** One nginx serving a directory laid out as `<bucket>/<prefix>/…`, shared by two origins. */
export interface NginxServer {
  endpoint: string;
  publish(dataset: Dataset, prefix: string): Promise<void>;
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
  const log = join(dir, 'access.log');
  const tmp = join(dir, 'tmp');
  // Two workers and sendfile: the fast origin of NOTES.md (~2.5 GB/s with parallel ranges).
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
}
`;
  const confPath = join(dir, 'nginx.conf');
  await writeFile(confPath, conf);
  const child = spawn(binary, ['-c', confPath, '-g', 'daemon off;'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await waitForPort(port, child);
  const endpoint = `http://127.0.0.1:${port}`;
  const objects = new PublishedObjects();
  return {
    endpoint,
    objects,
    async publish(dataset, prefix) {
      // Published locally, served by nginx: ferry checks a published version's parts
      // against the manifest, so the origin's own ETags need not match the published ones.
      await publish({ dir: dataset.dir, dest: join(root, BUCKET, prefix), ref: 'latest' });
      objects.record(dataset, prefix);
    },
    async counters() {
      const text = await readFile(log, 'utf8').catch(() => '');
      let requests = 0;
      let bytes = 0;
      for (const line of text.split('\n')) {
        const sent = Number(line.split(' ')[1]);
        if (!Number.isFinite(sent)) continue;
        requests++;
        bytes += sent;
      }
      return { requests, bytes };
    },
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGQUIT');
      await exited;
    },
  };
}

/** nginx reached as a plain HTTP origin (`http://…/bench/<prefix>`) or as path-style S3. */
export function nginxOrigin(server: NginxServer, via: 'http' | 's3'): Origin {
  const { endpoint } = server;
  return {
    name: via === 'http' ? 'nginx' : 'nginx-s3',
    describe: `nginx (2 workers, sendfile) at ${endpoint}, ferry via ${via === 'http' ? 'http://' : 's3:// (path-style GETs)'}`,
    ferryUri: (prefix) =>
      via === 'http' ? `${endpoint}/${BUCKET}/${prefix}` : `s3://${BUCKET}/${prefix}`,
    env:
      via === 'http'
        ? {}
        : {
            AWS_ENDPOINT_URL: endpoint,
            AWS_ACCESS_KEY_ID: 'nginx',
            AWS_SECRET_ACCESS_KEY: 'nginx',
            AWS_REGION: 'us-east-1',
          },
    writable: true,
    publish: (dataset, prefix) => server.publish(dataset, prefix),
    objects: async (prefix) => server.objects.get(prefix),
    // s3rver and nginx both serve unsigned path-style GETs.
    httpBase: (prefix) => `${endpoint}/${BUCKET}/${prefix}`,
    counters: () => server.counters(),
    close: async () => {},
  };
}

function freePort(): Promise<number> {
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

async function waitForPort(port: number, child: ChildProcess): Promise<void> {
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
