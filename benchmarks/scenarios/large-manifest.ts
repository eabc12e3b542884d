import { existsSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BenchResult, median, type Scenario } from '../lib/scenario.js';
import { type MeasuredProcess, spawnMeasured } from '../lib/spawn-measured.js';

// A version of many tiny files (--manifest-files, 100k by default: a ~23 MiB manifest),
// published to a local folder: what planning, a warm start, status and verify cost when the
// manifest, not the bytes, is large. Each is set against the floor measured in the same run:
// plain Node reading and parsing the manifest and lstat-ing every file it lists.

const cliBin = fileURLToPath(new URL('../../packages/cli/dist/bin.js', import.meta.url));
const floorScript = fileURLToPath(new URL('../lib/manifest-floor.mjs', import.meta.url));
const FILES_PER_DIR = 1000;
const MiB = 2 ** 20;

async function writeTinyFiles(dir: string, files: number): Promise<void> {
  for (let d = 0; d * FILES_PER_DIR < files; d++) {
    const sub = join(dir, `d${String(d).padStart(4, '0')}`);
    await mkdir(sub, { recursive: true });
    const writes: Promise<void>[] = [];
    for (let i = d * FILES_PER_DIR; i < Math.min(files, (d + 1) * FILES_PER_DIR); i++) {
      writes.push(writeFile(join(sub, `f${i}.json`), `{"file":${i}}\n`));
    }
    await Promise.all(writes);
  }
}

async function ferry(args: string[]): Promise<MeasuredProcess> {
  const run = await spawnMeasured(process.execPath, [cliBin, ...args], { env: process.env });
  if (run.code !== 0) {
    throw new Error(`ferry ${args.join(' ')} exited ${run.code}: ${run.stderr.trim()}`);
  }
  return run;
}

interface Measure {
  name: string;
  target?: { text: string; met: (wallMs: number, rss: number) => boolean };
  run: () => Promise<MeasuredProcess>;
}

const scenario: Scenario = {
  name: 'large-manifest',
  description:
    'a version of 100k tiny files (--manifest-files): cold plan (dry run), warm no-op pull, status and verify, against plain Node reading the manifest and lstat-ing every file',
  async run({ context }) {
    if (!existsSync(cliBin)) throw new Error(`large-manifest runs the CLI: run pnpm build first`);
    const files = context.config.manifestFiles;
    const base = join(context.config.workDir, 'large-manifest');
    const data = join(base, 'data', 'model');
    const remote = join(base, 'remote', 'model');
    const cache = join(base, 'cache');
    const empty = join(base, 'empty');
    context.log(`large-manifest: writing ${files} files, publishing, pulling once`);
    await writeTinyFiles(data, files);
    await ferry(['publish', data, remote, '--ref', 'v1', '--quiet']);
    await ferry(['pull', `${remote}@v1`, '--to', cache, '--quiet']);
    const manifests = join(remote, '.ferry', 'manifests');
    const manifest = join(manifests, (await readdir(manifests))[0] as string);

    const measures: Measure[] = [
      {
        name: 'floor: read+parse manifest, lstat every file',
        run: async () => {
          const run = await spawnMeasured(
            process.execPath,
            [floorScript, manifest, join(cache, 'model')],
            {
              env: process.env,
            },
          );
          if (run.code !== 0) throw new Error(`the floor found wrong files: ${run.stderr}`);
          return run;
        },
      },
      {
        name: 'cold plan (pull --dry-run, empty cache)',
        target: { text: '≤5 s', met: (ms) => ms <= 5000 },
        run: async () => {
          await rm(empty, { recursive: true, force: true });
          return ferry(['pull', `${remote}@v1`, '--to', empty, '--dry-run', '--quiet']);
        },
      },
      {
        name: 'warm no-op pull',
        target: { text: '≤2 s, ≤256 MiB', met: (ms, rss) => ms <= 2000 && rss <= 256 * MiB },
        run: () => ferry(['pull', `${remote}@v1`, '--to', cache, '--quiet']),
      },
      { name: 'status', run: () => ferry(['status', cache]) },
      { name: 'verify', run: () => ferry(['verify', cache]) },
    ];
    const samples = new Map<Measure, MeasuredProcess[]>(measures.map((m) => [m, []]));
    // Interleaved, so a slower stretch of a shared machine weighs on every figure alike.
    for (let round = 0; round < context.config.runs; round++) {
      for (const m of measures) samples.get(m)?.push(await m.run());
    }
    const wall = (m: Measure) => median((samples.get(m) ?? []).map((s) => s.wallMs));
    const floorMs = wall(measures[0] as Measure);
    return measures.map((m): BenchResult => {
      const runs = samples.get(m) ?? [];
      const wallMs = wall(m);
      const peakRssBytes = Math.max(...runs.map((s) => s.peakRssBytes));
      const cpu = runs.flatMap((s) => (s.cpuMs === undefined ? [] : [s.cpuMs]));
      return {
        name: m.name,
        value: wallMs / 1000,
        unit: 's',
        wallMs,
        peakRssBytes,
        ...(cpu.length === 0 ? {} : { cpuSeconds: median(cpu) / 1000 }),
        ...(m === measures[0] ? {} : { baseline: 'floor', ratio: wallMs / floorMs }),
        ...(m.target === undefined
          ? {}
          : { target: `${m.target.text}: ${m.target.met(wallMs, peakRssBytes) ? 'yes' : 'no'}` }),
        extra: { files },
      };
    });
  },
};

export default scenario;
