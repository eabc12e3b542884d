// `pnpm demo`: the whole job on an embedded default. Starts a local S3-compatible server
// (s3rver), publishes a generated model-like folder, pulls it with the live progress
// display, pulls again (nothing moves), publishes v2 with a few MiB of one shard changed
// and pulls the update (only the changed parts move). Everything lives in a temp dir that
// is removed at the end; FERRY_DEMO_SIZE_MIB sets the size (default about 1 GiB).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTempDir, randomBytes, s3Env, startS3Server } from '../fixtures/index.js';

const MiB = 1024 * 1024;
const BIN = fileURLToPath(new URL('../../packages/cli/dist/bin.js', import.meta.url));
const totalMiB = Number(process.env.FERRY_DEMO_SIZE_MIB ?? 1024);
const SHARDS = 4;
const shardBytes = Math.max(1, Math.floor(totalMiB / SHARDS)) * MiB;

function heading(text: string): void {
  process.stdout.write(`\n\x1b[1m== ${text}\x1b[0m\n`);
}

async function ferry(env: NodeJS.ProcessEnv, ...args: string[]): Promise<void> {
  process.stdout.write(`$ ferry ${args.join(' ')}\n`);
  const child = spawn(process.execPath, [BIN, ...args], { stdio: 'inherit', env });
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`ferry ${args[0]} exited with ${code}`);
}

/** Writes a shard in 64 MiB slices, so the demo never holds a whole shard in memory. */
async function writeShard(path: string, size: number, seed: number): Promise<void> {
  const file = await open(path, 'w');
  try {
    for (let offset = 0, i = 0; offset < size; offset += 64 * MiB, i++) {
      await file.write(randomBytes(Math.min(64 * MiB, size - offset), seed * 1000 + i));
    }
  } finally {
    await file.close();
  }
}

const tmp = await makeTempDir('demo');
const s3 = await startS3Server();
try {
  const model = join(tmp.path, 'llm');
  const cache = join(tmp.path, 'cache');
  const env = { ...process.env, ...s3Env(s3.endpoint) };
  await s3.createBucket('models');

  heading(
    `Generating a model-like folder: ${SHARDS} shards of ${shardBytes / MiB} MiB, tokenizer, config`,
  );
  await mkdir(join(model, 'tokenizer'), { recursive: true });
  await writeFile(
    join(model, 'config.json'),
    JSON.stringify({ architecture: 'demo', shards: SHARDS }, null, 2),
  );
  await writeFile(join(model, 'tokenizer', 'tokenizer.json'), randomBytes(2 * MiB, 7));
  for (let i = 1; i <= SHARDS; i++) {
    await writeShard(join(model, `model-0000${i}-of-0000${SHARDS}.safetensors`), shardBytes, i);
  }

  heading('Publish v1 to the local S3 server');
  await ferry(env, 'publish', model, 's3://models/demo/llm', '--ref', 'v1');

  heading('Cold pull: every byte fetched in parallel ranges and verified');
  await ferry(env, 'pull', 's3://models/demo/llm@v1', '--to', cache);

  heading('Warm pull: the cache is complete, nothing is read or fetched');
  await ferry(env, 'pull', 's3://models/demo/llm@v1', '--to', cache);

  heading('Publish v2: 4 MiB changed inside shard 2, same size');
  const shard2 = await open(join(model, `model-00002-of-0000${SHARDS}.safetensors`), 'r+');
  await shard2.write(randomBytes(4 * MiB, 99), 0, 4 * MiB, Math.floor(shardBytes / 2));
  await shard2.close();
  await ferry(env, 'publish', model, 's3://models/demo/llm', '--ref', 'v2');
  await ferry(env, 'diff', 's3://models/demo/llm@v1', 'v2');

  heading('Incremental pull: only the changed parts move');
  await ferry(env, 'pull', 's3://models/demo/llm@v2', '--to', cache);
  await ferry(env, 'verify', cache, '--deep');

  heading('Roll back to v1: publishing v2 overwrote nothing, so v1 is still whole');
  await ferry(env, 'refs', 's3://models/demo/llm');
  await ferry(env, 'pull', 's3://models/demo/llm@v1', '--to', cache);
  heading(`Done. The files were at ${join(cache, 'demo', 'llm')} (removed now).`);
} finally {
  await s3.close();
  await tmp.remove();
}
