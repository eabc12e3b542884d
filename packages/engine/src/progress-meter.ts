import type { ProgressEvent } from './types.js';

/** How often a long command emits `progress`: smooth on a terminal, cheap for the engine. */
export const PROGRESS_INTERVAL_MS = 250;
/** The rate is measured over this window, so a stall shows within seconds. */
const RATE_WINDOW_MS = 5_000;
/**
 * No ETA until bytes have flowed this long: the first second mixes connection set-up with
 * the first bursts, and an ETA from it is wild (20 minutes for a 4-second pull).
 */
const ETA_SETTLE_MS = 2_000;

/** What a meter reads at each tick. */
export interface ProgressSample {
  transferredBytes: number;
  active: ProgressEvent['active'];
}

/** Samples bytes moved on a timer and emits `progress` events with rate and ETA. */
export class ProgressMeter {
  readonly #samples: Array<{ at: number; bytes: number }> = [];
  /** When the first byte was seen; samples before it (workers starting) are not rate. */
  #flowingSince: number | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    /** Bytes the work comes to; a caller that learns of more work as it goes may add to it. */
    public totalBytes: number,
    readonly sample: () => ProgressSample,
    readonly emit: (event: ProgressEvent) => void,
  ) {}

  start(intervalMs: number): void {
    // The baseline a transfer that ends before the first tick is measured from.
    this.#samples.push({ at: performance.now(), bytes: this.sample().transferredBytes });
    this.#timer = setInterval(() => this.tick(), intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Stops the timer and emits one last event, with everything accounted for. */
  finish(): void {
    this.stop();
    this.tick();
  }

  #etaSeconds(now: number, rate: number, leftBytes: number): number | undefined {
    if (leftBytes <= 0) return 0;
    const settled = this.#flowingSince !== undefined && now - this.#flowingSince >= ETA_SETTLE_MS;
    return settled && rate > 0 ? leftBytes / rate : undefined;
  }

  tick(): void {
    const now = performance.now();
    const { transferredBytes: bytes, active } = this.sample();
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
    this.emit({
      type: 'progress',
      transferredBytes: bytes,
      totalBytes,
      rate,
      etaSeconds: this.#etaSeconds(now, rate, totalBytes - bytes),
      active,
    });
  }
}

/** Bytes done in whole parts, and the files part-way through: a meter's sample for work counted part by part. */
export class PartTally {
  #bytes = 0;
  readonly #active = new Map<string, { transferredBytes: number; totalBytes: number }>();

  /** Counts `bytes` more of `path`, a file with `totalBytes` to do in all. */
  add(path: string, totalBytes: number, bytes: number): void {
    if (bytes === 0) return;
    this.#bytes += bytes;
    const file = this.#active.get(path) ?? { transferredBytes: 0, totalBytes };
    file.transferredBytes += bytes;
    if (file.transferredBytes >= file.totalBytes) this.#active.delete(path);
    else this.#active.set(path, file);
  }

  sample(): ProgressSample {
    return {
      transferredBytes: this.#bytes,
      active: [...this.#active].map(([path, f]) => ({ path, ...f })),
    };
  }
}
