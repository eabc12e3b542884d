import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type PullResult, publish } from '@ferry/engine';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type FaultServer,
  makeTempDir,
  partObjectKey,
  randomBytes,
  startFaultServer,
  type TempDir,
  totalSize,
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
  // In this process: what these tests spawn `ferry` for is interrupting a pull.
  await publish({ dir: model, dest: store, ref: 'v1', partSize: MiB });
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
    await publish({ dir: model, dest: store, ref: 'v1', partSize: 4 * MiB });
    const stalling = await startFaultServer({ root: store });
    try {
      // The second part stops after 3 MiB, most of it behind a checkpoint.
      stalling.inject(
        { kind: 'stall', afterBytes: 3 * MiB },
        { key: await partObjectKey(store, 'shard.bin', 1) },
      );
      const bigSource = `${stalling.url}/@v1`;
      const pull = startFerry(['pull', bigSource, '--to', cache, '--json'], { env });
      // Every byte sent has been read: the first part whole, the second up to its stop.
      await pull.waitForStdout((out) => progressAtLeast(out, 7 * MiB));
      pull.child.kill('SIGKILL');
      expect((await pull.done).signal).toBe('SIGKILL');

      const again = await runFerry(['pull', bigSource, '--to', cache, '--json'], { env });
      expect(again.code).toBe(0);
      const result = doneResult(again.stdout) as PullResult;
      // Kept: part one whole and part two up to its last write batch (256 KiB at most short
      // of its stop); without checkpoints, 4 MiB.
      expect(result.fetchedBytes).toBeGreaterThanOrEqual(MiB);
      expect(result.fetchedBytes).toBeLessThan(MiB + 256 * 1024);
      expect((await readFile(join(cache, 'shard.bin'))).equals(big)).toBe(true);
    } finally {
      await stalling.close();
    }
  });

  it('after SIGKILL with parts stopped at several points, the next pull fetches again less than one cut interval per part in flight', async () => {
    // A part's cut is recorded after every write batch: what a kill loses of a part is the
    // batch it was gathering, less than this (CUT_BYTES in the engine's part-cuts.ts).
    const cutInterval = 256 * 1024;
    const model = join(tmp.path, 'kill-model');
    const store = join(tmp.path, 'kill-store');
    await mkdir(model);
    const files = new Map([
      ['a.bin', randomBytes(16 * MiB, 11)],
      ['b.bin', randomBytes(3 * MiB + 5000, 12)],
      ['c.bin', randomBytes(700 * 1024, 13)],
    ]);
    for (const [name, bytes] of files) await writeFile(join(model, name), bytes);
    await publish({ dir: model, dest: store, ref: 'v1', partSize: 4 * MiB });
    // Where each stopped part stops, from its first byte: inside the first batch, just short
    // of a MiB, past two MiB, near the end of a one-part file, inside a small one-part file.
    // a.bin's last part is not stopped: it lands whole before the kill.
    const stops = [
      { file: 'a.bin', part: 0, at: 1000 },
      { file: 'a.bin', part: 1, at: MiB - 1 },
      { file: 'a.bin', part: 2, at: 2 * MiB + 300 * 1024 + 7 },
      { file: 'b.bin', part: 0, at: 3 * MiB - 12_345 },
      { file: 'c.bin', part: 0, at: 600 * 1024 },
    ];
    const stalling = await startFaultServer({ root: store });
    try {
      const keys = await Promise.all(stops.map((s) => partObjectKey(store, s.file, s.part)));
      stops.forEach((stop, i) => {
        stalling.inject({ kind: 'stall', afterBytes: stop.at }, { key: keys[i] as string });
      });
      const killSource = `${stalling.url}/@v1`;
      // No hedge and no stall timeout before the kill: the stopped bodies stay where they are.
      const flags = ['--to', cache, '--json', '--hedge-after', '0', '--stall-timeout', '600'];
      const pull = startFerry(['pull', killSource, ...flags], { env });
      // Every byte sent has been read: the last part whole, and each stopped part to its stop.
      const received = 4 * MiB + stops.reduce((sum, s) => sum + s.at, 0);
      await pull.waitForStdout((out) => progressAtLeast(out, received));
      pull.child.kill('SIGKILL');
      expect((await pull.done).signal).toBe('SIGKILL');
      const firstRun = stalling.requests.length;

      const again = await runFerry(['pull', killSource, ...flags], { env });
      expect(again.code).toBe(0);
      for (const [name, bytes] of files) {
        expect((await readFile(join(cache, name))).equals(bytes)).toBe(true);
      }
      // Counted where the bytes are sent: every part object's body bytes over both runs,
      // less the set itself, is what was fetched twice.
      const partBytes = stalling.requests
        .filter((r) => r.url.includes('/.ferry/parts/'))
        .reduce((sum, r) => sum + r.bodyBytes, 0);
      const total = totalSize(files);
      expect(partBytes - total).toBeLessThan(stops.length * cutInterval);
      // Each stopped part was read again from at most one batch before its stop.
      const resumedAt = stalling.requests.slice(firstRun).map((r) => ({
        key: decodeURIComponent(r.url.slice(1)),
        start: Number(/^bytes=(\d+)-/.exec(r.range ?? '')?.[1] ?? 0),
      }));
      stops.forEach((stop, i) => {
        const request = resumedAt.find((r) => r.key === keys[i]);
        expect(request, `${stop.file} part ${stop.part}`).toBeDefined();
        expect(request?.start ?? 0).toBeGreaterThan(stop.at - cutInterval);
      });
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
