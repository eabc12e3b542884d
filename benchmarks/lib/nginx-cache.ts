import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { findNginx, freePort, waitForPort } from './nginx-origin.js';

/** What the cache's access log says about the requests it served. */
export interface CacheCounters {
  requests: number;
  /** Body bytes sent to clients. */
  bytes: number;
  /** `$upstream_cache_status` HIT (cache-lock waiters served from the entry included). */
  hits: number;
  /** MISS: fetched from the origin (and stored). */
  misses: number;
  /** Anything else (EXPIRED, BYPASS, or `-` for a request that never reached the cache). */
  other: number;
}

/** An nginx HTTP cache in front of an origin, started cold. */
export interface NginxCache {
  endpoint: string;
  /** Totals of its access log so far (read whole: one cold cache serves one fleet). */
  counters(): Promise<CacheCounters>;
  close(): Promise<void>;
}

export interface NginxCacheOptions {
  /** Folder for its config, logs and cache; emptied first so the cache starts cold. */
  dir: string;
  /** The origin it proxies to, e.g. `http://127.0.0.1:8080`. */
  upstream: string;
}

/**
 * One nginx proxying every request to `upstream` through `proxy_cache`: what a CDN or a
 * site cache in front of a bucket does. Keyed by `$uri` (the parts are immutable objects),
 * `proxy_cache_valid 200 206 1d`, `proxy_cache_lock on` so concurrent misses of one part go
 * to the origin once. No `slice`: ferry's part objects are whole objects of ≤ 16 MiB, and
 * with caching on nginx drops the client's `Range` towards the origin, stores the whole
 * object on the first miss and serves every range of it from the cache.
 */
export async function startNginxCache({ dir, upstream }: NginxCacheOptions): Promise<NginxCache> {
  const binary = findNginx();
  if (binary === undefined) throw new Error('nginx is not installed: apt-get install -y nginx');
  await rm(dir, { recursive: true, force: true });
  const tmp = join(dir, 'tmp');
  const cache = join(dir, 'cache');
  await mkdir(tmp, { recursive: true });
  await mkdir(cache, { recursive: true });
  const port = await freePort();
  const log = join(dir, 'access.log');
  // The lock's timeout and age are raised from 5 s: on a shared 2-core machine 8 pulls at
  // once can keep a waiter past 5 s, and a waiter that times out is sent to the origin
  // without being cached, which this scenario would count as the cache's failure.
  const conf = `user root;
worker_processes 2;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 4096; }
http {
  log_format cache '$status $body_bytes_sent $upstream_cache_status';
  access_log ${log} cache;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  default_type application/octet-stream;
  client_body_temp_path ${tmp}/body;
  proxy_temp_path ${tmp}/proxy;
  fastcgi_temp_path ${tmp}/fastcgi;
  uwsgi_temp_path ${tmp}/uwsgi;
  scgi_temp_path ${tmp}/scgi;
  proxy_cache_path ${cache} levels=1:2 keys_zone=fleet:10m max_size=64g inactive=1d use_temp_path=off;
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass ${upstream};
      proxy_cache fleet;
      proxy_cache_key $uri;
      proxy_cache_valid 200 206 1d;
      proxy_cache_lock on;
      proxy_cache_lock_timeout 60s;
      proxy_cache_lock_age 60s;
    }
  }
}
`;
  const confPath = join(dir, 'nginx.conf');
  await writeFile(confPath, conf);
  const child = spawn(binary, ['-c', confPath, '-g', 'daemon off;'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await waitForPort(port, child);
  return {
    endpoint: `http://127.0.0.1:${port}`,
    async counters() {
      const text = await readFile(log, 'utf8').catch(() => '');
      const totals: CacheCounters = { requests: 0, bytes: 0, hits: 0, misses: 0, other: 0 };
      for (const line of text.split('\n')) {
        const [, sent, status] = line.split(' ');
        if (sent === undefined || !Number.isFinite(Number(sent))) continue;
        totals.requests++;
        totals.bytes += Number(sent);
        if (status === 'HIT') totals.hits++;
        else if (status === 'MISS') totals.misses++;
        else totals.other++;
      }
      return totals;
    },
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGQUIT');
      await exited;
    },
  };
}
