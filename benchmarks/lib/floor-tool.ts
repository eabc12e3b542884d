import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Origin } from './origin.js';
import { presignGetUrls } from './presign.js';
import { AWS_V2, awsEndpointArgs, awsEnv, awsV2, baseEnv, type SyncTool } from './sync-tools.js';

/** The floor's row name: a plain-Node ranged pull, the reference for Node's own cost. */
export const FLOOR = 'floor: plain Node ranged GETs';

/** Parallel ranged GETs of the floor (`node-floor.mjs --conc`). */
export const FLOOR_CONCURRENCY = 8;

const floorScript = fileURLToPath(new URL('./node-floor.mjs', import.meta.url));

// Presigned URLs live an hour; made again when older than this, so a long run never uses
// an expired one.
const URLS_MAX_AGE_MS = 50 * 60 * 1000;

interface UrlList {
  /** One URL a line, for `--url-file`. */
  file: string;
  /** The URL path every file name follows, for `--root`. */
  root: string;
  madeAt: number;
}

const s3Uri = (uri: string) => /^s3:\/\/([^/]+)\/?(.*)$/.exec(uri);

// The part of the decoded URL paths before the keys: the same for every URL of a prefix.
function rootOf(urls: string[], keys: string[]): string {
  let root: string | undefined;
  for (const [i, url] of urls.entries()) {
    const key = keys[i] as string;
    const path = decodeURIComponent(new URL(url).pathname);
    if (!path.endsWith(`/${key}`)) throw new Error(`floor: ${url} does not end with ${key}`);
    const own = path.slice(0, path.length - key.length);
    if (root !== undefined && own !== root) throw new Error(`floor: ${url} is not under ${root}`);
    root = own;
  }
  return root ?? '/';
}

export interface FloorToolOptions {
  /** Where the URL lists go. */
  workDir: string;
  /** Range size, the same as ferry's parts. */
  partSize: number;
}

/**
 * The floor as a tool: `node lib/node-floor.mjs` reading every data object of the prefix
 * (`.ferry/` left out) into `dest/<key>`. Plain URLs from `httpBase` for HTTP origins;
 * for S3 origins (ferry's URI is `s3://…`) GET URLs presigned by aws-cli v2, made once per
 * prefix before the runs, so signing is not timed.
 */
export function floorTool(options: FloorToolOptions): SyncTool {
  const lists = new Map<string, UrlList>();
  let aws: boolean | undefined;

  async function urlList(origin: Origin, prefix: string): Promise<UrlList> {
    const id = `${origin.name}/${prefix}`;
    const cached = lists.get(id);
    if (cached !== undefined && Date.now() - cached.madeAt < URLS_MAX_AGE_MS) return cached;
    const madeAt = Date.now();
    const keys = (await origin.objects(prefix)).map((o) => o.key);
    const s3 = s3Uri(origin.ferryUri(prefix));
    let urls: string[];
    if (s3 !== null) {
      const [, bucket, keyPrefix = ''] = s3;
      const under = keyPrefix.replace(/\/+$/, '');
      urls = await presignGetUrls(
        keys.map((k) => `s3://${bucket}/${under === '' ? k : `${under}/${k}`}`),
        { aws: AWS_V2, globalArgs: awsEndpointArgs(origin), env: awsEnv(origin) },
      );
    } else {
      const base = (origin.httpBase?.(prefix) ?? origin.ferryUri(prefix)).replace(/\/+$/, '');
      urls = keys.map((k) => `${base}/${k.split('/').map(encodeURIComponent).join('/')}`);
    }
    const file = join(options.workDir, `floor-${id.replace(/[^\w-]/g, '_')}.urls`);
    await writeFile(file, `${urls.join('\n')}\n`);
    const list = { file, root: rootOf(urls, keys), madeAt };
    lists.set(id, list);
    return list;
  }

  return {
    name: FLOOR,
    kind: 'floor',
    supports(origin) {
      if (s3Uri(origin.ferryUri('x')) === null) return true;
      aws ??= awsV2();
      return aws;
    },
    async command(origin, prefix, dest) {
      const list = await urlList(origin, prefix);
      return {
        command: process.execPath,
        args: [
          floorScript,
          '--out',
          dest,
          '--conc',
          String(FLOOR_CONCURRENCY),
          '--part-mib',
          String(options.partSize / 2 ** 20),
          '--root',
          list.root,
          '--url-file',
          list.file,
        ],
        env: { ...baseEnv(), ...origin.env },
      };
    },
    filesDir: (dest) => dest,
  };
}
