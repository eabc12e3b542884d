import { lstat, mkdir, open, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SourceOptions } from '@ferry/adapters';
import { type PullEvent, publish, pull } from '@ferry/engine';
import { isFerryError } from '@ferry/manifest';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  differingFiles,
  makeTempDir,
  partObjectKey,
  randomBytes,
  S3RVER_CREDENTIALS,
  type S3Server,
  startFaultServer,
  startS3Server,
  type TempDir,
  totalSize,
  writeModel,
} from '#fixtures';

const MiB = 1024 * 1024;

let s3: S3Server;
let tmp: TempDir;
let options: SourceOptions;
let bucketCount = 0;

beforeAll(async () => {
  s3 = await startS3Server();
  options = { endpoint: s3.endpoint, region: 'us-east-1', credentials: { ...S3RVER_CREDENTIALS } };
});
afterAll(() => s3.close());
beforeEach(async () => {
  tmp = await makeTempDir('s3-pull');
  return () => tmp.remove();
});

async function newBucket(): Promise<string> {
  const name = `models-${++bucketCount}`;
  await s3.createBucket(name);
  return name;
}

describe('pull from s3rver', () => {
  it('cold pull of a model-like set is byte-identical; warm pull sends only the ref and manifest GETs', async () => {
    const bucket = await newBucket();
    const origin = join(tmp.path, 'origin');
    // Shards of more than one default-size (16 MiB) part, the last one short.
    const files = await writeModel(origin, {
      shards: [32 * MiB, 16 * MiB + 12345],
      smallFiles: 30,
    });
    const dest = `s3://${bucket}/llm/v`;
    await publish({ dir: origin, dest, ref: 'v1', sourceOptions: options });

    const cache = join(tmp.path, 'cache');
    const cold = await pull({ source: dest, ref: 'v1', root: cache, sourceOptions: options });
    expect(cold.dir).toBe(join(cache, 'llm', 'v'));
    expect(await differingFiles(cold.dir, files)).toEqual([]);
    expect(cold.fetchedFiles).toBe(files.size - 1); // the empty file needs no request

    const warm = await pull({ source: dest, ref: 'v1', root: cache, sourceOptions: options });
    expect(warm.fetchedBytes).toBe(0);
    expect(warm.requests).toBe(1); // the ref; the cache holds the manifest it names
  });

  it('an update fetches only the changed parts of a shard and the new file', async () => {
    const bucket = await newBucket();
    const origin = join(tmp.path, 'origin');
    const partSize = 4 * MiB;
    const files = await writeModel(origin, { shards: [16 * MiB] });
    const dest = `s3://${bucket}/m`;
    await publish({ dir: origin, dest, ref: 'v1', partSize, sourceOptions: options });
    const cache = join(tmp.path, 'cache');
    await pull({ source: dest, ref: 'v1', root: cache, sourceOptions: options });

    const shard = Buffer.from(files.get('model-00001.safetensors') ?? Buffer.alloc(0));
    randomBytes(MiB, 77).copy(shard, 10 * MiB); // inside part 2 only
    await writeFile(join(origin, 'model-00001.safetensors'), shard);
    const added = randomBytes(123_456, 8);
    await writeFile(join(origin, 'adapter.bin'), added);
    files.set('model-00001.safetensors', shard);
    files.set('adapter.bin', added);
    const v2 = await publish({ dir: origin, dest, ref: 'v2', partSize, sourceOptions: options });
    expect(v2.uploadedFiles).toBe(2);

    const update = await pull({ source: dest, ref: 'v2', root: cache, sourceOptions: options });
    expect(await differingFiles(update.dir, files)).toEqual([]);
    expect(update.fetchedBytes).toBe(partSize + added.length);
  });

  it('a plain prefix (no manifest) is pulled from its listing and a same-size rewrite is caught', async () => {
    const bucket = await newBucket();
    const content = randomBytes(3 * MiB, 1);
    await s3.putObject(bucket, 'raw/weights.bin', content);
    await s3.putObject(bucket, 'raw/config.json', '{"a":1}');
    const cache = join(tmp.path, 'cache');
    const source = `s3://${bucket}/raw`;
    const first = await pull({ source, root: cache, sourceOptions: options, partSize: MiB });
    expect(first.fetchedBytes).toBe(3 * MiB + 7);
    const warm = await pull({ source, root: cache, sourceOptions: options, partSize: MiB });
    expect(warm.fetchedBytes).toBe(0);
    expect(warm.requests).toBe(2); // the probe for a published ref, then one listing page

    const rewritten = randomBytes(3 * MiB, 2);
    await s3.putObject(bucket, 'raw/weights.bin', rewritten);
    const update = await pull({ source, root: cache, sourceOptions: options, partSize: MiB });
    expect(update.fetchedBytes).toBe(3 * MiB);
    expect(await differingFiles(update.dir, new Map([['weights.bin', rewritten]]))).toEqual([]);
  });

  it('a plain prefix whose stored bytes no longer match their MD5 ETag fails those files, one part or many', async () => {
    const bucket = await newBucket();
    const big = randomBytes(3 * MiB + 5, 3);
    const small = randomBytes(1000, 4);
    await s3.putObject(bucket, 'raw/big.bin', big);
    await s3.putObject(bucket, 'raw/small.bin', small);
    await s3.putObject(bucket, 'raw/good.bin', 'fine');
    // Bit rot on the server: s3rver keeps the ETag it computed at upload beside the bytes.
    for (const [key, at] of [
      ['big.bin', 2 * MiB + 17],
      ['small.bin', 999],
    ] as const) {
      const stored = join(s3.bucketDir, bucket, 'raw', `${key}._S3rver_object`);
      const handle = await open(stored, 'r+');
      await handle.write(
        Buffer.from([0xff ^ ((key === 'big.bin' ? big : small)[at] ?? 0)]),
        0,
        1,
        at,
      );
      await handle.close();
    }
    const cache = join(tmp.path, 'cache');
    const error = await pull({
      source: `s3://${bucket}/raw`,
      root: cache,
      sourceOptions: options,
      partSize: MiB,
    }).catch((e: unknown) => e);
    expect(isFerryError(error, 'FERRY_INTEGRITY')).toBe(true);
    expect(String((error as Error).message)).toMatch(
      /MD5 [0-9a-f]{32} differs from ETag .*and 1 more/,
    );
    // The folder appears only with a whole version; the good file waits for a resume.
    await expect(lstat(join(cache, 'raw'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await readdir(await buildingDir(cache))).sort()).toEqual(['good.bin']);
  });

  it('a missing bucket is named as such, not as a missing ref', async () => {
    const error = await pull({
      source: 's3://no-such-bucket/llama',
      ref: 'v1',
      root: join(tmp.path, 'cache'),
      sourceOptions: options,
    }).catch((e: unknown) => e);
    expect(isFerryError(error, 'FERRY_NOT_FOUND')).toBe(true);
    expect(String((error as Error).message)).toMatch(/^Bucket "no-such-bucket" does not exist/);
  });

  it('two pulls into one root: the second waits for the first, then has nothing to do', async () => {
    const bucket = await newBucket();
    const origin = join(tmp.path, 'origin');
    const files = await writeModel(origin, { shards: [16 * MiB] });
    const dest = `s3://${bucket}/m`;
    await publish({ dir: origin, dest, ref: 'v1', sourceOptions: options });
    const cache = join(tmp.path, 'cache');
    const waits: string[] = [];
    const onEvent = (e: PullEvent) => {
      if (e.type === 'waiting-for-lock') waits.push(e.holder);
    };
    // Whichever opens the root first holds it; the other one waits.
    const [a, b] = await Promise.all([
      pull({ source: dest, ref: 'v1', root: cache, sourceOptions: options, onEvent }),
      pull({ source: dest, ref: 'v1', root: cache, sourceOptions: options, onEvent }),
    ]);
    expect(await differingFiles(a.dir, files)).toEqual([]);
    expect(a.fetchedBytes + b.fetchedBytes).toBe(totalSize(files));
    expect(waits).toHaveLength(1);
    // The holder has the store open once it reports what the source holds.
    let opened: () => void = () => {};
    const holding = new Promise<void>((resolve) => {
      opened = resolve;
    });
    const holderPull = pull({
      source: dest,
      ref: 'v1',
      root: cache,
      sourceOptions: options,
      verify: 'hash',
      onEvent: (e) => {
        if (e.type === 'resolved') opened();
      },
    });
    await holding;
    const [holder, impatient] = await Promise.allSettled([
      holderPull,
      pull({ source: dest, ref: 'v1', root: cache, sourceOptions: options, waitForLock: false }),
    ]);
    expect(holder.status).toBe('fulfilled');
    expect(
      impatient.status === 'rejected' && isFerryError(impatient.reason, 'FERRY_STORE_LOCKED'),
    ).toBe(true);
  });
});

describe('faults', () => {
  let faultRoot: string;
  let files: Map<string, Buffer>;
  const partSize = MiB;

  beforeEach(async () => {
    faultRoot = join(tmp.path, 'published');
    await mkdir(faultRoot, { recursive: true });
    const origin = join(tmp.path, 'origin');
    files = await writeModel(origin, { shards: [4 * MiB] });
    await publish({ dir: origin, dest: faultRoot, ref: 'v1', partSize });
  });

  it.each([
    ['a reset mid-body', { kind: 'reset', afterBytes: 300_000 }],
    ['503 SlowDown', { kind: 'status', status: 503, code: 'SlowDown', retryAfterSeconds: 0 }],
    ['a truncated body', { kind: 'truncate', afterBytes: 1000 }],
    ['a flipped byte', { kind: 'flip-byte', offset: 5 }],
  ] as const)('recovers from %s and writes the right bytes', async (_name, fault) => {
    const server = await startFaultServer({ root: faultRoot });
    try {
      const key = await partObjectKey(faultRoot, 'model-00001.safetensors', 1);
      server.inject(fault, { key, method: 'GET', covers: 5 });
      const retries: string[] = [];
      const result = await pull({
        source: `${server.url}/`,
        ref: 'v1',
        root: join(tmp.path, 'cache'),
        subdir: 'm',
        onEvent: (e) => {
          if (e.type === 'retry') retries.push(e.code);
        },
      });
      expect(await differingFiles(result.dir, files)).toEqual([]);
      expect(server.pending()).toBe(0);
      expect(retries.length).toBeGreaterThan(0);
    } finally {
      await server.close();
    }
  });

  it('a byte that is always wrong fails the file clearly and leaves nothing at its path', async () => {
    const server = await startFaultServer({ root: faultRoot });
    try {
      server.inject(
        { kind: 'flip-byte', offset: 7 },
        { key: await partObjectKey(faultRoot, 'model-00001.safetensors'), times: 100 },
      );
      const cache = join(tmp.path, 'cache');
      const failure = pull({ source: `${server.url}/`, ref: 'v1', root: cache, subdir: 'm' });
      await expect(failure).rejects.toSatisfy((e) => isFerryError(e, 'FERRY_INTEGRITY'));
      await expect(failure).rejects.toThrow(/model-00001\.safetensors/);
      await expect(lstat(join(cache, 'm'))).rejects.toMatchObject({ code: 'ENOENT' });
      const present = await readdir(await buildingDir(cache));
      expect(present).not.toContain('model-00001.safetensors');
      expect(present).toContain('config.json');
    } finally {
      await server.close();
    }
  });

  it('a hostile manifest with ".." paths is refused and writes nothing', async () => {
    const evil = join(tmp.path, 'evil');
    await mkdir(join(evil, '.ferry', 'refs'), { recursive: true });
    await mkdir(join(evil, '.ferry', 'manifests'), { recursive: true });
    const manifest = JSON.stringify({
      entries: [{ digest: `sha256:${'0'.repeat(64)}`, path: '../../outside.txt', size: 3 }],
      version: 1,
    });
    const { createHash } = await import('node:crypto');
    const id = `sha256:${createHash('sha256').update(manifest).digest('hex')}`;
    await writeFile(join(evil, '.ferry', 'manifests', `${id}.json`), manifest);
    await writeFile(join(evil, '.ferry', 'refs', 'latest'), id);
    const cache = join(tmp.path, 'cache');
    await expect(pull({ source: evil, root: cache })).rejects.toSatisfy((e) =>
      isFerryError(e, 'FERRY_MANIFEST_INVALID'),
    );
    expect(await readdir(tmp.path)).not.toContain('outside.txt');
    expect((await readdir(cache)).filter((n) => n !== '.ferry')).toEqual([]);
  });
});

/** The one version folder a failed first pull left half-built (`.ferry/trees/<id>`). */
async function buildingDir(cache: string): Promise<string> {
  const [only, ...more] = await readdir(join(cache, '.ferry', 'trees'));
  if (only === undefined || more.length > 0) throw new Error('expected one version folder');
  return join(cache, '.ferry', 'trees', only);
}
