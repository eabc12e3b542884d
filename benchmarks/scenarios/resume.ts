import { formatBytes } from '@ferry/manifest';
import type { BenchContext, PublishedDataset } from '../lib/context.js';
import { KILL_POINT_SEED, killPoints } from '../lib/kill-points.js';
import type { Origin } from '../lib/origin.js';
import { type BenchResult, type KillPoint, median, type Scenario } from '../lib/scenario.js';
import { runSync } from '../lib/sync-run.js';
import { FERRY_PLAIN, ferryTool, type SyncTool } from '../lib/sync-tools.js';

/**
 * What a SIGKILL may cost per part in flight: the 2 MiB between checkpoints plus what the
 * part receives in the 50 ms between polls of its counter, simplified to 4 MiB (the poll's
 * share stays under 2 MiB up to 40 MiB/s per part; 16 parts share a few hundred MB/s here).
 */
const WASTE_PER_PART = 4 * 2 ** 20;

/** One kill point of one prefix, as measured. */
interface KillSample extends KillPoint {
  resumedWallMs: number;
  /** CPU of the killed run and the resumed one together, when measured. */
  cpuMs?: number;
  peakRssBytes: number;
  requests?: number;
  problems: string[];
}

/** A prefix the scenario kills pulls of: the published dataset, or its plain copy. */
interface Contender {
  tool: SyncTool;
  dataset: PublishedDataset;
}

async function killAndResume(
  context: BenchContext,
  origin: Origin,
  { tool, dataset }: Contender,
  fraction: number,
): Promise<KillSample> {
  const dest = await context.freshDir('resume', origin.name, tool.name);
  const killed = await runSync(tool, origin, dataset.prefix, dest, {
    killAtFraction: fraction,
    killOfBytes: dataset.bytes,
  });
  const resumed = await runSync(tool, origin, dataset.prefix, dest, { expected: dataset.files });
  const problems = [...resumed.problems];
  if (killed.killed !== true) {
    problems.unshift(`finished before it could be killed at ${percent(fraction)}`);
  }
  const beforeKillBytes = killed.sourceBytes ?? 0;
  const queued = killed.queuedAtKill;
  const buffered = queued === undefined ? undefined : queued.unread + queued.unsent;
  const afterKillBytes = resumed.sourceBytes ?? 0;
  const wasteBytes = beforeKillBytes + afterKillBytes - dataset.bytes;
  const plan = resumed.plan;
  const keptBytes = plan === undefined ? undefined : plan.skip.bytes + plan.resumedBytes;
  context.log(
    `${tool.name} on ${origin.name}, kill at ${percent(fraction)}: before ${formatBytes(beforeKillBytes)} (in socket buffers ${queued === undefined ? '?' : `${formatBytes(queued.unread)} + ${formatBytes(queued.unsent)}`}), kept ${keptBytes === undefined ? '?' : formatBytes(keptBytes)}, after ${formatBytes(afterKillBytes)}, waste ${formatBytes(wasteBytes)}${problems.length > 0 ? ` WRONG ${problems[0]}` : ''}`,
  );
  await context.freshDir('resume', origin.name, tool.name);
  return {
    fraction,
    beforeKillBytes,
    ...(buffered === undefined ? {} : { bufferedAtKillBytes: buffered }),
    afterKillBytes,
    ...(keptBytes === undefined ? {} : { keptBytes }),
    wasteBytes,
    resumedWallMs: resumed.wallMs,
    ...(killed.cpuMs === undefined || resumed.cpuMs === undefined
      ? {}
      : { cpuMs: killed.cpuMs + resumed.cpuMs }),
    peakRssBytes: Math.max(killed.peakRssBytes ?? 0, resumed.peakRssBytes ?? 0),
    ...(killed.requests === undefined || resumed.requests === undefined
      ? {}
      : { requests: killed.requests + resumed.requests }),
    problems,
  };
}

const percent = (fraction: number) => `${(fraction * 100).toFixed(1)} %`;

