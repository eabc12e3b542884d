import { join } from 'node:path';
import type { PublishResult, PullResult, RemoteGcResult } from '@ferry/engine';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  differingFiles,
  makeTempDir,
  type S3Server,
  s3Env,
  startS3Server,
  type TempDir,
  totalSize,
  writeTwoModels,
} from '#fixtures';
import { cleanEnv, doneResult, runFerry } from './ferry-process.js';

const MiB = 1024 * 1024;
let s3: S3Server;
let tmp: TempDir;
let env: Record<string, string>;
let buckets = 0;

beforeAll(async () => {
  s3 = await startS3Server();
});
afterAll(() => s3?.close());
beforeEach(async () => {
  tmp = await makeTempDir('e2e-store');
  env = cleanEnv(tmp.path, s3Env(s3.endpoint));
  return () => tmp.remove();
});

/** Two models sharing a 4 MiB shard; each has a 2 MiB shard and a tokenizer of its own. */
const twoModels = () =>
  writeTwoModels([join(tmp.path, 'llama-a'), join(tmp.path, 'llama-b')], {
    shards: [4 * MiB, 2 * MiB],
    seeds: [3, 90],
  });

async function ferryJson<T>(args: string[]): Promise<T> {
  const run = await runFerry([...args, '--json'], { env });
  expect(run.code, run.stderr).toBe(0);
  return doneResult<T>(run.stdout);
}

describe('ferry publish to a store shared by models', () => {
  it('s3: the second model uploads only what the first lacks; unpublish + gc --remote leaves the other model pulling byte-exact', async () => {
    const bucket = `models-${++buckets}`;
    await s3.createBucket(bucket);
    const { a, b } = await twoModels();
    const publish = (model: string) =>
      ferryJson<PublishResult>([
        'publish',
        join(tmp.path, model),
        `s3://${bucket}/${model}`,
        '--ref',
        'v1',
        '--part-size',
        '1MiB',
      ]);
    const first = await publish('llama-a');
    expect(first).toMatchObject({ store: `s3://${bucket}`, uploadedBytes: totalSize(a) });
    const second = await publish('llama-b');
    const config = a.get('config.json')?.length ?? 0;
    expect(second).toMatchObject({ store: `s3://${bucket}`, uploadedParts: 3 });
    expect(second.uploadedBytes).toBe(totalSize(b) - 4 * MiB - config);

    const text = await runFerry(['refs', `s3://${bucket}/llama-b`], { env });
    expect(text.stdout).toMatch(/\nv1 +sha256:\w{12} +\S+ +5 +\S+ MiB +store\n/);

    expect((await runFerry(['unpublish', `s3://${bucket}/llama-a@v1`], { env })).code).toBe(0);
    const gc = await ferryJson<RemoteGcResult>([
      'gc',
      '--remote',
      `s3://${bucket}/llama-a`,
      '--grace',
      '0',
    ]);
    expect(gc).toMatchObject({
      refs: 1,
      prefixes: 2,
      removedParts: 3,
      removedBytes: 2 * MiB + (a.get('tokenizer/tokenizer.json')?.length ?? 0),
    });
    const pulled = await ferryJson<PullResult>([
      'pull',
      `s3://${bucket}/llama-b@v1`,
      '--to',
      join(tmp.path, 'cache'),
    ]);
    expect(await differingFiles(pulled.dir, b)).toEqual([]);
  });

  it('a local folder: --store marks it once, the next model finds it, and both pull byte-exact', async () => {
    const { a, b } = await twoModels();
    const store = join(tmp.path, 'models');
    const first = await runFerry(
      [
        'publish',
        join(tmp.path, 'llama-a'),
        join(store, 'llama-a'),
        '--ref',
        'v1',
        '--store',
        store,
        '--part-size',
        '1MiB',
      ],
      { env },
    );
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/; parts in file:\/\/\S+\/models\n$/);
    const second = await ferryJson<PublishResult>([
      'publish',
      join(tmp.path, 'llama-b'),
      join(store, 'llama-b'),
      '--ref',
      'v1',
      '--part-size',
      '1MiB',
    ]);
    expect(second.uploadedParts).toBe(3);
    for (const [model, files] of [
      ['llama-a', a],
      ['llama-b', b],
    ] as const) {
      const pulled = await ferryJson<PullResult>([
        'pull',
        `${join(store, model)}@v1`,
        '--to',
        join(tmp.path, 'cache'),
      ]);
      expect(await differingFiles(pulled.dir, files)).toEqual([]);
    }
    const elsewhere = await runFerry(
      [
        'publish',
        join(tmp.path, 'llama-a'),
        join(store, 'x'),
        '--ref',
        'v1',
        '--store',
        join(tmp.path, 'other'),
      ],
      { env },
    );
    expect(elsewhere.code).toBe(2);
    expect(elsewhere.stderr).toContain('is not');
  });
});
