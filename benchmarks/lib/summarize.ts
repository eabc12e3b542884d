import type { Origin } from './origin.js';
import { type BenchResult, median } from './scenario.js';
import type { SyncSample } from './sync-run.js';

export interface SummarizeOptions {
  /** The measure's name in the table, e.g. `cold pull`. */
  measure: string;
  /** `MB/s` over `bytes`, or plain wall seconds (warm, no-op runs). */
  unit: 'MB/s' | 's';
  /** Bytes each tool had to deliver, for MB/s and CPU-s/GiB. */
  bytes: number;
}

const medianOf = (values: Array<number | undefined>) => {
  const known = values.filter((v): v is number => v !== undefined);
  return known.length === 0 ? undefined : median(known);
};

/**
 * One row per tool: medians over the runs (wall, CPU, bytes, requests), the highest peak
 * RSS, and the ratios to the ceiling, to the floor and to the fastest peer, each a baseline
 * only when it got the bytes right.
 */
export function summarize(
  origin: Origin,
  samples: SyncSample[],
  options: SummarizeOptions,
): BenchResult[] {
  const byTool = new Map<string, SyncSample[]>();
  for (const s of samples) byTool.set(s.tool, [...(byTool.get(s.tool) ?? []), s]);
  const rows = [...byTool].map(([tool, runs]) => {
    const first = runs[0] as SyncSample;
    const wallMs = median(runs.map((r) => r.wallMs));
    const problems = [...new Set(runs.flatMap((r) => r.problems))];
    const rss = runs.map((r) => r.peakRssBytes ?? 0).filter((b) => b > 0);
    const sourceBytes = medianOf(runs.map((r) => r.sourceBytes));
    const requests = medianOf(runs.map((r) => r.requests));
    const cpuMs = medianOf(runs.map((r) => r.cpuMs));
    const engineMs = medianOf(runs.map((r) => r.result?.durationMs));
    return {
      kind: first.kind,
      row: {
        name: options.measure,
        origin: origin.name,
        tool,
        value: options.unit === 'MB/s' ? options.bytes / 1e6 / (wallMs / 1000) : wallMs / 1000,
        unit: options.unit,
        wallMs,
        ...(sourceBytes === undefined ? {} : { sourceBytes }),
        ...(requests === undefined ? {} : { requests }),
        ...(rss.length === 0 ? {} : { peakRssBytes: Math.max(...rss) }),
        ...(cpuMs === undefined
          ? {}
          : { cpuSeconds: cpuMs / 1000, cpuPerGiB: cpuMs / 1000 / (options.bytes / 2 ** 30) }),
        correct: problems.length === 0,
        ...(problems.length === 0 ? {} : { problems: problems.slice(0, 5) }),
        extra: {
          runs: runs.length,
          walls: runs.map((r) => Math.round(r.wallMs)).join(' '),
          ...(cpuMs === undefined
            ? {}
            : { cpuMs: runs.map((r) => (r.cpuMs === undefined ? '' : r.cpuMs)).join(' ') }),
          // ferry's own duration: the wall time less process start-up and module loading.
          ...(engineMs === undefined ? {} : { engineMs }),
        },
      } satisfies BenchResult,
    };
  });
  const wallOf = (kind: SyncSample['kind']) =>
    rows.find((r) => r.kind === kind && r.row.correct)?.row.wallMs;
  const ceiling = wallOf('ceiling');
  const floor = wallOf('floor');
  const peerWalls = rows.filter((r) => r.kind === 'peer' && r.row.correct).map((r) => r.row.wallMs);
  const bestPeer = peerWalls.length === 0 ? undefined : Math.min(...peerWalls);
  return rows.map(({ kind, row }) => ({
    ...row,
    ...(ceiling === undefined ? {} : { vsCeiling: ceiling / row.wallMs }),
    ...(floor === undefined ? {} : { vsFloor: floor / row.wallMs }),
    ...(bestPeer === undefined || kind === 'ceiling' ? {} : { vsBestPeer: bestPeer / row.wallMs }),
  }));
}

/**
 * Marks the rows of `tools` (ferry's by default) with a target and whether it holds:
 * `met`, `MISSED`, or `n/a` when `met` cannot tell (the figure was not measured).
 */
export function withTarget(
  rows: BenchResult[],
  text: string,
  met: (row: BenchResult) => boolean | undefined,
  tools: string[] = ['ferry'],
): BenchResult[] {
  return rows.map((row) => {
    if (row.tool === undefined || !tools.includes(row.tool)) return row;
    const verdict = met(row);
    const result = verdict === undefined ? 'n/a' : verdict ? 'met' : 'MISSED';
    return { ...row, target: `${row.target ? `${row.target}; ` : ''}${text}: ${result}` };
  });
}
