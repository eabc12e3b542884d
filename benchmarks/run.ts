import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { formatBytes, isFerryError, parseSize } from '@ferry/manifest';
import { type BenchConfig, BenchContext } from './lib/context.js';
import { ENV_URI } from './lib/env-origin.js';
import { ferryDriver } from './lib/ferry-driver.js';
import { findNginx } from './lib/nginx-origin.js';
import { ORIGIN_NAMES, type OriginName } from './lib/origin.js';
import type { BenchResult, Scenario } from './lib/scenario.js';
import { GNU_TIME, GNU_TIME_INSTALL, hasGnuTime } from './lib/spawn-measured.js';
import { knownPeers } from './lib/sync-tools.js';

const here = import.meta.dirname;
// The engine runs here from its TypeScript source (publishing datasets, the library driver),
// and its part worker is only ever the built one (part-pool.ts): without this, every publish
// failed with ERR_MODULE_NOT_FOUND for src/part-worker.js.
process.env.FERRY_PART_WORKER ??= join(here, '..', 'packages', 'engine', 'dist', 'part-worker.js');

const HELP = `Usage: pnpm bench [-- flags]

  --scenario <name>     run only this scenario (repeatable); --list shows them
  --runs <n>            runs per tool, median reported (default 3; 1 for a quick look)
  --size <bytes>        model dataset: total shard bytes (default 256MiB)
  --shards <n>          model dataset: shard count (default 4)
  --small-files <n>     many-small-files dataset: files of 64 KiB (default 1000)
  --large-size <bytes>  one-large-file dataset (default 512MiB; try 4GiB)
  --manifest-files <n>  large-manifest dataset: tiny files in one version (default 100000)
  --origin <list>       s3rver,nginx,nginx-https,nginx-s3,env (default s3rver,nginx, plus env when
                        ${ENV_URI}=s3://bucket/prefix is set; env is read-only; the stall
                        scenario starts its own fault-injecting HTTP origin whatever this says,
                        and fleet always uses nginx, with a second nginx as its HTTP cache)
  --peers <list>        peers to run, by name prefix: aws,rclone,s3cmd or none (default all installed)
  --ferry <mode>        cli (packages/cli/dist/bin.js), lib (engine sources) or auto (default)
  --concurrency <n>     ferry --concurrency and the ceiling's parallel ranges (default 16;
                        the floor keeps its 8)
  --kill-points <n>     resume: SIGKILLs per prefix, at seeded fractions over 5-95 % of the
                        bytes (default 10; these are resume's samples, --runs does not repeat them)
  --work-dir <dir>      where data, origins and caches go (default: a temp dir, removed)
  --keep                keep the work dir

Transfer columns: value (MB/s, or s for no-op and update runs), wall, from source and
requests (the origin's meter), CPU-s/GiB (user+sys CPU of the tool's process tree per GiB
of dataset, from ${GNU_TIME}: blank without it), peak RSS, ok (WRONG: failed or wrong
bytes), × ceiling (curl, no disk, no hash), × floor (lib/node-floor.mjs: plain Node,
8 ranged GETs, SHA-256, positional writes), × best peer, target. A published prefix stores
content by part, so peers, the ceiling and the floor read a plain copy of each dataset (its
files at their paths under <prefix>-plain, no .ferry/); cold scenarios also have ferry pull
that copy on s3rver: the "ferry (plain prefix)" row.
The stall scenario adds a hedges column (ferry's retry events with attempt 0); resume prints
a table of its kill points (kill at, bytes before the kill, in socket buffers, kept, lost by
ferry and of it on disk, the bound on that loss, after, waste) with a max and a median row.`;

async function loadScenarios(): Promise<Scenario[]> {
  const files = (await readdir(join(here, 'scenarios'))).filter((f) => f.endsWith('.ts')).sort();
  const loaded: Scenario[] = [];
  for (const file of files) {
    const mod = (await import(join(here, 'scenarios', file))) as { default: Scenario };
    loaded.push(mod.default);
  }
  return loaded;
}

type Row = BenchResult & { scenario: string };

const ratio = (r: number | undefined) => (r === undefined ? '' : `${r.toFixed(2)}×`);

