import { formatBytes } from '@ferry/manifest';
import type { BenchContext, PublishedDataset } from '../lib/context.js';
import { KILL_POINT_SEED, killPoints } from '../lib/kill-points.js';
import type { Origin } from '../lib/origin.js';
import { partialBytes } from '../lib/partial-bytes.js';
import { type BenchResult, type KillPoint, median, type Scenario } from '../lib/scenario.js';
import { runSync } from '../lib/sync-run.js';
import { FERRY_PLAIN, ferryTool, type SyncTool } from '../lib/sync-tools.js';

/**
 * What a SIGKILL may cost ferry per part in flight, by its design: the worker records a
 * part's cut after every 256 KiB write batch (`CUT_BYTES` in the engine's part-cuts.ts), so
 * a part loses at most the batch it was gathering and the socket chunk it was handling: ≤ 1
 * MiB from ferry's own plain-HTTP client (its read size), ≤ 64 KiB from node:http. A file of one part small enough to go without a journal is no larger than a
 * batch. What sat in socket buffers is not in it: no client can keep what it never read.
 */
const LOSS_PER_PART = 256 * 1024 + 1024 * 1024;

/** Peers killed at the same points on the plain copy, for comparison (they resume nothing). */
const PEERS = new Set(['aws-cli v2 s3 sync', 'rclone copy']);

/** One kill point of one prefix, as measured. */
interface KillSample extends KillPoint {
  resumedWallMs: number;
  /** CPU of the killed run and the resumed one together, when measured. */
  cpuMs?: number;
  peakRssBytes: number;
  requests?: number;
  /** ferry's hedges and other retries in both runs. */
  retries: number;
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
  bound: number,
): Promise<KillSample> {
  const dest = await context.freshDir('resume', origin.name, tool.name);
  const killed = await runSync(tool, origin, dataset.prefix, dest, {
    killAtFraction: fraction,
    killOfBytes: dataset.bytes,
  });
  const onDisk = tool.kind === 'ferry' ? await partialBytes(dest) : undefined;
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
  const lostBytes =
    keptBytes === undefined || buffered === undefined
      ? undefined
      : beforeKillBytes - buffered - keptBytes;
  const lostOnDiskBytes =
    onDisk === undefined || plan === undefined ? undefined : onDisk - plan.resumedBytes;
  const retries =
    (killed.hedges ?? 0) + (killed.retries ?? 0) + (resumed.hedges ?? 0) + (resumed.retries ?? 0);
  const size = (bytes: number | undefined) => (bytes === undefined ? '?' : formatBytes(bytes));
  context.log(
    `${tool.name} on ${origin.name}, kill at ${percent(fraction)}: before ${formatBytes(beforeKillBytes)} (in socket buffers ${queued === undefined ? '?' : `${formatBytes(queued.unread)} + ${formatBytes(queued.unsent)}`}), kept ${size(keptBytes)}, lost by ferry ${size(lostBytes)} (on disk ${size(lostOnDiskBytes)}), after ${formatBytes(afterKillBytes)}, waste ${formatBytes(wasteBytes)}, retries ${retries}${problems.length > 0 ? ` WRONG ${problems[0]}` : ''}`,
  );
  await context.freshDir('resume', origin.name, tool.name);
  return {
    fraction,
    beforeKillBytes,
    ...(buffered === undefined ? {} : { bufferedAtKillBytes: buffered }),
    afterKillBytes,
    ...(keptBytes === undefined ? {} : { keptBytes }),
    ...(lostBytes === undefined ? {} : { lostBytes, boundBytes: bound }),
    ...(lostOnDiskBytes === undefined ? {} : { lostOnDiskBytes }),
    wasteBytes,
    resumedWallMs: resumed.wallMs,
    ...(killed.cpuMs === undefined || resumed.cpuMs === undefined
      ? {}
      : { cpuMs: killed.cpuMs + resumed.cpuMs }),
    peakRssBytes: Math.max(killed.peakRssBytes ?? 0, resumed.peakRssBytes ?? 0),
    ...(killed.requests === undefined || resumed.requests === undefined
      ? {}
      : { requests: killed.requests + resumed.requests }),
    retries,
    problems,
  };
}

const percent = (fraction: number) => `${(fraction * 100).toFixed(1)} %`;

/** The kill fields of a sample, without what only the scenario uses. */
function killPoint(s: KillSample): KillPoint {
  const { resumedWallMs, cpuMs, peakRssBytes, requests, retries, problems, ...kill } = s;
  return kill;
}

/** Whether ferry's own loss stayed within the bound; blank for a peer (nothing to bound). */
function verdict(lost: number | undefined, bound: number): string | undefined {
  if (lost === undefined) return undefined;
  return `ferry's loss ≤ concurrency × ${formatBytes(LOSS_PER_PART)} (${formatBytes(bound)}): ${lost <= bound ? 'met' : 'MISSED'}`;
}

