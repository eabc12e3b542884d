import { finished } from 'node:stream';
import { AbortError, FerryError, isFerryError } from '@ferry/manifest';
import type { AttemptSignal } from './attempt-signal.js';
import { type RetryOptions, RetryPolicy } from './retry-policy.js';
import type { OpenedRange, Source } from './source.js';

/** Where a `readRange` call reads, and what it does on the way. */
export interface RangeReadOptions {
  /** First byte. */
  start: number;
  /** One past the last byte. @default the object's end */
  end?: number | undefined;
  /** ETag every response must carry (`If-Match`), so resumed bodies come from one object. */
  ifMatch?: string | undefined;
  signal?: AbortSignal | undefined;
  /** Called once, when the first response is open (its headers checked). */
  onOpen?: () => void;
  /**
   * Hedging of a body that stalls while the rest of the transfer flows: called while the
   * body is wanted and idle, with how long it has been idle; `true` opens a second request
   * for the rest of the range, and whichever of the two delivers next wins (the other is
   * destroyed). Without it only `stallTimeoutMs` ends an idle body.
   */
  lagging?: ((idleMs: number) => boolean) | undefined;
  /** Told each time a hedge request is sent, with the byte it starts at. */
  onHedge?: (at: number) => void;
  /**
   * The sink can be lent chunks: one it is told is `lent` must be done with when the sink
   * returns (hashed, written or copied), as the source reuses its memory for the next read
   * (`OpenedRange.lend`; a body that cannot lend delivers chunks of its own). @default false
   */
  transientChunks?: boolean;
}

/**
 * Receives the bytes in order. Returning a promise pauses the body until it settles, so a
 * slow consumer is never mistaken for a stalled server. A throw or rejection ends the read
 * with that error, never retried: it is the consumer's failure, not the origin's. A `lent`
 * chunk (only with `transientChunks`) is valid until the sink returns.
 */
export type ChunkSink = (chunk: Buffer, lent: boolean) => Promise<void> | undefined;

/**
 * Delivers exactly the bytes `[start, end)` of `key` to `onChunk`, in order, straight from
 * the origin's body (no stream is wrapped around it: the hot path of a pull pays for one
 * callback per socket chunk and nothing else). A body that breaks, ends short or stalls is
 * read again from the first byte not yet delivered, with `ifMatch` kept, after the policy's
 * backoff; retries of opening and of resuming share the policy's budget. A stall is a body
 * that moves no byte for `stallTimeoutMs` while its consumer wants more; `lagging` can
 * hedge it much sooner. Both are checked by a coarse timer, so a chunk costs no timer work.
 */
export async function readRange(
  source: Source,
  key: string,
  options: RangeReadOptions,
  onChunk: ChunkSink,
  retry: RetryPolicy | RetryOptions = {},
): Promise<void> {
  const policy = retry instanceof RetryPolicy ? retry : new RetryPolicy(retry);
  const { end, ifMatch, signal } = options;
  let position = options.start;
  let opened = false;
  const open = (at: number, attemptSignal: AbortSignal) =>
    source.openRange(key, {
      start: at,
      end,
      ifMatch,
      signal: attemptSignal,
    });
  for (let failures = 0; ; ) {
    const attempt = policy.attempt(key, signal);
    let consumerError: { error: unknown } | undefined;
    try {
      const range = await open(position, attempt.signal);
      // From here on only stalls count: a large part may take longer than an attempt.
      attempt.clearTimer();
      if (!opened) {
        opened = true;
        options.onOpen?.();
      }
      await new BodyDrain(key, position, attempt, policy, options, open, (chunk, lent) => {
        position += chunk.length;
        source.metrics.bytesRead += chunk.length;
        try {
          const step = onChunk(chunk, lent);
          return step?.catch((error: unknown) => {
            consumerError = { error };
            throw error;
          });
        } catch (error) {
          consumerError = { error };
          throw error;
        }
      }).run(range);
      return;
    } catch (error) {
      if (consumerError !== undefined) throw consumerError.error;
      failures += 1;
      await policy.backoff(key, policy.classify(error, attempt), failures, signal);
    } finally {
      attempt.dispose();
    }
  }
}

/**
 * Idle bodies are checked this often: hedging decisions need sub-second resolution. Idle
 * time itself is read off the clock, not counted in ticks: on a starved machine timers fire
 * late, and ticks counted as their nominal length made a body look idle for less time than
 * it was, so the bytes the others moved since it went quiet fell outside the hedging window
 * and a stalled body waited for the full stall timeout.
 */
const MAX_TICK_MS = 250;

/** The body being read: the opened range and how much of it arrived. */
interface Current {
  range: OpenedRange;
  received: number;
  detach(): void;
}

/**
 * Feeds one opened body to `deliver` until it ends, failing on a short, long or stalled
 * body; a hedge may replace the body midway with a second response for the same rest.
 */
class BodyDrain {
  readonly #key: string;
  readonly #from: number;
  readonly #attempt: AttemptSignal;
  readonly #policy: RetryPolicy;
  readonly #options: RangeReadOptions;
  readonly #open: (at: number, signal: AbortSignal) => Promise<OpenedRange>;
  readonly #deliver: ChunkSink;
  #current: Current | undefined;
  #delivered = 0;
  #pending: Promise<void> | undefined;
  #settled = false;
  #moved = false;
  /** When the body was last seen moving (or waiting on its consumer). */
  #quietSince = 0;
  #hedge: AbortController | undefined;
  #resolve: () => void = () => {};
  #reject: (error: unknown) => void = () => {};
  #ticker: NodeJS.Timeout | undefined;
  readonly #onAbort = () =>
    this.#fail(this.#attempt.timedOut ?? new AbortError(this.#attempt.signal.reason));

