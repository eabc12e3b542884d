import { formatBytes } from '@ferry/manifest';
import { measureCeiling } from './ceiling.js';
import type { BenchContext, DatasetKind } from './context.js';
import { floorTool } from './floor-tool.js';
import type { Origin } from './origin.js';
import type { BenchResult } from './scenario.js';
import { summarize, withTarget } from './summarize.js';
import { alternate, runSync, type SyncSample } from './sync-run.js';
import { FERRY_PLAIN, ferryTool, RCLONE_HTTP, type SyncTool } from './sync-tools.js';

export const CEILING = 'ceiling: parallel ranged GETs';
const RSS_LIMIT = 256 * 2 ** 20;

/** The ceiling run once: ranged GETs of the whole prefix, metered like the tools. */
export async function ceilingSample(
  context: BenchContext,
  origin: Origin,
  prefix: string,
  bytes: number,
): Promise<SyncSample> {
  const before = await origin.counters();
  const run = await measureCeiling(origin, prefix, {
    partSize: context.partSize,
    concurrency: context.config.concurrency,
    workDir: context.config.workDir,
  });
  const after = await origin.counters();
  const problems = [...run.problems];
  if (problems.length === 0 && run.bytes !== bytes) {
    problems.push(`read ${run.bytes} bytes, want ${bytes}`);
  }
  return {
    tool: CEILING,
    kind: 'ceiling',
    wallMs: run.wallMs,
    ...(run.peakRssBytes === undefined ? {} : { peakRssBytes: run.peakRssBytes }),
    ...(run.cpuMs === undefined ? {} : { cpuMs: run.cpuMs }),
    sourceBytes: before && after ? after.bytes - before.bytes : run.bytes,
    requests: before && after ? after.requests - before.requests : run.requests,
    problems,
  };
}

/** One contender of a cold comparison and the prefix it pulls. */
interface Contender {
  tool: SyncTool | 'ceiling';
  prefix: string;
}

/** CPU-s/GiB ferry may spend: a published prefix, and a plain one (MD5 ETags checked too). */
const CPU_LIMITS = new Map([
  ['ferry', 2.7],
  [FERRY_PLAIN, 3.2],
]);

/**
 * The cold targets of issue 9 on ferry's rows (published and plain prefix): on s3rver
 * ≥1.0× the best correct rclone run and ≥0.9× the floor; on nginx (any of the three) ≥1.5× the
 * floor; everywhere CPU-s/GiB ≤2.7 published, ≤3.2 plain, and peak RSS < 256 MiB.
 */
function coldTargets(origin: Origin, rows: BenchResult[]): BenchResult[] {
  const ferries = [...CPU_LIMITS.keys()];
  let out = rows;
  const floorTarget = (times: number) => {
    out = withTarget(
      out,
      `≥${times.toFixed(1)}× floor`,
      (r) => (r.vsFloor === undefined ? undefined : r.vsFloor >= times),
      ferries,
    );
  };
  if (origin.name === 's3rver') {
    const rclone = rows
      .filter((r) => r.tool?.startsWith('rclone') === true && r.correct === true)
      .map((r) => r.wallMs ?? Number.POSITIVE_INFINITY);
    const best = rclone.length === 0 ? undefined : Math.min(...rclone);
    out = withTarget(
      out,
      '≥1.0× best peer (rclone)',
      (r) => (best === undefined || r.wallMs === undefined ? undefined : best / r.wallMs >= 1),
      ferries,
    );
    floorTarget(0.9);
  } else if (origin.name.startsWith('nginx')) {
    floorTarget(1.5);
    const http = rows.find((r) => r.tool === RCLONE_HTTP && r.correct === true)?.wallMs;
    if (http !== undefined) {
      out = withTarget(
        out,
        `≥0.7× ${RCLONE_HTTP}`,
        (r) => (r.wallMs === undefined ? undefined : http / r.wallMs >= 0.7),
        ferries,
      );
    }
  }
  for (const [tool, limit] of CPU_LIMITS) {
    out = withTarget(
      out,
      `≤${limit} CPU-s/GiB`,
      (r) => (r.cpuPerGiB === undefined ? undefined : r.cpuPerGiB <= limit),
      [tool],
    );
  }
  return withTarget(
    out,
    'RSS <256 MiB',
    (r) => (r.peakRssBytes === undefined ? undefined : r.peakRssBytes < RSS_LIMIT),
    ferries,
  );
}

