import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeTempDir, partObjectKey, randomBytes, startFaultServer, type TempDir } from '#fixtures';
import { main } from './cli.js';
import { fakeIo } from './test-io.js';

const MiB = 1024 * 1024;

let tmp: TempDir;
let model: string;
let store: string;
let cache: string;

beforeEach(async () => {
  tmp = await makeTempDir('cli-pull');
  model = join(tmp.path, 'model');
  store = join(tmp.path, 'store', 'm');
  cache = join(tmp.path, 'cache');
  await mkdir(model, { recursive: true });
  await writeFile(join(model, 'weights.bin'), randomBytes(4 * MiB, 1));
  await writeFile(join(model, 'config.json'), '{"layers": 2}');
});
afterEach(() => tmp.remove());

/** True once a JSON progress line reports at least `bytes` transferred. */
function progressAtLeast(text: string, bytes: number): boolean {
  return text
    .split('\n')
    .filter((l) => l.startsWith('{"type":"progress"'))
    .some((l) => (JSON.parse(l) as { transferredBytes: number }).transferredBytes >= bytes);
}

async function ferry(argv: string[], env: Record<string, string> = {}) {
  const fake = fakeIo({ cwd: tmp.path, env });
  const code = await main(argv, fake.io);
  return { code, fake };
}

