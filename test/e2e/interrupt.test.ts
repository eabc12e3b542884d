import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PullResult } from '@ferry/engine';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type FaultServer,
  makeTempDir,
  partObjectKey,
  randomBytes,
  startFaultServer,
  type TempDir,
} from '#fixtures';
import {
  cleanEnv,
  doneResult,
  jsonLines,
  progressAtLeast,
  runFerry,
  startFerry,
} from './ferry-process.js';

const MiB = 1024 * 1024;
const shard = randomBytes(4 * MiB, 7);

let tmp: TempDir;
let env: Record<string, string>;
let cache: string;
let server: FaultServer;
let source: string;

beforeEach(async () => {
  tmp = await makeTempDir('e2e-interrupt');
  env = cleanEnv(tmp.path);
  cache = join(tmp.path, 'cache');
  const model = join(tmp.path, 'model');
  const store = join(tmp.path, 'store');
  await mkdir(model);
  await writeFile(join(model, 'shard.bin'), shard);
  const published = await runFerry(
    ['publish', model, store, '--ref', 'v1', '--part-size', '1MiB'],
    { env },
  );
  expect(published.code).toBe(0);
  // Served over HTTP so one ranged GET can hang on cue: the pull is certainly still running
  // when the signal comes, whatever the machine's speed.
  server = await startFaultServer({ root: store });
  server.inject(
    { kind: 'stall', afterBytes: 1000 },
    { key: await partObjectKey(store, 'shard.bin') },
  );
  source = `${server.url}/@v1`;
});

afterEach(async () => {
  await server.close();
  await tmp.remove();
});

/** Starts a pull and resolves once three of its four parts landed: the fourth hangs. */
async function pullUntilStalled() {
  const pull = startFerry(['pull', source, '--to', cache, '--json'], { env });
  await pull.waitForStdout((out) => progressAtLeast(out, 3 * MiB));
  return pull;
}

describe('interruption', () => {
  it.each(['SIGINT', 'SIGTERM'] as const)(
    '%s exits 130 with how to resume, and `ferry resume` finishes the pull',
    async (signal) => {
      const pull = await pullUntilStalled();
      pull.child.kill(signal);
      const stopped = await pull.done;
      expect(stopped.code).toBe(130);
      expect(stopped.stderr).toContain(
        `ferry: interrupted\nhint: run \`ferry resume ${cache}\` (or the same \`ferry pull\` again) to continue; finished parts are kept.\n`,
      );
      expect(jsonLines(stopped.stdout).at(-1)).toMatchObject({
        type: 'error',
        code: 'FERRY_ABORTED',
      });

      const status = await runFerry(['status', cache, '--json'], { env });
      expect(doneResult(status.stdout)).toMatchObject({
        interrupted: [{ dir: '' }],
        // Bytes kept: three whole parts and the 1000 bytes the hung one delivered.
        partials: [
          { path: 'shard.bin', size: 4 * MiB, doneParts: 3, parts: 4, doneBytes: 3 * MiB + 1000 },
        ],
      });

      const resumed = await runFerry(['resume', cache, '--json'], { env });
      expect(resumed.code).toBe(0);
      const last = jsonLines(resumed.stdout).at(-1);
      expect(last).toMatchObject({ type: 'resumed', root: cache });
      const results = (last?.results ?? []) as PullResult[];
      expect(results).toHaveLength(1);
      // Only the rest of the part that hung moves again: its first 1000 bytes were kept.
      expect(results[0]?.fetchedBytes).toBe(MiB - 1000);
      expect((await readFile(join(cache, 'shard.bin'))).equals(shard)).toBe(true);
      // The folder keeps the ref it was being pulled at.
      const after = await runFerry(['status', cache, '--json'], { env });
      expect(doneResult(after.stdout)).toMatchObject({ trees: [{ dir: '', ref: 'v1' }] });

      const nothing = await runFerry(['resume', cache], { env });
      expect(nothing.stdout).toBe(`nothing to resume in ${cache}\n`);
    },
  );

  it('after SIGKILL, a part cut short keeps its last checkpoint: the next pull fetches only the rest', async () => {
    const model = join(tmp.path, 'big-model');
    const store = join(tmp.path, 'big-store');
    await mkdir(model);
    const big = randomBytes(8 * MiB, 8);
    await writeFile(join(model, 'shard.bin'), big);
    const published = await runFerry(
      ['publish', model, store, '--ref', 'v1', '--part-size', '4MiB'],
      { env },
    );
    expect(published.code).toBe(0);
    const stalling = await startFaultServer({ root: store });
    try {
      // The second part stops after 3 MiB: past one 2 MiB checkpoint, short of the next.
      stalling.inject(
        { kind: 'stall', afterBytes: 3 * MiB },
        { key: await partObjectKey(store, 'shard.bin', 1) },
      );
      const bigSource = `${stalling.url}/@v1`;
      const pull = startFerry(['pull', bigSource, '--to', cache, '--json'], { env });
      // Two progress lines past the stall: the 50 ms checkpoint poll has run several times.
      await pull.waitForStdout(
        (out) =>
          out
            .split('\n')
            .filter((l) => l.startsWith('{"type":"progress"') && progressAtLeast(l, 7 * MiB))
            .length >= 2,
      );
      pull.child.kill('SIGKILL');
      expect((await pull.done).signal).toBe('SIGKILL');

      const again = await runFerry(['pull', bigSource, '--to', cache, '--json'], { env });
      expect(again.code).toBe(0);
      const result = doneResult(again.stdout) as PullResult;
      // Kept: part one whole and 2–3 MiB of part two (one checkpoint); without checkpoints, 4 MiB.
      expect(result.fetchedBytes).toBeGreaterThanOrEqual(MiB);
      expect(result.fetchedBytes).toBeLessThanOrEqual(2 * MiB);
      expect((await readFile(join(cache, 'shard.bin'))).equals(big)).toBe(true);
    } finally {
      await stalling.close();
    }
  });

  it('after SIGKILL, the same `ferry pull` completes from the parts on disk', async () => {
    const pull = await pullUntilStalled();
    pull.child.kill('SIGKILL');
    expect((await pull.done).signal).toBe('SIGKILL');

    const again = await runFerry(['pull', source, '--to', cache, '--json'], { env });
    expect(again.code).toBe(0);
    expect(doneResult(again.stdout)).toMatchObject({ files: 1, fetchedBytes: MiB });
    expect((await readFile(join(cache, 'shard.bin'))).equals(shard)).toBe(true);
  });
});
