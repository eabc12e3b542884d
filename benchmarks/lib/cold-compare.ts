import { rm } from 'node:fs/promises';
import { formatBytes } from './byte-size.js';
import { measureCeiling } from './ceiling.js';
import type { BenchContext, DatasetKind } from './context.js';
import { floorTool } from './floor-tool.js';
import type { Origin } from './origin.js';
import type { BenchResult } from './scenario.js';
import { summarize, withTarget } from './summarize.js';
import { alternate, runSync, type SyncSample } from './sync-run.js';
import { FERRY_PLAIN, ferryTool, type SyncTool } from './sync-tools.js';

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

/**
 * Pulls a dataset into an empty folder with every tool, the floor, and ferry again from a
 * plain (unpublished) copy where the origin lists, and reads it once with the ceiling's
 * client, on every origin, alternating the order each run; ferry's row carries the issue's
 * cold targets.
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
    const plain = await context.plain(origin, kind);
    context.log(
      `${scenario} on ${origin.name}: ${published.files.size} files, ${formatBytes(published.bytes)}`,
    );
    const [ferry, ...peers] = context.tools(origin);
    const contenders: Contender[] = [{ tool: 'ceiling', prefix: published.prefix }];
    if (floor.supports(origin)) contenders.push({ tool: floor, prefix: published.prefix });
    else {
      context.notes.push(
        `${scenario}: floor skipped on ${origin.name} (its URLs are presigned with aws-cli v2 at /usr/bin/aws: apt-get install -y awscli)`,
      );
    }
    if (ferry !== undefined) contenders.push({ tool: ferry, prefix: published.prefix });
    if (plain !== undefined) {
      const tool = ferryTool(context.ferry, context.config.concurrency, FERRY_PLAIN);
      contenders.push({ tool, prefix: plain.prefix });
    }
    contenders.push(...peers.map((tool) => ({ tool, prefix: published.prefix })));
    const samples: SyncSample[] = [];
    await alternate(context.config.runs, contenders, async ({ tool, prefix }) => {
      if (tool === 'ceiling') {
        samples.push(await ceilingSample(context, origin, prefix, published.bytes));
        return;
      }
      const dest = await context.freshDir(scenario, origin.name, tool.name);
      // The plain copy holds the same files under another prefix: the same check.
      const sample = await runSync(tool, origin, prefix, dest, { expected: published.files });
      const cpu = sample.cpuMs === undefined ? '' : `, ${(sample.cpuMs / 1000).toFixed(2)} CPU-s`;
      context.log(
        `${tool.name}: ${(sample.wallMs / 1000).toFixed(2)} s${cpu}${sample.problems.length > 0 ? ` WRONG ${sample.problems[0]}` : ''}`,
      );
      samples.push(sample);
      // Caches of every tool at once would be tools × dataset on disk; one at a time is enough.
      await rm(dest, { recursive: true, force: true });
    });
    let summary = summarize(origin, samples, {
      measure: scenario,
      unit: 'MB/s',
      bytes: published.bytes,
    });
    summary = withTarget(summary, '≥0.90× ceiling', (r) => (r.vsCeiling ?? 0) >= 0.9);
    if (summary.some((r) => r.vsBestPeer !== undefined)) {
      summary = withTarget(summary, '≥1.5× best peer', (r) => (r.vsBestPeer ?? 0) >= 1.5);
    }
    rows.push(...withTarget(summary, 'RSS <256 MiB', (r) => (r.peakRssBytes ?? 0) < RSS_LIMIT));
  }
  return rows;
}
