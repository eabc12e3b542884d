import { join } from 'node:path';
import { formatBytes } from '@ferry/manifest';
import type { Fault, FaultMatch } from '../../test/fixtures/index.js';
import type { BenchContext } from '../lib/context.js';
import { type Dataset, type DatasetSpec, generateDataset } from '../lib/dataset.js';
import { type FaultOrigin, startFaultOrigin } from '../lib/fault-origin.js';
import type { BenchResult, Scenario } from '../lib/scenario.js';
import { summarize, withTarget } from '../lib/summarize.js';
import { alternate, runSync, type SyncSample } from '../lib/sync-run.js';
import { ferryTool } from '../lib/sync-tools.js';

const MiB = 2 ** 20;
const KiB = 2 ** 10;

/** 8 shards of 25 MiB (200 MiB): 16 parts of a published manifest, all in flight at once. */
const STALL_SPEC: DatasetSpec = {
  shards: 8,
  shardSize: 25 * MiB,
  smallFiles: 0,
  smallFileSize: 0,
  extras: false,
  seed: 4,
};

/**
 * 16 shards of 512 KiB for the throttled pull: small, since every body pauses
 * `THROTTLE.everyMs` after each burst (about 15 s for the pull, ref and manifest included).
 */
const SLOW_SPEC: DatasetSpec = {
  shards: 16,
  shardSize: 512 * KiB,
  smallFiles: 0,
  smallFileSize: 0,
  extras: false,
  seed: 5,
};

/**
 * The bodies that stall: headers and `afterBytes` of the body sent, then silence on an
 * open connection. Different shards, parts and depths: early in a part, in the middle of a
 * file's second part, late in a part.
 */
const STALLS: Array<{ shard: number; part: number; afterBytes: number }> = [
  { shard: 1, part: 0, afterBytes: 256 * KiB },
  { shard: 4, part: 1, afterBytes: 4 * MiB },
  { shard: 6, part: 0, afterBytes: 12 * MiB },
];

/**
 * Every body of the throttled pull, the ref and manifest too: 128 KiB, then a pause longer
 * than the hedge delay (2 s). Each body is idle long enough to be hedged, so only the rule
 * that the rest of the pull must have moved 4 MiB meanwhile keeps ferry from hedging: here
 * 16 bodies move at most 16 × 128 KiB = 2 MiB in any 2.5 s.
 */
const THROTTLE: Fault = { kind: 'throttle', bytes: 128 * KiB, everyMs: 2500 };

/** The target: a pull with three stalled bodies finishes within this wall time. */
const STALL_WALL_LIMIT_MS = 15_000;

type Case = 'no faults' | '3 stalled bodies' | 'throttled link';

/** Shard `i` of a generated dataset (its files sorted by name). */
function shardKey(dataset: Dataset, i: number): string {
  const shard = [...dataset.files.keys()].filter((k) => k.endsWith('.safetensors')).sort()[i];
  if (shard === undefined) throw new Error(`stall: the dataset has no shard ${i}`);
  return shard;
}

async function runCase(
  context: BenchContext,
  { origin, server, partRequest }: FaultOrigin,
  which: Case,
  datasets: { stall: Dataset; slow: Dataset },
): Promise<SyncSample> {
  const ferry = ferryTool(context.ferry, context.config.concurrency);
  const prefix = which === 'throttled link' ? 'slow' : 'stall';
  const dataset = which === 'throttled link' ? datasets.slow : datasets.stall;
  server.reset();
  const faults: Array<{ fault: Fault; match: FaultMatch }> = [];
  if (which === '3 stalled bodies') {
    for (const { shard, part, afterBytes } of STALLS) {
      // `covers` the part's first byte: ferry's request for the part, never its hedge
      // (which starts where the stalled body stopped).
      const { key, covers } = await partRequest(prefix, shardKey(dataset, shard), part);
      faults.push({ fault: { kind: 'stall', afterBytes }, match: { key, covers } });
    }
  } else if (which === 'throttled link') {
    // Far more than the pull's requests: every one of them is throttled.
    faults.push({ fault: THROTTLE, match: { times: 1_000_000 } });
  }
  for (const { fault, match } of faults) server.inject(fault, match);
  const dest = await context.freshDir('stall', which.replaceAll(' ', '-'));
  const sample = await runSync(ferry, origin, prefix, dest, { expected: dataset.files });
  if (which === '3 stalled bodies' && server.pending() > 0) {
    sample.problems.push(`${server.pending()} of ${STALLS.length} stalls never happened`);
  }
  server.reset();
  context.log(
    `${which}: ${(sample.wallMs / 1000).toFixed(2)} s, ${sample.hedges ?? 0} hedges, ${sample.retries ?? 0} retries${sample.problems.length > 0 ? ` WRONG ${sample.problems[0]}` : ''}`,
  );
  await context.freshDir('stall', which.replaceAll(' ', '-'));
  return sample;
}

const scenario: Scenario = {
  name: 'stall',
  description:
    'a 200 MiB published dataset over a loopback HTTP origin that stalls 3 response bodies (hedging), and a small one over a link throttled alike for every connection (no false hedges)',
  async run({ context }) {
    const data = join(context.config.workDir, 'data');
    context.log('generating datasets stall and slow');
    const datasets = {
      stall: await generateDataset(join(data, 'stall'), STALL_SPEC),
      slow: await generateDataset(join(data, 'slow'), SLOW_SPEC),
    };
    const fault = await startFaultOrigin(context.config.workDir);
    try {
      await fault.origin.publish(datasets.stall, 'stall');
      await fault.origin.publish(datasets.slow, 'slow');
      context.log(
        `stall: ${formatBytes(datasets.stall.bytes)} with ${STALLS.length} stalls, throttled: ${formatBytes(datasets.slow.bytes)}; ${fault.origin.describe}`,
      );
      const cases: Case[] = ['no faults', '3 stalled bodies', 'throttled link'];
      const samples = new Map<Case, SyncSample[]>(cases.map((c) => [c, []]));
      await alternate(context.config.runs, cases, async (which) => {
        samples.get(which)?.push(await runCase(context, fault, which, datasets));
      });
      const rows: BenchResult[] = [];
      for (const which of cases) {
        const runs = samples.get(which) ?? [];
        const bytes = which === 'throttled link' ? datasets.slow.bytes : datasets.stall.bytes;
        // The most hedges of any run: one false hedge is a miss.
        const hedges = Math.max(...runs.map((r) => r.hedges ?? 0));
        const slowest = Math.max(...runs.map((r) => r.wallMs));
        let [row] = summarize(fault.origin, runs, { measure: which, unit: 's', bytes });
        if (row === undefined) continue;
        row = {
          ...row,
          name: which,
          hedges,
          extra: {
            ...row.extra,
            hedges: runs.map((r) => r.hedges ?? 0).join(' '),
            retries: runs.map((r) => r.retries ?? 0).join(' '),
          },
        };
        if (which === '3 stalled bodies') {
          [row] = withTarget(
            [row],
            `≤${STALL_WALL_LIMIT_MS / 1000} s wall`,
            () => slowest <= STALL_WALL_LIMIT_MS,
          ) as [BenchResult];
        } else if (which === 'throttled link') {
          [row] = withTarget([row], '0 hedges', () => hedges === 0) as [BenchResult];
        }
        rows.push(row);
      }
      return rows;
    } finally {
      await fault.origin.close();
    }
  },
};

export default scenario;
