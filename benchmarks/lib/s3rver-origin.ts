import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { publish } from '@ferry/engine';
import type { Dataset } from './dataset.js';
import type { Origin, OriginCounters } from './origin.js';
import { uploadPlainCopy } from './plain-copy.js';
import { PublishedObjects } from './published-objects.js';

const BUCKET = 'bench';
const CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
const childScript = fileURLToPath(new URL('./s3rver-child.mjs', import.meta.url));

/** s3rver in a child process, with a bucket `bench`, metered by the child itself. */
export async function startS3rverOrigin(workDir: string): Promise<Origin> {
  const directory = join(workDir, 's3rver');
  await mkdir(directory, { recursive: true });
  const child = fork(childScript, [directory, BUCKET], {
    execArgv: ['--openssl-legacy-provider'],
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  const port = await readPort(child);
  const endpoint = `http://127.0.0.1:${port}`;
  // What was published or copied where: s3rver's own listing would show part objects.
  const written = new PublishedObjects();
  const origin: Origin = {
    name: 's3rver',
    describe: `s3rver 3.7.1 (one Node process) at ${endpoint}, ferry via s3://`,
    ferryUri: (prefix) => `s3://${BUCKET}/${prefix}`,
    env: {
      AWS_ENDPOINT_URL: endpoint,
      AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
      AWS_REGION: 'us-east-1',
    },
    s3: { endpoint, region: 'us-east-1', bucket: BUCKET, credentials: CREDENTIALS },
    writable: true,
    async publish(dataset: Dataset, prefix: string) {
      await publish({
        dir: dataset.dir,
        dest: `s3://${BUCKET}/${prefix}`,
        sourceOptions: { endpoint, region: 'us-east-1', credentials: CREDENTIALS },
        ref: 'latest',
      });
      written.record(dataset, prefix);
    },
    // Needs aws-cli v2 at /usr/bin/aws, the uploader (the context checks before calling).
    async putPlain(dataset: Dataset, prefix: string, keys?: string[]) {
      await uploadPlainCopy(origin, dataset, prefix, keys);
      written.record(dataset, prefix);
    },
    async objects(prefix) {
      return written.get(prefix);
    },
    // s3rver and nginx both serve unsigned path-style GETs.
    httpBase: (prefix) => `${endpoint}/${BUCKET}/${prefix}`,
    counters: () => askCounters(child),
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.disconnect();
      await exited;
    },
  };
  return origin;
}

function askCounters(child: ChildProcess): Promise<OriginCounters> {
  return new Promise((resolve) => {
    child.once('message', (message) => resolve(message as OriginCounters));
    child.send('counters');
  });
}

async function readPort(child: ChildProcess): Promise<number> {
  const stdout = child.stdout;
  if (stdout === null) throw new Error('s3rver child has no stdout');
  const lines = createInterface({ input: stdout });
  for await (const line of lines) {
    const { port } = JSON.parse(line) as { port: number };
    lines.close();
    return port;
  }
  throw new Error('s3rver child exited before printing its port');
}
