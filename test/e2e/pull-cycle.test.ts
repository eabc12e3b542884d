import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PullResult } from '@ferry/engine';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  differingFiles,
  makeTempDir,
  randomBytes,
  type S3Server,
  s3Env,
  startS3Server,
  type TempDir,
  totalSize,
  writeFiles,
} from '#fixtures';
import { cleanEnv, doneResult, jsonLines, runFerry } from './ferry-process.js';

const MiB = 1024 * 1024;

let s3: S3Server;
let tmp: TempDir;
let env: Record<string, string>;
let model: string;
let cache: string;
const files = new Map<string, Buffer>();

const totalBytes = () => totalSize(files);

beforeAll(async () => {
  s3 = await startS3Server();
  await s3.createBucket('weights');
  tmp = await makeTempDir('e2e-cycle');
  env = cleanEnv(tmp.path, s3Env(s3.endpoint));
  model = join(tmp.path, 'model');
  cache = join(tmp.path, 'cache');
  files.set('model-00001-of-00003.safetensors', randomBytes(3 * MiB, 1));
  files.set('model-00002-of-00003.safetensors', randomBytes(3 * MiB, 2));
  files.set('model-00003-of-00003.safetensors', randomBytes(2 * MiB + 5, 3));
  files.set('config.json', Buffer.from('{"hidden_size": 64}'));
  files.set('tokenizer/tokenizer.json', randomBytes(70_000, 4));
  await writeFiles(model, files);
});

afterAll(async () => {
  await s3?.close();
  await tmp?.remove();
});