/** One row per kill point, then the max and median waste with the target. */
function rowsOf(
  origin: Origin,
  { tool, dataset }: Contender,
  samples: KillSample[],
  bound: number,
): BenchResult[] {
  const verdict = (waste: number) =>
    `waste ≤ concurrency × 4 MiB (${formatBytes(bound)}): ${waste <= bound ? 'met' : 'MISSED'}`;
  const perKill = samples.map(
    (s): BenchResult => ({
      name: `kill at ${percent(s.fraction)}`,
      origin: origin.name,
      tool: tool.name,
      value: s.wasteBytes / 2 ** 20,
      unit: 'MiB waste',
      wallMs: s.resumedWallMs,
      kill: {
        fraction: s.fraction,
        beforeKillBytes: s.beforeKillBytes,
        ...(s.bufferedAtKillBytes === undefined
          ? {}
          : { bufferedAtKillBytes: s.bufferedAtKillBytes }),
        afterKillBytes: s.afterKillBytes,
        ...(s.keptBytes === undefined ? {} : { keptBytes: s.keptBytes }),
        wasteBytes: s.wasteBytes,
      },
      correct: s.problems.length === 0,
      ...(s.problems.length === 0 ? {} : { problems: s.problems.slice(0, 5) }),
      target: verdict(s.wasteBytes),
    }),
  );
  const wastes = samples.map((s) => s.wasteBytes);
  const cpus = samples.flatMap((s) => (s.cpuMs === undefined ? [] : [s.cpuMs]));
  const cpuSeconds = cpus.length === 0 ? undefined : median(cpus) / 1000;
  const requests = samples.flatMap((s) => (s.requests === undefined ? [] : [s.requests]));
  const problems = [...new Set(samples.flatMap((s) => s.problems))];
  // What every summary row shares: medians over the kill points (the resumed run's wall;
  // bytes, requests and CPU of both runs), the highest RSS of either run.
  const common = {
    origin: origin.name,
    tool: tool.name,
    unit: 'MiB waste',
    wallMs: median(samples.map((s) => s.resumedWallMs)),
    sourceBytes: median(samples.map((s) => s.beforeKillBytes + s.afterKillBytes)),
    ...(requests.length === 0 ? {} : { requests: median(requests) }),
    peakRssBytes: Math.max(...samples.map((s) => s.peakRssBytes)),
    ...(cpuSeconds === undefined
      ? {}
      : { cpuSeconds, cpuPerGiB: cpuSeconds / (dataset.bytes / 2 ** 30) }),
    correct: problems.length === 0,
    ...(problems.length === 0 ? {} : { problems: problems.slice(0, 5) }),
    extra: {
      killPoints: samples.map((s) => s.fraction).join(' '),
      wastes: wastes.map((w) => Math.round(w)).join(' '),
      bufferedAtKill: samples.map((s) => s.bufferedAtKillBytes ?? '').join(' '),
      bound,
      seed: KILL_POINT_SEED,
    },
  };
  const max = Math.max(...wastes);
  const mid = median(wastes);
  return [
    ...perKill,
    {
      ...common,
      name: `max waste, ${samples.length} kills`,
      value: max / 2 ** 20,
      target: verdict(max),
    },
    {
      ...common,
      name: `median waste, ${samples.length} kills`,
      value: mid / 2 ** 20,
      target: verdict(mid),
    },
  ];
}

const scenario: Scenario = {
  name: 'resume',
  description:
    'ferry SIGKILLed at --kill-points seeded fractions (5–95 %) of a cold pull of the model dataset, published and plain prefix, then pulled again: waste = bytes fetched by both runs − dataset size',
  async run({ context }) {
    const rows: BenchResult[] = [];
    const fractions = killPoints(context.config.killPoints);
    const bound = context.config.concurrency * WASTE_PER_PART;
    context.log(`resume: kill points ${fractions.map(percent).join(', ')}`);
    for (const origin of await context.origins()) {
      const published = await context.published(origin, 'model');
      if (published === undefined) continue;
      if ((await origin.counters()) === undefined) {
        context.notes.push(`resume: skipped on ${origin.name} (no origin-side byte meter)`);
        continue;
      }
      const plain = await context.plain(origin, 'model');
      const contenders: Contender[] = [
        { tool: ferryTool(context.ferry, context.config.concurrency), dataset: published },
      ];
      if (plain !== undefined) {
        contenders.push({
          tool: ferryTool(context.ferry, context.config.concurrency, FERRY_PLAIN),
          dataset: plain,
        });
      }
      const samples = new Map(contenders.map((c) => [c, [] as KillSample[]]));
      // Kill points in the outer loop, so drift over the run hits both prefixes alike.
      for (const fraction of fractions) {
        for (const contender of contenders) {
          samples.get(contender)?.push(await killAndResume(context, origin, contender, fraction));
        }
      }
      for (const contender of contenders) {
        rows.push(...rowsOf(origin, contender, samples.get(contender) ?? [], bound));
      }
    }
    return rows;
  },
};

export default scenario;
