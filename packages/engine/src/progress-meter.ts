import type { ActiveFiles } from './file-transfer.js';
import type { PullEvent } from './types.js';

/** The rate is measured over this window, so a stall shows within seconds. */
const RATE_WINDOW_MS = 5_000;
/**
 * No ETA until bytes have flowed this long: the first second mixes connection set-up with
 * the first bursts, and an ETA from it is wild (20 minutes for a 4-second pull).
 */
const ETA_SETTLE_MS = 2_000;

/** Samples bytes moved on a timer and emits `progress` events with rate and ETA. */
export class ProgressMeter {
  readonly #samples: Array<{ at: number; bytes: number }> = [];
  /** When the first byte was seen; samples before it (workers starting) are not rate. */
  #flowingSince: number | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    readonly totalBytes: number,
    readonly transferred: () => number,
    /** Bytes of parts still running, by file (root-relative path). */
    readonly inFlight: () => Map<string, number>,
    readonly active: ActiveFiles,
    readonly emit: (event: PullEvent) => void,
  ) {}

  start(intervalMs: number): void {
    this.#timer = setInterval(() => this.tick(), intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Emits one last event, with everything accounted for. */
  finish(): void {
    this.tick();
  }

  #etaSeconds(now: number, rate: number, leftBytes: number): number | undefined {
    if (leftBytes <= 0) return 0;
    const settled = this.#flowingSince !== undefined && now - this.#flowingSince >= ETA_SETTLE_MS;
    return settled && rate > 0 ? leftBytes / rate : undefined;
  }

  tick(): void {
    const now = performance.now();
    const bytes = this.transferred();
    if (this.#flowingSince === undefined && bytes > 0) {
      this.#flowingSince = now;
      // The last idle sample stays as the baseline; earlier ones measured nothing.
      this.#samples.splice(0, Math.max(0, this.#samples.length - 1));
    }
    this.#samples.push({ at: now, bytes });
    while (this.#samples.length > 2 && now - (this.#samples[0]?.at ?? now) > RATE_WINDOW_MS) {
      this.#samples.shift();
    }
    const first = this.#samples[0] ?? { at: now, bytes };
    const seconds = (now - first.at) / 1000;
    const rate = seconds > 0 ? (bytes - first.bytes) / seconds : 0;
    const totalBytes = Math.max(this.totalBytes, bytes);
    const running = this.inFlight();
    this.emit({
      type: 'progress',
      transferredBytes: bytes,
      totalBytes,
      rate,
      etaSeconds: this.#etaSeconds(now, rate, totalBytes - bytes),
      active: [...this.active].map((f) => ({
        path: f.plan.entry.path,
        transferredBytes: f.doneBytes + (running.get(f.plan.relPath) ?? 0),
        totalBytes: f.plan.entry.size,
      })),
    });
  }
}