/** One row per kill point, then the max and median (waste and ferry's loss) with the target. */
function rowsOf(
  origin: Origin,
  { tool, dataset }: Contender,
  samples: KillSample[],
  bound: number,
): BenchResult[] {
  const perKill = samples.map((s): BenchResult => {
    const target = verdict(s.lostBytes, bound);
    return {
      name: `kill at ${percent(s.fraction)}`,
      origin: origin.name,
      tool: tool.name,
      value: s.wasteBytes / 2 ** 20,
      unit: 'MiB waste',
      wallMs: s.resumedWallMs,
      kill: killPoint(s),
      correct: s.problems.length === 0,
      ...(s.problems.length === 0 ? {} : { problems: s.problems.slice(0, 5) }),
      ...(target === undefined ? {} : { target }),
      extra: { retries: s.retries },
    };
  });
  const cpus = samples.flatMap((s) => (s.cpuMs === undefined ? [] : [s.cpuMs]));
  const cpuSeconds = cpus.length === 0 ? undefined : median(cpus) / 1000;
  const requests = samples.flatMap((s) => (s.requests === undefined ? [] : [s.requests]));
  const problems = [...new Set(samples.flatMap((s) => s.problems))];
  const lost = samples.flatMap((s) => (s.lostBytes === undefined ? [] : [s.lostBytes]));
  const met = lost.filter((l) => l <= bound).length;
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
      wastes: samples.map((s) => Math.round(s.wasteBytes)).join(' '),
      bufferedAtKill: samples.map((s) => s.bufferedAtKillBytes ?? '').join(' '),
      lost: samples.map((s) => s.lostBytes ?? '').join(' '),
      bound,
      seed: KILL_POINT_SEED,
    },
  };
  // Each figure's own max (or median) over the kills: a summary, not one kill's row.
  const summary = (label: string, pick: (values: number[]) => number): KillPoint => {
    const of = (get: (s: KillSample) => number | undefined) => {
      const values = samples.flatMap((s) => {
        const v = get(s);
        return v === undefined ? [] : [v];
      });
      return values.length === samples.length ? pick(values) : undefined;
    };
    const optional = (name: keyof KillPoint, value: number | undefined) =>
      value === undefined ? {} : { [name]: value };
    return {
      fraction: Number.NaN,
      label,
      beforeKillBytes: of((s) => s.beforeKillBytes) ?? 0,
      afterKillBytes: of((s) => s.afterKillBytes) ?? 0,
      wasteBytes: of((s) => s.wasteBytes) ?? 0,
      ...optional(
        'bufferedAtKillBytes',
        of((s) => s.bufferedAtKillBytes),
      ),
      ...optional(
        'keptBytes',
        of((s) => s.keptBytes),
      ),
      ...optional(
        'lostBytes',
        of((s) => s.lostBytes),
      ),
      ...optional(
        'lostOnDiskBytes',
        of((s) => s.lostOnDiskBytes),
      ),
      ...(lost.length === samples.length ? { boundBytes: bound } : {}),
    };
  };
  const rows: Array<[string, (values: number[]) => number]> = [
    ['max', (values) => Math.max(...values)],
    ['median', median],
  ];
  return [
    ...perKill,
    ...rows.map(([label, pick]): BenchResult => {
      const kill = summary(`${label} of ${samples.length}`, pick);
      const target = verdict(kill.lostBytes, bound);
      return {
        ...common,
        name: `${label} waste, ${samples.length} kills`,
        value: kill.wasteBytes / 2 ** 20,
        kill,
        ...(target === undefined
          ? {}
          : {
              target: label === 'max' ? `${target}, at ${met} of ${samples.length} kills` : target,
            }),
      };
    }),
  ];
}

const scenario: Scenario = {
  name: 'resume',
  description:
    "ferry SIGKILLed at --kill-points seeded fractions (5–95 %) of a cold pull of the model dataset, published and plain prefix (and aws-cli and rclone on the plain one), then pulled again: waste = bytes fetched by both runs − dataset size; ferry's own loss = bytes it read and did not keep",
  async run({ context }) {
    const rows: BenchResult[] = [];
    const fractions = killPoints(context.config.killPoints);
    const bound = context.config.concurrency * LOSS_PER_PART;
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
        for (const peer of context.tools(origin).filter((t) => PEERS.has(t.name))) {
          contenders.push({ tool: peer, dataset: plain });
        }
      }
      const samples = new Map(contenders.map((c) => [c, [] as KillSample[]]));
      // Kill points in the outer loop, so drift over the run hits every contender alike.
      for (const fraction of fractions) {
        for (const contender of contenders) {
          samples
            .get(contender)
            ?.push(await killAndResume(context, origin, contender, fraction, bound));
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