/**
 * Pulls a dataset into an empty folder with every tool, the floor, and ferry again from a
 * plain (unpublished) copy where the origin lists, and reads it once with the ceiling's
 * client, on every origin, alternating the order each run; ferry's rows carry the issue's
 * cold targets. Only ferry's own row pulls the published prefix: the peers, the ceiling
 * and the floor read the plain copy (a published prefix holds part objects, not files).
 */
export async function coldCompare(
  context: BenchContext,
  scenario: string,
  kind: DatasetKind,
): Promise<BenchResult[]> {
  const rows: BenchResult[] = [];
  const floor = floorTool({ workDir: context.config.workDir, partSize: context.partSize });
  for (const origin of await context.origins()) {
    const published = await context.published(origin, kind);
    if (published === undefined) {
      context.notes.push(
        `${scenario}: skipped on ${origin.name} (read-only, no ${kind} dataset there)`,
      );
      continue;
    }
    // Everything but ferry's published row reads the files at their paths: the plain copy.
    const readable = await context.readable(origin, kind);
    const plain = await context.plain(origin, kind);
    context.log(
      `${scenario} on ${origin.name}: ${published.files.size} files, ${formatBytes(published.bytes)}`,
    );
    const [ferry, ...peers] = context.tools(origin);
    const contenders: Contender[] = [];
    if (readable !== undefined) {
      contenders.push({ tool: 'ceiling', prefix: readable.prefix });
      if (floor.supports(origin)) contenders.push({ tool: floor, prefix: readable.prefix });
      else {
        context.notes.push(
          `${scenario}: floor skipped on ${origin.name} (its URLs are presigned with aws-cli v2 at /usr/bin/aws: apt-get install -y awscli)`,
        );
      }
    }
    if (ferry !== undefined) contenders.push({ tool: ferry, prefix: published.prefix });
    if (plain !== undefined) {
      const tool = ferryTool(context.ferry, context.config.concurrency, FERRY_PLAIN);
      contenders.push({ tool, prefix: plain.prefix });
    }
    if (readable !== undefined) {
      contenders.push(...peers.map((tool) => ({ tool, prefix: readable.prefix })));
    }
    const samples: SyncSample[] = [];
    await alternate(context.config.runs, contenders, async ({ tool, prefix }) => {
      if (tool === 'ceiling') {
        samples.push(await ceilingSample(context, origin, prefix, published.bytes));
        return;
      }
      const dest = await context.freshDir(scenario, origin.name, tool.name);
      // The plain copy holds the same files under another prefix: the same check. (On a
      // read-only bucket `published` and `readable` are the same prefix.)
      const sample = await runSync(tool, origin, prefix, dest, { expected: published.files });
      const cpu = sample.cpuMs === undefined ? '' : `, ${(sample.cpuMs / 1000).toFixed(2)} CPU-s`;
      context.log(
        `${tool.name}: ${(sample.wallMs / 1000).toFixed(2)} s${cpu}${sample.problems.length > 0 ? ` WRONG ${sample.problems[0]}` : ''}`,
      );
      samples.push(sample);
      await context.discard(dest);
    });
    const summary = summarize(origin, samples, {
      measure: scenario,
      unit: 'MB/s',
      bytes: published.bytes,
    });
    rows.push(...coldTargets(origin, summary));
  }
  return rows;
}
