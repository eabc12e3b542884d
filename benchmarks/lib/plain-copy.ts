import { execFile } from 'node:child_process';
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

/**
 * Uploads the dataset's files to `s3://<bucket>/<prefix>/` as plain objects, with no
 * `.ferry/` manifests (`aws s3 cp --recursive`: aws-cli 2.9 sends plain bodies, unlike a
 * current JS SDK whose default checksums s3rver stores as aws-chunked framing), then checks
 * the listing holds exactly the dataset's keys and sizes.
 */
export async function uploadPlainCopy(
  origin: Origin,
  dataset: Dataset,
  prefix: string,
): Promise<void> {
  const s3 = origin.s3;
  if (s3 === undefined) throw new Error(`${origin.name} cannot be listed`);
  const env = awsEnv(origin);
  const endpoint = awsEndpointArgs(origin);
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
  ) as { Contents?: Array<{ Key: string; Size: number }> };
  const listed = new Map(
    (listing.Contents ?? []).map((o) => [o.Key.slice(prefix.length + 1), o.Size]),
  );
  const wrong = [...dataset.files]
    .filter(([key, facts]) => listed.get(key) !== facts.size)
    .map(([key]) => key);
  if (wrong.length > 0 || listed.size !== dataset.files.size) {
    throw new Error(
      `plain copy at ${prefix}: ${listed.size} objects listed for ${dataset.files.size} files; wrong or missing: ${wrong.slice(0, 3).join(', ')}`,
    );
  }
}
