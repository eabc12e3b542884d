import { formatBytes, formatRate } from './byte-size.js';
import type { CliStream } from './cli-io.js';
import { formatEta } from './format-duration.js';
import type { ProgressSnapshot, ProgressView } from './progress-view.js';

export interface ProgressLinesOptions {
  stream: CliStream;
  now: () => number;
  /** Milliseconds between two progress lines. @default 5000 */
  intervalMs?: number;
}

/**
 * Progress for logs (stderr is not a terminal): one short line every few seconds,
 * `ferry: 1.2 GiB / 4.0 GiB (30%) 250 MiB/s ETA 11s`, and the last one at the end, however
 * short the pull.
 */
export class ProgressLines implements ProgressView {
  readonly #stream: CliStream;
  readonly #now: () => number;
  readonly #intervalMs: number;
  #last: number;
  /** The latest snapshot not printed yet: `close` prints it, so a log shows where it ended. */
  #unprinted: ProgressSnapshot | undefined;

  constructor(options: ProgressLinesOptions) {
    this.#stream = options.stream;
    this.#now = options.now;
    this.#intervalMs = options.intervalMs ?? 5000;
    this.#last = options.now();
  }

  update(snapshot: ProgressSnapshot): void {
    const now = this.#now();
    if (now - this.#last < this.#intervalMs) {
      this.#unprinted = snapshot;
      return;
    }
    this.#last = now;
    this.#unprinted = undefined;
    this.#stream.write(`ferry: ${progressLine(snapshot)}\n`);
  }

  note(line: string): void {
    this.#stream.write(`ferry: ${line}\n`);
  }

  close(): void {
    if (this.#unprinted === undefined) return;
    this.#stream.write(`ferry: ${progressLine(this.#unprinted)}\n`);
    this.#unprinted = undefined;
  }
}

/** `1.2 GiB / 4.0 GiB (30%) 250 MiB/s ETA 11s, 2 retries`. */
export function progressLine(s: ProgressSnapshot): string {
  const eta = s.etaSeconds === undefined ? '' : ` ETA ${formatEta(s.etaSeconds)}`;
  const retries = s.retries === 0 ? '' : `, ${s.retries} ${s.retries === 1 ? 'retry' : 'retries'}`;
  return `${formatBytes(s.doneBytes)} / ${formatBytes(s.totalBytes)} (${percent(s.doneBytes, s.totalBytes)}%) ${formatRate(s.rate)}${eta}${retries}`;
}

/** Whole percent, 100 only when done. */
export function percent(done: number, total: number): number {
  if (total <= 0) return 100;
  return done >= total ? 100 : Math.min(99, Math.floor((done / total) * 100));
}
