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
  /** Anything else worth keeping in the JSON (bytes, requests, peak RSS...). */
  extra?: Record<string, number | string | boolean>;
}

/** A benchmark scenario: one file under `scenarios/`, default-exported. */
export interface Scenario {
  name: string;
  description: string;
  run(options: { signal?: AbortSignal }): Promise<BenchResult[]>;
}

/** Median of a non-empty list of numbers. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}