function table(header: string[], lines: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const fmt = (cells: string[]) =>
    `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [fmt(header), fmt(widths.map((w) => '-'.repeat(w))), ...lines.map(fmt)].join('\n');
}

/** Figures such as the hash scenario's: a value and its ratio to a baseline. */
function measureTable(rows: Row[]): string {
  // Whole-process figures (large-manifest) also carry their CPU, memory and target.
  const processes = rows.some((r) => r.peakRssBytes !== undefined);
  return table(
    [
      'scenario',
      'measure',
      'value',
      'unit',
      'baseline',
      'ratio',
      ...(processes ? ['CPU-s', 'peak RSS', 'target'] : []),
    ],
    rows.map((r) => [
      r.scenario,
      r.name,
      r.value.toFixed(r.value >= 100 ? 0 : 2),
      r.unit,
      r.baseline ?? '',
      ratio(r.ratio),
      ...(processes
        ? [
            r.cpuSeconds === undefined ? '' : r.cpuSeconds.toFixed(2),
            r.peakRssBytes === undefined ? '' : formatBytes(r.peakRssBytes),
            r.target ?? '',
          ]
        : []),
    ]),
  );
}

/** Transfers: one row per scenario, origin and tool; a hedges column when a row counts them. */
function transferTable(rows: Row[]): string {
  const hedges = rows.some((r) => r.hedges !== undefined);
  return table(
    [
      'scenario',
      'origin',
      'tool',
      'value',
      'wall',
      'from source',
      'requests',
      'CPU-s/GiB',
      'peak RSS',
      'ok',
      '× ceiling',
      '× floor',
      '× best peer',
      ...(hedges ? ['hedges'] : []),
      'target',
    ],
    rows.map((r) => [
      `${r.scenario}${r.name === r.scenario ? '' : ` (${r.name})`}`,
      r.origin ?? '',
      r.tool ?? '',
      `${r.value.toFixed(r.unit === 's' ? 3 : r.value >= 100 ? 0 : 1)} ${r.unit}`,
      r.wallMs === undefined ? '' : `${(r.wallMs / 1000).toFixed(2)} s`,
      r.sourceBytes === undefined ? '' : formatBytes(r.sourceBytes),
      r.requests === undefined ? '' : String(Math.round(r.requests)),
      r.cpuPerGiB === undefined ? '' : r.cpuPerGiB.toFixed(2),
      r.peakRssBytes === undefined ? '' : formatBytes(r.peakRssBytes),
      r.correct === undefined ? '' : r.correct ? 'yes' : 'WRONG',
      ratio(r.vsCeiling),
      ratio(r.vsFloor),
      ratio(r.vsBestPeer),
      ...(hedges ? [r.hedges === undefined ? '' : String(r.hedges)] : []),
      r.target ?? '',
    ]),
  );
}

/** The resume scenario's kills: where each was asked for, what it cost, and who lost it. */
function killTable(rows: Row[]): string {
  const bytes = (value: number | undefined) => (value === undefined ? '' : formatBytes(value));
  return table(
    [
      'scenario',
      'origin',
      'tool',
      'kill at',
      'before kill',
      'in socket buffers',
      'kept',
      'lost by ferry',
      'of it on disk',
      'bound',
      'second run',
      'waste',
      'second run wall',
      'ok',
      'target',
    ],
    rows.map((r) => [
      r.scenario,
      r.origin ?? '',
      r.tool ?? '',
      r.kill === undefined ? '' : (r.kill.label ?? `${(r.kill.fraction * 100).toFixed(1)} %`),
      bytes(r.kill?.beforeKillBytes),
      bytes(r.kill?.bufferedAtKillBytes),
      bytes(r.kill?.keptBytes),
      bytes(r.kill?.lostBytes),
      bytes(r.kill?.lostOnDiskBytes),
      bytes(r.kill?.boundBytes),
      bytes(r.kill?.afterKillBytes),
      bytes(r.kill?.wasteBytes),
      r.wallMs === undefined ? '' : `${(r.wallMs / 1000).toFixed(2)} s`,
      r.correct === undefined ? '' : r.correct ? 'yes' : 'WRONG',
      r.target ?? '',
    ]),
  );
}

function listFlag(value: string | undefined): string[] | undefined {
  return value
    ?.split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function count(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`${flag}: "${value}" is not a positive integer`);
  return n;
}

async function main(): Promise<void> {
  // `pnpm bench -- --scenario x` passes the `--` through; it means nothing here.
  const args = process.argv.slice(2).filter((arg, i) => !(i === 0 && arg === '--'));
  const { values } = parseArgs({
    args,
    options: {
      scenario: { type: 'string', multiple: true },
      list: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      runs: { type: 'string' },
      size: { type: 'string' },
      shards: { type: 'string' },
      'small-files': { type: 'string' },
      'large-size': { type: 'string' },
      'manifest-files': { type: 'string' },
      origin: { type: 'string' },
      peers: { type: 'string' },
      ferry: { type: 'string' },
      concurrency: { type: 'string' },
      'kill-points': { type: 'string' },
      'work-dir': { type: 'string' },
      keep: { type: 'boolean' },
    },
    allowPositionals: false,
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const all = await loadScenarios();
  if (values.list) {
    for (const s of all) console.log(`${s.name.padEnd(20)} ${s.description}`);
    return;
  }
  const wanted = values.scenario;
  const chosen = wanted ? all.filter((s) => wanted.includes(s.name)) : all;
  const unknown = (wanted ?? []).filter((w) => !all.some((s) => s.name === w));
  if (unknown.length > 0) {
    console.error(`bench: unknown scenario ${unknown.join(', ')}; try --list`);
    process.exitCode = 2;
    return;
  }

  const origins = (listFlag(values.origin) ?? [
    's3rver',
    ...(findNginx() === undefined ? [] : ['nginx']),
    ...(process.env[ENV_URI] ? ['env'] : []),
  ]) as OriginName[];
  const badOrigin = origins.find((o) => !ORIGIN_NAMES.includes(o));
  if (badOrigin !== undefined) throw new Error(`--origin: unknown origin ${badOrigin}`);
  if (values.origin === undefined && findNginx() === undefined) {
    console.error('bench: nginx is not installed, so no fast origin: apt-get install -y nginx');
  }
  const ferryMode = values.ferry ?? 'auto';
  if (ferryMode !== 'auto' && ferryMode !== 'cli' && ferryMode !== 'lib') {
    throw new Error(`--ferry: "${ferryMode}" is not cli, lib or auto`);
  }
  const workDir = values['work-dir'] ?? join(tmpdir(), `ferry-bench-${process.pid}`);
  const config: BenchConfig = {
    runs: count(values.runs, '--runs', 3),
    size: values.size === undefined ? 256 * 2 ** 20 : parseSize(values.size, '--size'),
    shards: count(values.shards, '--shards', 4),
    smallFiles: count(values['small-files'], '--small-files', 1000),
    largeSize:
      values['large-size'] === undefined
        ? 512 * 2 ** 20
        : parseSize(values['large-size'], '--large-size'),
    manifestFiles: count(values['manifest-files'], '--manifest-files', 100_000),
    origins,
    concurrency: count(values.concurrency, '--concurrency', 16),
    killPoints: count(values['kill-points'], '--kill-points', 10),
    workDir,
    keep: values.keep === true,
  };
  const wantedPeers = listFlag(values.peers);
  const peers = knownPeers(workDir).map((p) => ({
    ...p,
    installed:
      p.installed &&
      (wantedPeers === undefined ||
        wantedPeers.some((w) => w !== 'none' && p.tool.name.startsWith(w))),
  }));
  for (const p of knownPeers(workDir).filter((p) => !p.installed)) {
    console.error(`bench: ${p.tool.name} is not installed, so not compared: ${p.install}`);
  }
  if (!hasGnuTime()) {
    console.error(
      `bench: ${GNU_TIME} is missing, so the CPU-s/GiB column stays blank: ${GNU_TIME_INSTALL}`,
    );
  }
  await mkdir(workDir, { recursive: true });
  const context = new BenchContext(config, ferryDriver(ferryMode), peers);
  console.error(
    `ferry: ${context.ferry.describe}; origins: ${origins.join(', ')}; work dir ${workDir}`,
  );

  const rows: Row[] = [];
  const started = new Date();
  try {
    for (const scenario of chosen) {
      console.error(`running ${scenario.name}: ${scenario.description}`);
      const t0 = performance.now();
      for (const r of await scenario.run({ context })) rows.push({ scenario: scenario.name, ...r });
      console.error(`  ${scenario.name} took ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
  } finally {
    await context.close();
  }
  const measures = rows.filter((r) => r.tool === undefined);
  const kills = rows.filter((r) => r.tool !== undefined && r.kill !== undefined);
  // resume's summary rows (a kill `label`) go in both tables: the transfer table has their
  // CPU and memory.
  const transfers = rows.filter(
    (r) => r.tool !== undefined && (r.kill === undefined || r.kill.label !== undefined),
  );
  if (measures.length > 0) console.log(measureTable(measures));
  if (kills.length > 0) console.log(killTable(kills));
  if (transfers.length > 0) console.log(transferTable(transfers));
  for (const r of new Set([...kills, ...transfers]).values()) {
    if (r.problems === undefined) continue;
    const what = r.kill === undefined ? '' : ` ${r.name}`;
    console.log(`${r.scenario} ${r.origin} ${r.tool}${what}: ${r.problems?.join('; ')}`);
  }
  for (const note of context.notes) console.log(`note: ${note}`);
  const machine = {
    cores: cpus().length,
    cpu: cpus()[0]?.model,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
  };
  const dir = join(here, 'results');
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${started.toISOString().replace(/[:.]/g, '-')}.json`);
  const origin = origins.join(',');
  const setup = { ...config, origins: origin, ferry: context.ferry.describe };
  await writeFile(
    file,
    `${JSON.stringify({ date: started.toISOString(), machine, setup, peers: peers.map((p) => ({ name: p.tool.name, used: p.installed })), notes: context.notes, rows }, null, 2)}\n`,
  );
  console.error(`results written to ${file}`);
}

try {
  await main();
} catch (error) {
  // A bad flag is the user's to fix: one line and a hint, as the CLI does.
  const usage =
    isFerryError(error, 'FERRY_USAGE') ||
    (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true;
  if (!usage) throw error;
  console.error(`bench: ${(error as Error).message}`);
  if (isFerryError(error) && error.hint !== undefined) console.error(`hint: ${error.hint}`);
  process.exitCode = 2;
}
