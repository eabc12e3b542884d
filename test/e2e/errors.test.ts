import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, type S3Server, s3Env, startS3Server, type TempDir } from '#fixtures';
import { cleanEnv, jsonLines, runFerry } from './ferry-process.js';

let s3: S3Server;
let tmp: TempDir;
let env: Record<string, string>;

beforeAll(async () => {
  s3 = await startS3Server();
  await s3.createBucket('weights');
  await s3.putObject('weights', 'm/config.json', '{}');
  tmp = await makeTempDir('e2e-errors');
  env = cleanEnv(tmp.path, s3Env(s3.endpoint));
});

afterAll(async () => {
  await s3?.close();
  await tmp?.remove();
});

/** A port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** Asserts ferry failed with `code` and exactly one `ferry:` line plus one `hint:` line. */
function expectOneLineError(
  run: { code: number | null; stdout: string; stderr: string },
  code: number,
  message: string | RegExp,
) {
  expect(run.code).toBe(code);
  const lines = run.stderr.split('\n').filter((l) => l !== '');
  expect(lines).toHaveLength(2);
  const [first, hint] = lines;
  if (typeof message === 'string') expect(first).toBe(`ferry: ${message}`);
  else expect(first).toMatch(message);
  expect(hint).toMatch(/^hint: \S/);
  expect(run.stderr).not.toContain('    at ');
}

describe('usage errors exit 2', () => {
  it('a bad flag value names the flag and the accepted forms', async () => {
    const run = await runFerry(
      ['pull', 's3://weights/m', '--part-size', '16XB', '--to', tmp.path],
      { env },
    );
    expectOneLineError(run, 2, 'ferry: --part-size: "16XB" is not a size'.slice('ferry: '.length));
    expect(run.stderr).toContain(
      'hint: Give a whole number of bytes (1048576) or a number with a unit: 16MiB, 64MB, 1GiB.',
    );
  });

  it('an unknown flag or command', async () => {
    expectOneLineError(
      await runFerry(['pull', 's3://weights/m', '--fast'], { env }),
      2,
      'pull: unknown flag --fast',
    );
    expectOneLineError(await runFerry(['fetch'], { env }), 2, 'unknown command "fetch"');
  });

  it('a malformed model.json names the file and what is wrong', async () => {
    const cwd = join(tmp.path);
    await writeFile(join(cwd, 'model.json'), '{"download_files_from": "m",}');
    const json = await runFerry(['pull', '--source', 's3://weights'], { env, cwd });
    expectOneLineError(
      json,
      2,
      new RegExp(`^ferry: ${join(cwd, 'model.json')}: is not valid JSON: `),
    );

    await writeFile(
      join(cwd, 'model.json'),
      '{"download_files_from": "m", "download_files_to": 42}',
    );
    const typed = await runFerry(['pull', '--source', 's3://weights', '--json'], { env, cwd });
    expectOneLineError(
      typed,
      2,
      `${join(cwd, 'model.json')}: "download_files_to" must be a string, not a number (42)`,
    );
    expect(jsonLines(typed.stdout)).toEqual([
      expect.objectContaining({
        type: 'error',
        code: 'FERRY_BAD_CONFIG',
        key: 'download_files_to',
      }),
    ]);
  });

  it('a malformed source URI', async () => {
    expectOneLineError(
      await runFerry(['pull', 's3://x/m', '--to', tmp.path], { env }),
      2,
      '"x" is not a bucket name: "s3://x/m"',
    );
  });
});

describe('runtime errors exit 1', () => {
  it('a missing bucket', async () => {
    const run = await runFerry(['pull', 's3://nosuchbucket/m', '--to', join(tmp.path, 'c1')], {
      env,
    });
    expectOneLineError(
      run,
      1,
      `Bucket "nosuchbucket" does not exist at ${s3.endpoint} (NoSuchBucket, HTTP 404)`,
    );
  });

  it('wrong credentials', async () => {
    // s3rver checks the access key id but not SigV4 signatures: a wrong key id is what it
    // can refuse (real S3 refuses a wrong secret the same way, SignatureDoesNotMatch).
    const run = await runFerry(['pull', 's3://weights/m', '--to', join(tmp.path, 'c2')], {
      env: { ...env, AWS_ACCESS_KEY_ID: 'NOTAKEY' },
    });
    expectOneLineError(run, 1, /^ferry: Access denied: .*\(InvalidAccessKeyId, HTTP 403\)$/);
    expect(run.stderr).toContain(
      'hint: The store rejected the credentials: check AWS_ACCESS_KEY_ID',
    );
  });

  it('an unreachable endpoint', async () => {
    const endpoint = `http://127.0.0.1:${await closedPort()}`;
    const run = await runFerry(['pull', 's3://weights/m', '--to', join(tmp.path, 'c3'), '--json'], {
      // Five backoffs of 1, 2, 4, 8, 16 ms at most, not the default's ~3 s (with-retry.test.ts
      // asserts the default schedule).
      env: { ...env, AWS_ENDPOINT_URL: endpoint, FERRY_RETRY_BASE_MS: '1' },
    });
    expectOneLineError(
      run,
      1,
      `Cannot connect to ${endpoint} (ECONNREFUSED) (gave up after 6 attempts)`,
    );
    expect(run.stderr).toContain(`hint: Check that the server at ${endpoint} is running`);
    const events = jsonLines(run.stdout);
    expect(events.filter((e) => e.type === 'retry').map((e) => e.attempt)).toEqual([2, 3, 4, 5, 6]);
    expect(events.at(-1)).toMatchObject({ type: 'error', code: 'FERRY_TRANSIENT' });
  });

  it('a ref that is not published', async () => {
    const run = await runFerry(['pull', 's3://weights/m@v9', '--to', join(tmp.path, 'c4')], {
      env,
    });
    expectOneLineError(run, 1, /^ferry: ref "v9" is not published at s3:\/\/weights\/m/);
  });

  it('a cache that is not there', async () => {
    const run = await runFerry(['status', join(tmp.path, 'nothing')], { env });
    expectOneLineError(run, 1, /^ferry: no ferry cache at /);
  });

  it('a scheme-less source that is no folder here', async () => {
    // A folder of its own: other tests leave a model.json in the temp folder.
    const cwd = join(tmp.path, 'elsewhere');
    await mkdir(cwd);
    const run = await runFerry(['pull', 'models/llama@v1', '--to', join(tmp.path, 'c5')], {
      env,
      cwd,
    });
    expectOneLineError(
      run,
      1,
      `The source directory ${join(cwd, 'models', 'llama')} does not exist`,
    );
    expect(run.stderr).toContain('an object store needs its scheme (s3://bucket/prefix');
  });

  it('a cache root that is a file', async () => {
    const file = join(tmp.path, 'a-file');
    await writeFile(file, 'x');
    const run = await runFerry(['pull', 's3://weights/m', '--to', file], { env });
    expectOneLineError(run, 1, `the cache root ${file} is a file, not a folder`);
  });

  it('an empty source', async () => {
    const run = await runFerry(
      ['pull', 's3://weights/nothing-here', '--to', join(tmp.path, 'c6')],
      {
        env,
      },
    );
    expectOneLineError(run, 1, 'ferry: s3://weights/nothing-here holds no files'.slice(7));
  });

  it('a ref name with a space, when publishing', async () => {
    const run = await runFerry(['publish', tmp.path, join(tmp.path, 'dest'), '--ref', 'v 1'], {
      env,
    });
    expectOneLineError(run, 2, /^ferry: invalid ref "v 1"/);
  });
});
