import type { BenchContext } from './context.js';

/** One measured figure of a scenario, with the baseline it is compared against. */
export interface BenchResult {
  /** What was measured, e.g. `sha256 one core`. */
  name: string;
  /** The figure, in `unit`. */
  value: number;
  unit: string;
  /** Name of the baseline measured in the same run, when this figure has one. */
  baseline?: string;
  /** value / baseline value, so drift between runs cancels out. */
  ratio?: number;
  /** Transfer scenarios: the origin and the tool (ferry, a peer, the ceiling). */
  origin?: string;
  tool?: string;
  /** Median wall time of the runs. */
  wallMs?: number;
  /** Median bytes the origin sent (its own meter where it has one). */
  sourceBytes?: number;
  /** Median requests the origin served. */
  requests?: number;
  /** Highest peak RSS of the tool's process over the runs. */
  peakRssBytes?: number;
  /** Median user + system CPU seconds of the tool's process tree (GNU time). */
  cpuSeconds?: number;
  /** `cpuSeconds` per GiB of the dataset (not of the bytes fetched). */
  cpuPerGiB?: number;
  /** False when any run failed or left wrong files; `problems` says what. */
  correct?: boolean;
  problems?: string[];
  /** Ceiling's wall time / this wall time: 1.00 is the ceiling. */
  vsCeiling?: number;
  /** The floor's wall time / this wall time: above 1 is faster than plain Node. */
  vsFloor?: number;
  /** Best correct peer's wall time / this wall time: above 1 beats every peer. */
  vsBestPeer?: number;
  /** ferry's hedges (`retry` events with `attempt: 0`) in the run, where a scenario counts them. */
  hedges?: number;
  /** One kill of the resume scenario and the pull that finished after it. */
  kill?: KillPoint;
  /** The target for this figure and whether it is met, e.g. `≥0.90× ceiling: no`. */
  target?: string;
  /** Anything else worth keeping in the JSON (bytes, requests, peak RSS...). */
  extra?: Record<string, number | string | boolean>;
}

/** A pull SIGKILLed at a fraction of its bytes, then run again to the end. */
export interface KillPoint {
  /** The fraction of the bytes to transfer at which the kill was asked for. */
  fraction: number;
  /** Set on a row that sums up several kills (`max of 10`): `fraction` is then meaningless. */
  label?: string;
  /** Bytes the origin sent to the killed run (its meter). */
  beforeKillBytes: number;
  /**
   * Of `beforeKillBytes`, what sat in socket buffers at the kill: the tool's receive queues
   * and, on a loopback origin, the origin's send queues of the same connections
   * (/proc/net/tcp, read while the tool is stopped by SIGSTOP, once the origin stopped
   * filling them, right before the SIGKILL). Written by the origin, never read by the tool:
   * any client killed then loses it, whatever its checkpoints.
   */
  bufferedAtKillBytes?: number;
  /** Bytes the origin sent to the run that finished the pull. */
  afterKillBytes: number;
  /**
   * What the second run kept of the first, by its plan: files already done and the parts
   * and checkpoints of partial files it resumed from. Undefined without a `plan` line.
   */
  keptBytes?: number;
  /**
   * What ferry itself lost: bytes it read from its sockets and did not keep,
   * `beforeKillBytes − bufferedAtKillBytes − keptBytes` (response headers, a few hundred
   * bytes a request, are in it too).
   */
  lostBytes?: number;
  /**
   * Of `lostBytes`, what was on disk in partial files at the kill and not kept: written
   * past the part's last cut, or a small file without a journal. The rest was read and
   * not yet written (a write batch and a socket chunk per part at most).
   */
  lostOnDiskBytes?: number;
  /** What `lostBytes` may be at most: concurrency × (cut interval + one socket chunk). */
  boundBytes?: number;
  /** `beforeKillBytes + afterKillBytes` less the dataset's bytes: what the kill cost. */
  wasteBytes: number;
}

/** A benchmark scenario: one file under `scenarios/`, default-exported. */
export interface Scenario {
  name: string;
  description: string;
  /** `context` holds the flags, origins, datasets and tools; scenarios that need none ignore it. */
  run(options: { signal?: AbortSignal; context: BenchContext }): Promise<BenchResult[]>;
}

/** Median of a non-empty list of numbers. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}
