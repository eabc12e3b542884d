import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import type { Dataset } from './dataset.js';
import type { Origin } from './origin.js';
import { AWS_V2, awsEndpointArgs, awsEnv } from './sync-tools.js';

function aws(args: string[], env: Record<string, string | undefined>): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(AWS_V2, args, { env, maxBuffer: 256 * 2 ** 20 }, (error, stdout, stderr) =>
      error
        ? reject(new Error(`aws ${args.slice(0, 4).join(' ')}…: ${stderr.trim().slice(-300)}`))
        : resolve(stdout),
    );
  });
}

async function md5File(path: string): Promise<string> {
  const hash = createHash('md5');
  for await (const chunk of createReadStream(path, { highWaterMark: 2 ** 20 })) {
    hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}

/**
 * Uploads the dataset's files, or only `keys` of them, to `s3://<bucket>/<prefix>/` as
 * plain objects, with no `.ferry/` manifests (`aws s3 cp --recursive`: aws-cli 2.9 sends
 * plain bodies, unlike a current JS SDK whose default checksums s3rver stores as aws-chunked
 * framing), then checks the listing holds exactly the dataset's keys and sizes, and that
 * every object uploaded now has the local file's MD5 as its ETag (s3rver's, also for
 * multipart uploads): a same-size rewrite must not leave the old bytes behind.
 */
export async function uploadPlainCopy(
  origin: Origin,
  dataset: Dataset,
  prefix: string,
  keys?: string[],
): Promise<void> {
  const s3 = origin.s3;
  if (s3 === undefined) throw new Error(`${origin.name} cannot be listed`);
  const env = awsEnv(origin);
  const endpoint = awsEndpointArgs(origin);
  // Filters apply in order, relative to the folder: everything out, then the keys back in.
  const only =
    keys === undefined ? [] : ['--exclude', '*', ...keys.flatMap((k) => ['--include', k])];
  await aws(
    [
      ...endpoint,
      's3',
      'cp',
      '--recursive',
      '--only-show-errors',
      '--no-progress',
      '--exclude',
      '.ferry/*',
      ...only,
      dataset.dir,
      `s3://${s3.bucket}/${prefix}/`,
    ],
    env,
  );
  const listing = JSON.parse(
    (await aws(
      [
        ...endpoint,
        's3api',
        'list-objects-v2',
        '--bucket',
        s3.bucket,
        '--prefix',
        `${prefix}/`,
        '--output',
        'json',
      ],
      env,
    )) || '{}',
  ) as { Contents?: Array<{ Key: string; Size: number; ETag?: string }> };
  const listed = new Map(
    (listing.Contents ?? []).map((o) => [o.Key.slice(prefix.length + 1), o] as const),
  );
  const wrong = [...dataset.files]
    .filter(([key, facts]) => listed.get(key)?.Size !== facts.size)
    .map(([key]) => key);
  for (const key of keys ?? []) {
    const etag = listed.get(key)?.ETag?.replace(/"/g, '');
    if (etag !== (await md5File(join(dataset.dir, key)))) wrong.push(`${key} (ETag ${etag})`);
  }
  if (wrong.length > 0 || listed.size !== dataset.files.size) {
    throw new Error(
      `plain copy at ${prefix}: ${listed.size} objects listed for ${dataset.files.size} files; wrong or missing: ${wrong.slice(0, 3).join(', ')}`,
    );
  }
}
