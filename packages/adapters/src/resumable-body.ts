import { finished, Readable } from 'node:stream';
import { AbortError, FerryError } from '@ferry/manifest';
import type { AttemptSignal } from './attempt-signal.js';
import type { RetryPolicy } from './retry-policy.js';

/** Opens the rest of the body from byte `start`, under `signal`. */
export type OpenFrom = (start: number, signal: AbortSignal) => Promise<Readable>;

/**
 * A ranged read that survives broken bodies: when the stream fails with a retryable
 * error (reset, truncation, a stall of `stallTimeoutMs`), it waits the backoff and
 * continues with a new ranged read from the first byte not yet delivered, so callers see
 * one uninterrupted stream of exactly the bytes asked for. Retries count against the same
 * budget as the opening attempts. The stall clock runs only while the reader wants bytes,
 * so a slow consumer never looks like a stalled server.
 */
export class ResumableBody extends Readable {
  readonly #policy: RetryPolicy;
  readonly #key: string;
  readonly #callSignal: AbortSignal | undefined;
  readonly #openFrom: OpenFrom;
  readonly #start: number;
  readonly #onCancel = (event: Event) =>
    this.destroy(new AbortError((event.target as AbortSignal).reason));
  #received = 0;
  #failures: number;
  #current: { stream: Readable; attempt: AttemptSignal; stopWatching: () => void } | undefined;
  #wanting = false;

  /**
   * Opens the first stream (retrying as the policy says) and wraps it. `failures` spent
   * while opening count against the retry budget of the whole read.
   */
  static async open(
    policy: RetryPolicy,
    key: string,
    start: number,
    callSignal: AbortSignal | undefined,
    openFrom: OpenFrom,
  ): Promise<ResumableBody> {
    for (let failures = 0; ; ) {
      const attempt = policy.attempt(key, callSignal);
      try {
        const stream = await openFrom(start, attempt.signal);
        return new ResumableBody(
          policy,
          key,
          start,
          callSignal,
          openFrom,
          { stream, attempt },
          failures,
        );
      } catch (error) {
        attempt.dispose();
        failures += 1;
        await policy.backoff(key, policy.classify(error, attempt), failures, callSignal);
      }
    }
  }

  private constructor(
    policy: RetryPolicy,
    key: string,
    start: number,
    callSignal: AbortSignal | undefined,
    openFrom: OpenFrom,
    first: { stream: Readable; attempt: AttemptSignal },
    failures: number,
  ) {
    super();
    this.#policy = policy;
    this.#key = key;
    this.#start = start;
    this.#callSignal = callSignal;
    this.#openFrom = openFrom;
    this.#failures = failures;
    for (const signal of [callSignal, policy.signal])
      signal?.addEventListener('abort', this.#onCancel, { once: true });
    this.#attach(first.stream, first.attempt);
  }

  override _read(): void {
    this.#wanting = true;
    const current = this.#current;
    if (current === undefined) return; // reconnecting; #attach resumes
    this.#armStall(current.attempt);
    current.stream.resume();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    for (const signal of [this.#callSignal, this.#policy.signal])
      signal?.removeEventListener('abort', this.#onCancel);
    this.#detach()?.destroy();
    callback(error);
  }

  #attach(stream: Readable, attempt: AttemptSignal): void {
    attempt.clearTimer(); // the response arrived; from here on only stalls count
    // The attempt's signal aborts on a stall: destroy the body directly too, in case the
    // source does not tie its body to the signal.
    attempt.signal.addEventListener('abort', () => stream.destroy(attempt.signal.reason), {
      once: true,
    });
    stream.on('data', (chunk: Buffer) => {
      if (this.#current?.stream !== stream) return;
      this.#received += chunk.length;
      if (this.push(chunk)) {
        this.#armStall(attempt);
      } else {
        this.#wanting = false;
        attempt.clearTimer();
        stream.pause();
      }
    });
    const stopWatching = finished(stream, (error) => {
      if (this.destroyed || this.#current?.stream !== stream) return;
      this.#detach();
      if (error) {
        void this.#recover(this.#policy.classify(error, attempt));
      } else {
        this.push(null);
      }
    });
    this.#current = { stream, attempt, stopWatching };
    if (this.#wanting) {
      this.#armStall(attempt);
      stream.resume();
    } else {
      stream.pause();
    }
  }

  /** Forgets the current stream (listeners and attempt), returning it. */
  #detach(): Readable | undefined {
    const current = this.#current;
    if (current === undefined) return undefined;
    this.#current = undefined;
    current.stopWatching();
    // It may still emit the error it is being destroyed with; nobody needs it any more.
    current.stream.on('error', () => {});
    current.attempt.dispose();
    return current.stream;
  }

  #armStall(attempt: AttemptSignal): void {
    const ms = this.#policy.stallTimeoutMs;
    const at = this.#start + this.#received;
    attempt.startTimer(
      ms,
      () =>
        new FerryError(
          'FERRY_TRANSIENT',
          `The body of ${this.#key} stalled: no bytes for ${ms} ms at byte ${at}`,
          {
            key: this.#key,
            retryable: true,
            hint: 'The source stopped sending mid-body; ferry retries from the last byte received.',
          },
        ),
    );
  }

  async #recover(failure: unknown): Promise<void> {
    let error = failure;
    try {
      for (;;) {
        this.#failures += 1;
        await this.#policy.backoff(this.#key, error, this.#failures, this.#callSignal);
        if (this.destroyed) return;
        const attempt = this.#policy.attempt(this.#key, this.#callSignal);
        try {
          const stream = await this.#openFrom(this.#start + this.#received, attempt.signal);
          if (this.destroyed) {
            stream.destroy();
            attempt.dispose();
            return;
          }
          this.#attach(stream, attempt);
          return;
        } catch (openError) {
          attempt.dispose();
          error = this.#policy.classify(openError, attempt);
        }
      }
    } catch (final) {
      this.destroy(final instanceof Error ? final : new Error(String(final)));
    }
  }
}
