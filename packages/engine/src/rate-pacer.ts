/**
 * A bandwidth cap shared by every thread of a pull: one 64-bit slot holds the time (µs) at
 * which the link is next free. A reader that received `n` bytes books `n / rate` seconds
 * from then (compare-and-swap, so threads never book the same time twice) and waits until
 * its booking starts. Idle time earns no credit: the cap holds over any window.
 */
export class RatePacer {
  readonly #next: BigInt64Array;
  readonly #microsPerByte: number;

  /** `shared` from `RatePacer.shared()`, the same buffer in every thread. */
  constructor(shared: SharedArrayBuffer, bytesPerSecond: number) {
    this.#next = new BigInt64Array(shared);
    this.#microsPerByte = 1e6 / bytesPerSecond;
  }

  static shared(): SharedArrayBuffer {
    return new SharedArrayBuffer(8);
  }

  /** Books `bytes`; resolves when the booking starts (`undefined` when it already has). */
  take(bytes: number): Promise<void> | undefined {
    // Wall-clock microseconds: the same time base in every thread.
    const now = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000));
    const cost = BigInt(Math.ceil(bytes * this.#microsPerByte));
    let start: bigint;
    for (;;) {
      const booked = Atomics.load(this.#next, 0);
      start = booked > now ? booked : now;
      if (Atomics.compareExchange(this.#next, 0, booked, start + cost) === booked) break;
    }
    const waitMs = Number(start - now) / 1000;
    return waitMs < 1 ? undefined : new Promise((resolve) => setTimeout(resolve, waitMs));
  }
}
