import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { publish } from '@ferry/engine';
import { encodeManifest, parseManifest, versionIdOf } from '@ferry/manifest';
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
      const dest = join(root, BUCKET, prefix);
      // A local publish destination must exist already.
      await mkdir(dest, { recursive: true });
      await publish({ dir: dataset.dir, dest, ref: 'latest' });
      await useNginxEtags(dest);
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

/**
 * A local publish records the local source's ETags; nginx sends `"<mtime hex>-<size hex>"`,
 * and ferry pins every ranged read with If-Match, so the manifest must carry nginx's ETags.
 * That changes the manifest, hence its version id: write it under the new id and move the ref.
 */
async function useNginxEtags(dest: string): Promise<void> {
  const refPath = join(dest, '.ferry', 'refs', 'latest');
  const id = (await readFile(refPath, 'utf8')).trim();
  const manifestDir = join(dest, '.ferry', 'manifests');
  const manifest = parseManifest(await readFile(join(manifestDir, `${id}.json`), 'utf8'));
  for (const entry of manifest.entries) {
    const info = await stat(join(dest, entry.path));
    entry.etag = `"${Math.floor(info.mtimeMs / 1000).toString(16)}-${info.size.toString(16)}"`;
  }
  const newId = versionIdOf(manifest);
  await writeFile(join(manifestDir, `${newId}.json`), encodeManifest(manifest));
  await writeFile(refPath, newId);
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