describe('ferry pull in-process', () => {
  it('publishes, pulls, then a warm pull fetches nothing', async () => {
    const published = await ferry([
      'publish',
      'model',
      'store/m',
      '--ref',
      'v1',
      '--part-size',
      '1MiB',
    ]);
    expect(published.code).toBe(0);
    expect(published.fake.stdout()).toMatch(
      /^published .*store\/m@v1 \(sha256:[0-9a-f]{12}\): 2 files, 4\.00 MiB\n/,
    );

    const cold = await ferry(['pull', 'store/m@v1', '--to', 'cache', '--json']);
    expect(cold.code).toBe(0);
    const done = cold.fake.jsonLines().at(-1);
    expect(done).toMatchObject({
      type: 'done',
      result: { files: 2, fetchedFiles: 2, dir: join(cache, 'm') },
    });
    expect(await readFile(join(cache, 'm', 'config.json'), 'utf8')).toBe('{"layers": 2}');

    const warm = await ferry(['pull', 'store/m@v1', '--to', 'cache']);
    expect(warm.code).toBe(0);
    expect(warm.fake.stdout()).toContain(
      '\nfetched nothing, reused 0 B, skipped 2 files, removed 0 in ',
    );
  });

  it('reads model.json: the store from FERRY_SOURCE, folder and root from the file', async () => {
    await ferry(['publish', 'model', 'store/m', '--ref', 'v1']);
    await writeFile(
      join(tmp.path, 'model.json'),
      JSON.stringify({ download_files_from: 'm', download_files_to: 'cache' }),
    );
    const { code, fake } = await ferry(['pull', '@v1', '--quiet'], {
      FERRY_SOURCE: join(tmp.path, 'store'),
    });
    expect(code).toBe(0);
    expect(fake.stdout() + fake.stderr()).toBe('');
    expect(await readFile(join(cache, 'm', 'config.json'), 'utf8')).toBe('{"layers": 2}');
  });

  it('pulls the files --include selects, and model.json can name the globs instead', async () => {
    await ferry(['publish', 'model', 'store/m', '--ref', 'v1']);
    const pulled = await ferry(['pull', 'store/m@v1', '--to', 'cache', '--include', '*.json']);
    expect(pulled.code).toBe(0);
    expect(await readdir(join(cache, 'm'))).toEqual(['config.json']);
    const shown = await ferry(['status', 'cache']);
    expect(shown.fake.stdout()).toContain("m holds the files selected by --include '*.json'\n");

    await writeFile(
      join(tmp.path, 'model.json'),
      JSON.stringify({ download_files_from: 'm', download_files_to: 'cache', exclude: ['*.json'] }),
    );
    const configured = await ferry(['pull', '@v1', '--quiet'], {
      FERRY_SOURCE: join(tmp.path, 'store'),
    });
    expect(configured.code).toBe(0);
    expect(await readdir(join(cache, 'm'))).toEqual(['weights.bin']);
    expect((await ferry(['verify', 'cache'])).code).toBe(0);
    const narrowed = await ferry(['verify', 'cache', '--deep', '--include', '*.bin']);
    expect(narrowed.fake.stdout()).toMatch(
      /^re-hashed 1 file \(4\.00 MiB\) in .*: all as pulled\n$/,
    );

    await rm(join(tmp.path, 'model.json'));
    const single = await ferry(['pull', 'store/m@v1', '--to', 'cache', '--only', 'config.json']);
    expect(single.code).toBe(0);
    expect(await readdir(join(cache, 'm'))).toEqual(['config.json']);
    expect((await ferry(['status', 'cache'])).fake.stdout()).toContain(
      'm holds the files selected by --only config.json\n',
    );
    const bad = await ferry(['pull', 'store/m@v1', '--to', 'cache', '--only', '../x']);
    expect(bad.code).toBe(2);
    expect(bad.fake.stderr()).toContain('--only: "../x" is not a path in the folder');
  });

  it('ferry rm takes a folder out of the cache; a folder deleted by hand is reported once', async () => {
    await ferry(['publish', 'model', 'store/m', '--ref', 'v1']);
    await ferry(['pull', 'store/m@v1', '--to', 'cache']);
    const removed = await ferry(['rm', 'cache', 'm']);
    expect(removed.code).toBe(0);
    expect(removed.fake.stdout()).toMatch(/^removed m from .*cache: 2 files, 4\.00 MiB freed\n$/);
    expect(await readdir(cache)).toEqual(['.ferry']);

    await ferry(['pull', 'store/m@v1', '--to', 'cache']);
    await rm(join(cache, 'm'), { recursive: true });
    const checked = await ferry(['verify', 'cache']);
    expect(checked.code).toBe(1);
    expect(checked.fake.stdout()).toContain(
      `folder-missing  m  the folder was deleted: \`ferry rm ${cache} m\``,
    );
    const shown = await ferry(['status', 'cache']);
    expect(shown.fake.stdout()).toContain(`  m was deleted: \`ferry rm ${cache} m\` forgets it`);
    expect((await ferry(['rm', join(cache, 'm')])).code).toBe(0);
    expect((await ferry(['verify', 'cache'])).code).toBe(0);

    const unknown = await ferry(['rm', 'cache', 'm']);
    expect(unknown.code).toBe(1);
    expect(unknown.fake.stderr()).toContain('holds no folder "m"');
  });

  it('caps the rate with --bwlimit (a size per second) and names a bad one', async () => {
    await ferry(['publish', 'model', 'store/m', '--ref', 'v1']);
    const started = Date.now();
    const capped = await ferry(['pull', 'store/m@v1', '--to', 'cache', '--bwlimit', '8MiB/s']);
    expect(capped.code).toBe(0);
    // 4 MiB of weights and a config at 8 MiB/s: about half a second, never much less.
    expect(Date.now() - started).toBeGreaterThanOrEqual(450);
    const bad = await ferry(['pull', 'store/m@v1', '--to', 'cache', '--bwlimit', 'fast']);
    expect(bad.code).toBe(2);
    expect(bad.fake.stderr()).toContain('--bwlimit: "fast" is not a size');
  });

  it('runs the pull on the worker threads --workers or FERRY_WORKERS ask for (0: the main thread), and names a bad count', async () => {
    await ferry(['publish', 'model', 'store/m', '--ref', 'v1', '--part-size', '1MiB']);
    const workersOf = (run: Awaited<ReturnType<typeof ferry>>) =>
      (run.fake.jsonLines().at(-1) as { result: { workers: number } }).result.workers;
    // 4 MiB: the default sizes the pool to the job, which the main thread does alone.
    const byDefault = await ferry(['pull', 'store/m@v1', '--to', 'cache', '--json']);
    expect(byDefault.code).toBe(0);
    expect(workersOf(byDefault)).toBe(0);
    expect(await readFile(join(cache, 'm', 'config.json'), 'utf8')).toBe('{"layers": 2}');
    const warm = await ferry(['pull', 'store/m@v1', '--to', 'cache', '--json']);
    expect(workersOf(warm)).toBe(0);
    const flag = await ferry(['pull', 'store/m@v1', '--to', 'c2', '--json', '--workers', '3']);
    expect(workersOf(flag)).toBe(3);
    const env = await ferry(['pull', 'store/m@v1', '--to', 'c3', '--json'], { FERRY_WORKERS: '2' });
    expect(workersOf(env)).toBe(2);
    const bad = await ferry(['pull', 'store/m@v1', '--to', 'c4', '--workers', '257']);
    expect(bad.code).toBe(2);
    expect(bad.fake.stderr()).toContain('--workers: "257" is not a whole number from 0 to 256');
    const badEnv = await ferry(['pull', 'store/m@v1', '--to', 'c4'], { FERRY_WORKERS: 'many' });
    expect(badEnv.code).toBe(2);
    expect(badEnv.fake.stderr()).toContain('FERRY_WORKERS: "many"');
  });

  it('refuses a glob that climbs out of the folder, naming the flag', async () => {
    const { code, fake } = await ferry(['pull', 'store/m', '--to', 'cache', '--exclude', '../x']);
    expect(code).toBe(2);
    expect(fake.stderr()).toContain('--exclude: "../x" is not a glob over paths in the folder');
  });

  it('stops on SIGINT with exit 130 and a resume hint; ferry resume finishes the pull', async () => {
    await ferry(['publish', 'model', 'store/m', '--ref', 'v1', '--part-size', '1MiB']);
    const server = await startFaultServer({ root: store });
    try {
      // One part hangs, so the pull is still running when the signal comes.
      server.inject(
        { kind: 'stall', afterBytes: 1000 },
        { key: await partObjectKey(store, 'weights.bin') },
      );
      const fake = fakeIo({ cwd: tmp.path });
      const pulling = main(['pull', `${server.url}/@v1`, '--to', 'cache', '--json'], fake.io);
      // Three of the four parts landed, so the fourth is the one hanging.
      await fake.waitFor('stdout', (text) => progressAtLeast(text, 3 * MiB));
      fake.interrupt('SIGINT');
      expect(await pulling).toBe(130);
      expect(fake.jsonLines().at(-1)).toEqual({
        type: 'error',
        code: 'FERRY_ABORTED',
        message: 'interrupted',
        hint: expect.stringContaining(`ferry resume ${cache}`),
      });
      expect(fake.stderr()).toContain(`ferry: interrupted\nhint: run \`ferry resume ${cache}\``);
      expect(fake.listeners()).toBe(0);
      expect(fake.exits).toEqual([]);

      const resumed = await ferry(['resume', 'cache', '--json']);
      expect(resumed.code).toBe(0);
      const last = resumed.fake.jsonLines().at(-1);
      expect(last).toMatchObject({ type: 'resumed', root: cache, results: [{ files: 2 }] });
      // Only the part that hung (and the small file, if it had not landed) is fetched again.
      const [result] = (last?.results ?? []) as Array<{ fetchedBytes: number }>;
      expect(result?.fetchedBytes).toBeLessThanOrEqual(MiB + 13);
      // An HTTP source at the server's root has no folder: its files land in the root.
      expect((await readFile(join(cache, 'weights.bin'))).equals(randomBytes(4 * MiB, 1))).toBe(
        true,
      );
    } finally {
      await server.close();
    }
  });

  it('exits at once on a second Ctrl-C', async () => {
    await ferry(['publish', 'model', 'store/m', '--ref', 'v1', '--part-size', '1MiB']);
    const server = await startFaultServer({ root: store });
    try {
      server.inject(
        { kind: 'stall', afterBytes: 1000 },
        { key: await partObjectKey(store, 'weights.bin') },
      );
      const fake = fakeIo({ cwd: tmp.path });
      const pulling = main(['pull', `${server.url}/@v1`, '--to', 'cache'], fake.io);
      await fake.waitFor('stderr', ': fetch 2 files');
      fake.interrupt('SIGINT');
      fake.interrupt('SIGINT');
      expect(fake.exits).toEqual([130]);
      expect(fake.stderr()).toContain('ferry: stopping… (Ctrl-C again to quit at once)\n');
      expect(fake.stderr()).toContain('ferry: stopped at once\n');
      expect(await pulling).toBe(130);
    } finally {
      await server.close();
    }
  });
});