  constructor(
    key: string,
    from: number,
    attempt: AttemptSignal,
    policy: RetryPolicy,
    options: RangeReadOptions,
    open: (at: number, signal: AbortSignal) => Promise<OpenedRange>,
    deliver: ChunkSink,
  ) {
    this.#key = key;
    this.#from = from;
    this.#attempt = attempt;
    this.#policy = policy;
    this.#options = options;
    this.#open = open;
    this.#deliver = deliver;
  }

  run(range: OpenedRange): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
      const stallMs = this.#policy.stallTimeoutMs;
      const tickMs = Math.min(MAX_TICK_MS, stallMs / 4);
      if (Number.isFinite(tickMs) && tickMs > 0) {
        this.#ticker = setInterval(() => this.#tick(), tickMs);
      }
      this.#quietSince = performance.now();
      this.#attach(range);
      if (this.#attempt.signal.aborted) return this.#onAbort();
      this.#attempt.signal.addEventListener('abort', this.#onAbort, { once: true });
    });
  }

  #tick(): void {
    if (this.#settled) return;
    const now = performance.now();
    if (this.#moved || this.#pending !== undefined) {
      this.#moved = false;
      this.#quietSince = now;
      return;
    }
    const idleMs = now - this.#quietSince;
    if (idleMs >= this.#policy.stallTimeoutMs) {
      const at = this.#from + this.#delivered;
      this.#fail(
        new FerryError(
          'FERRY_TRANSIENT',
          `The body of ${this.#key} stalled: no bytes for ${this.#policy.stallTimeoutMs} ms at byte ${at}`,
          {
            key: this.#key,
            retryable: true,
            hint: 'The source stopped sending mid-body; ferry retries from the last byte received.',
          },
        ),
      );
      return;
    }
    if (this.#hedge === undefined && this.#options.lagging?.(idleMs) === true) {
      this.#startHedge();
    }
  }

  /** A second request for the rest; it replaces the idle body if that delivers nothing meanwhile. */
  #startHedge(): void {
    const hedge = new AbortController();
    this.#hedge = hedge;
    const mark = this.#delivered;
    const at = this.#from + mark;
    const onAbort = () => hedge.abort(this.#attempt.signal.reason);
    this.#attempt.signal.addEventListener('abort', onAbort, { once: true });
    this.#options.onHedge?.(at);
    this.#open(at, hedge.signal).then(
      (range) => {
        this.#attempt.signal.removeEventListener('abort', onAbort);
        if (this.#hedge === hedge) this.#hedge = undefined;
        if (this.#settled || this.#delivered !== mark) {
          // The first body recovered (or the read is over): the hedge lost.
          range.body.destroy();
          return;
        }
        const stalled = this.#current;
        stalled?.detach();
        stalled?.range.body.destroy();
        this.#quietSince = performance.now();
        this.#attach(range);
      },
      () => {
        // A failed hedge changes nothing: the first body still has its stall timeout.
        this.#attempt.signal.removeEventListener('abort', onAbort);
        if (this.#hedge === hedge) this.#hedge = undefined;
      },
    );
  }

  #attach(range: OpenedRange): void {
    const { body, length } = range;
    const lend = this.#options.transientChunks === true ? range.lend : undefined;
    lend?.();
    const lent = lend !== undefined;
    const onData = (chunk: Buffer) => {
      if (this.#settled || this.#current !== current) return;
      current.received += chunk.length;
      if (length !== undefined && current.received > length) {
        return this.#fail(range.longError(length));
      }
      this.#moved = true;
      this.#delivered += chunk.length;
      let step: Promise<void> | undefined;
      try {
        step = this.#deliver(chunk, lent);
      } catch (error) {
        return this.#fail(error);
      }
      if (step === undefined) return;
      body.pause();
      this.#pending = step;
      step.then(() => {
        this.#pending = undefined;
        if (!this.#settled) this.#current?.range.body.resume();
      }, this.#fail);
    };
    body.on('data', onData);
    const stopWatching = finished(body, (error) => {
      if (this.#settled || this.#current !== current) return;
      if (error) {
        const mapped = range.mapError(error);
        // A connection cut mid-body: say how far it got, which is what the user can act on.
        const cut =
          isFerryError(mapped) &&
          mapped.retryable &&
          length !== undefined &&
          current.received < length;
        this.#fail(cut ? range.shortError(current.received, length) : mapped);
      } else if (length !== undefined && current.received < length) {
        this.#fail(range.shortError(current.received, length));
      } else if (this.#pending !== undefined) {
        this.#pending.then(this.#succeed, this.#fail);
      } else {
        this.#succeed();
      }
    });
    const current: Current = {
      range,
      received: 0,
      detach: () => {
        body.off('data', onData);
        stopWatching();
      },
    };
    this.#current = current;
    if (this.#pending !== undefined) body.pause();
  }

  #cleanup(): void {
    this.#settled = true;
    if (this.#ticker !== undefined) clearInterval(this.#ticker);
    this.#attempt.signal.removeEventListener('abort', this.#onAbort);
    this.#current?.detach();
    this.#hedge?.abort(new AbortError('hedge not needed'));
  }

  readonly #fail = (error: unknown): void => {
    if (this.#settled) return;
    this.#cleanup();
    this.#current?.range.body.destroy();
    this.#reject(error);
  };

  readonly #succeed = (): void => {
    if (this.#settled) return;
    this.#cleanup();
    this.#resolve();
  };
}