describe('publish → pull → warm pull → publish v2 → incremental pull', () => {
  it('publishes v1, uploading every file', async () => {
    const run = await runFerry(
      [
        'publish',
        model,
        's3://weights/models/llama',
        '--ref',
        'v1',
        '--part-size',
        '1MiB',
        '--json',
      ],
      { env },
    );
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(doneResult(run.stdout)).toMatchObject({
      ref: 'v1',
      files: files.size,
      uploadedFiles: files.size,
      bytes: totalBytes(),
    });
  });

  it('pulls v1 into <root>/<prefix>/, and its JSON lines add up to the result', async () => {
    const run = await runFerry(['pull', 's3://weights/models/llama@v1', '--to', cache, '--json'], {
      env,
    });
    expect(run.code).toBe(0);
    const lines = jsonLines(run.stdout);
    expect(lines[0]).toMatchObject({
      type: 'resolved',
      source: 's3://weights/models/llama',
      ref: 'v1',
    });
    const result = doneResult<PullResult>(run.stdout);
    expect(result).toMatchObject({
      dir: join(cache, 'models', 'llama'),
      files: files.size,
      bytes: totalBytes(),
      fetchedBytes: totalBytes(),
      fetchedFiles: files.size,
      skippedFiles: 0,
    });
    const fileDone = lines.filter((l) => l.type === 'file-done');
    expect(fileDone.map((l) => l.path).sort()).toEqual([...files.keys()].sort());
    expect(fileDone.reduce((n, l) => n + Number(l.fetchedBytes), 0)).toBe(result.fetchedBytes);
    expect(await differingFiles(join(cache, 'models', 'llama'), files)).toEqual([]);
    expect((await stat(join(cache, '.ferry', 'db'))).isDirectory()).toBe(true);
  });

  it('a warm pull fetches nothing, and says so', async () => {
    const json = await runFerry(['pull', 's3://weights/models/llama@v1', '--to', cache, '--json'], {
      env,
    });
    expect(json.code).toBe(0);
    expect(doneResult(json.stdout)).toMatchObject({
      fetchedBytes: 0,
      fetchedFiles: 0,
      reusedBytes: 0,
      skippedFiles: files.size,
    });
    const human = await runFerry(['pull', 's3://weights/models/llama@v1', '--to', cache], { env });
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(
      new RegExp(
        `^pulled s3://weights/models/llama@v1 into ${cache}/models/llama: 5 files, 8\\.07 MiB \\(sha256:[0-9a-f]{12}\\)\\n`,
      ),
    );
    expect(human.stdout).toContain('\nfetched nothing, reused 0 B, skipped 5 files, removed 0 in ');
  });

  it('loads no AWS SDK to pull a published version or a plain prefix with the keys in the environment; a publish does', async () => {
    // A module hook lists every chunk of the CLI's bundle the process loads.
    const loaded = join(tmp.path, 'loaded-chunks');
    const hooks = `import { appendFileSync } from 'node:fs';
export async function load(url, context, next) {
  if (url.includes('/chunks/')) appendFileSync(${JSON.stringify(loaded)}, url + '\\n');
  return next(url, context);
}`;
    const register = join(tmp.path, 'register-hooks.mjs');
    await writeFile(
      register,
      `import { register } from 'node:module';\nregister(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hooks)}`)});\n`,
    );
    const traced = { ...env, NODE_OPTIONS: `--import=${register}` };
    const chunks = async () => (await readFile(loaded, 'utf8').catch(() => '')).trim().split('\n');

    const cold = join(tmp.path, 'cache-no-sdk');
    const pulled = await runFerry(
      ['pull', 's3://weights/models/llama@v1', '--to', cold, '--quiet'],
      {
        env: traced,
      },
    );
    expect(pulled.stderr).toBe('');
    expect(pulled.code).toBe(0);
    expect(await differingFiles(join(cold, 'models', 'llama'), files)).toEqual([]);
    expect((await chunks()).filter((url) => url.includes('/s3-sdk-'))).toEqual([]);

    // A plain prefix too: ferry lists it itself.
    await s3.putObject('weights', 'plain/config.json', '{"plain": true}');
    await s3.putObject('weights', 'plain/a & b.txt', 'listed by ferry');
    const plain = await runFerry(['pull', 's3://weights/plain', '--to', cold, '--quiet'], {
      env: traced,
    });
    expect(plain.stderr).toBe('');
    expect(plain.code).toBe(0);
    expect(await readFile(join(cold, 'plain', 'a & b.txt'), 'utf8')).toBe('listed by ferry');
    expect((await chunks()).filter((url) => url.includes('/s3-sdk-'))).toEqual([]);

    const published = await runFerry(
      ['publish', model, 's3://weights/models/llama', '--ref', 'v1-again', '--quiet'],
      { env: traced },
    );
    expect(published.code).toBe(0);
    expect((await chunks()).filter((url) => url.includes('/s3-sdk-'))).toHaveLength(1);
  });

  it('publishes v2 with one part of one shard changed: only that part is uploaded', async () => {
    const shard = Buffer.from(files.get('model-00002-of-00003.safetensors') ?? Buffer.alloc(0));
    randomBytes(1000, 9).copy(shard, MiB + 10);
    files.set('model-00002-of-00003.safetensors', shard);
    await writeFiles(model, files);
    const run = await runFerry(
      [
        'publish',
        model,
        's3://weights/models/llama',
        '--ref',
        'v2',
        '--part-size',
        '1MiB',
        '--json',
      ],
      { env },
    );
    expect(run.code).toBe(0);
    expect(doneResult(run.stdout)).toMatchObject({
      ref: 'v2',
      uploadedFiles: 1,
      uploadedBytes: MiB,
    });
  });

  it('diff shows the one changed part', async () => {
    const run = await runFerry(['diff', 's3://weights/models/llama@v1', 'v2', '--json'], { env });
    expect(run.code).toBe(0);
    expect(doneResult(run.stdout)).toMatchObject({
      transferBytes: MiB,
      added: [],
      removed: [],
      changed: [{ path: 'model-00002-of-00003.safetensors', changedBytes: MiB }],
      unchanged: { files: 4 },
    });
    const human = await runFerry(['diff', 's3://weights/models/llama@v1', 'v2'], { env });
    expect(human.stdout).toContain(
      '  changed  model-00002-of-00003.safetensors  3.00 MiB  1.00 MiB to fetch\n',
    );
    expect(human.stdout).toContain('a pull from v1 to v2 fetches 1.00 MiB\n');
  });

  it('an incremental pull fetches only the changed part', async () => {
    const run = await runFerry(['pull', 's3://weights/models/llama@v2', '--to', cache, '--json'], {
      env,
    });
    expect(run.code).toBe(0);
    expect(doneResult(run.stdout)).toMatchObject({
      fetchedBytes: MiB,
      fetchedFiles: 1,
      reusedBytes: 2 * MiB,
      skippedFiles: files.size - 1,
      removed: [],
    });
    expect(await differingFiles(join(cache, 'models', 'llama'), files)).toEqual([]);
  });

  it('status lists the folder at v2', async () => {
    const run = await runFerry(['status', cache, '--json'], { env });
    expect(run.code).toBe(0);
    expect(doneResult(run.stdout)).toMatchObject({
      root: cache,
      trees: [{ dir: 'models/llama', ref: 'v2', files: files.size, bytes: totalBytes() }],
      partials: [],
      interrupted: [],
    });
    const human = await runFerry(['status', join(cache, 'models')], { env });
    expect(human.stdout).toMatch(
      /^cache .*\n {2}FOLDER +VERSION +REF +FILES +SIZE +UPDATED +SOURCE\n {2}models\/llama +sha256:[0-9a-f]{12} +v2 +5 +8\.07 MiB /,
    );
  });

  it('verify --deep catches a file changed on disk', async () => {
    const clean = await runFerry(['verify', cache, '--deep'], { env });
    expect(clean.code).toBe(0);
    expect(clean.stdout).toBe(`re-hashed 5 files (8.07 MiB) in ${cache}: all as pulled\n`);
    const path = join(cache, 'models', 'llama', 'model-00001-of-00003.safetensors');
    const bytes = await readFile(path);
    bytes[2 * MiB + 3] = (bytes[2 * MiB + 3] ?? 0) ^ 0xff;
    await writeFile(path, bytes);

    const deep = await runFerry(['verify', cache, '--deep'], { env });
    expect(deep.code).toBe(1);
    expect(deep.stdout).toMatch(
      /^corrupt {2}models\/llama\/model-00001-of-00003\.safetensors {2}content hashes to sha256:/,
    );
    // The last progress line (all hashed), then the error.
    expect(deep.stderr.split('\n').slice(-4, -2)).toEqual([
      expect.stringMatching(/^ferry: 8\.07 MiB \/ 8\.07 MiB \(100%\) /),
      `ferry: 1 file in ${cache} is not as pulled (first: models/llama/model-00001-of-00003.safetensors, corrupt)`,
    ]);
    const json = await runFerry(['verify', cache, '--deep', '--json'], { env });
    expect(json.code).toBe(1);
    const lines = jsonLines(json.stdout);
    expect(lines.find((l) => l.type === 'done')).toMatchObject({
      result: {
        files: 5,
        problems: [{ path: 'models/llama/model-00001-of-00003.safetensors', problem: 'corrupt' }],
      },
    });
    // The engine's progress events, the same shape a pull emits, end with every byte re-hashed.
    const last = lines.filter((l) => l.type === 'progress').at(-1);
    expect(last).toMatchObject({ totalBytes: expect.any(Number), active: [] });
    expect(last?.transferredBytes).toBe(last?.totalBytes);
    expect(lines.at(-1)).toMatchObject({ type: 'error', code: 'FERRY_INTEGRITY' });
  });
});
