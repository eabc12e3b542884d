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
}

/**
 * Receives the bytes in order. Returning a promise pauses the body until it settles, so a
 * slow consumer is never mistaken for a stalled server. A throw or rejection ends the read
 * with that error, never retried: it is the consumer's failure, not the origin's.
 */
export type ChunkSink = (chunk: Buffer) => Promise<void> | undefined;

/**
 * Delivers exactly the bytes `[start, end)` of `key` to `onChunk`, in order, straight from
 * the origin's body (no stream is wrapped around it: the hot path of a pull pays for one
 * callback per socket chunk and nothing else). A body that breaks, ends short or stalls is
 * read again from the first byte not yet delivered, with `ifMatch` kept, after the policy's
 * backoff; retries of opening and of resuming share the policy's budget. A stall is a body
 * that moves no byte for about `stallTimeoutMs` while its consumer wants more; it is
 * checked by a coarse timer, so receiving a chunk costs no timer work.
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
  for (let failures = 0; ; ) {
    const attempt = policy.attempt(key, signal);
    let consumerError: { error: unknown } | undefined;
    try {
      const range = await source.openRange(key, {
        start: position,
        signal: attempt.signal,
        ...(end === undefined ? {} : { end }),
        ...(ifMatch === undefined ? {} : { ifMatch }),
      });
      // From here on only stalls count: a large part may take longer than an attempt.
      attempt.clearTimer();
      if (!opened) {
        opened = true;
        options.onOpen?.();
      }
      await drain(key, position, range, attempt, policy, (chunk) => {
        position += chunk.length;
        source.metrics.bytesRead += chunk.length;
        try {
          const step = onChunk(chunk);
          return step?.catch((error: unknown) => {
            consumerError = { error };
            throw error;
          });
        } catch (error) {
          consumerError = { error };
          throw error;
        }
      });
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

/** Feeds one opened body to `deliver` until it ends, failing on a short, long or stalled body. */
function drain(
  key: string,
  from: number,
  range: OpenedRange,
  attempt: AttemptSignal,
  policy: RetryPolicy,
  deliver: ChunkSink,
): Promise<void> {
  const { body, length } = range;
  return new Promise((resolve, reject) => {
    let received = 0;
    let settled = false;
    let pending: Promise<void> | undefined;
    // Stall detection: ticks count while the body is flowing and nothing arrived since the last one.
    let moved = false;
    let idleTicks = 0;
    const tickMs = policy.stallTimeoutMs / STALL_TICKS;
    const ticker =
      Number.isFinite(tickMs) && tickMs > 0
        ? setInterval(() => {
            if (moved || pending !== undefined) {
              moved = false;
              idleTicks = 0;
              return;
            }
            if (++idleTicks >= STALL_TICKS) fail(stallError());
          }, tickMs)
        : undefined;
    const onAbort = () => fail(attempt.timedOut ?? new AbortError(attempt.signal.reason));
    const cleanup = () => {
      settled = true;
      if (ticker !== undefined) clearInterval(ticker);
      attempt.signal.removeEventListener('abort', onAbort);
      stopWatching();
    };
    const fail = (error: unknown) => {
      if (settled) return;
      cleanup();
      body.destroy();
      reject(error);
    };
    const succeed = () => {
      if (settled) return;
      cleanup();
      resolve();
    };
    const stallError = () =>
      new FerryError(
        'FERRY_TRANSIENT',
        `The body of ${key} stalled: no bytes for ${policy.stallTimeoutMs} ms at byte ${from + received}`,
        {
          key,
          retryable: true,
          hint: 'The source stopped sending mid-body; ferry retries from the last byte received.',
        },
      );

    body.on('data', (chunk: Buffer) => {
      if (settled) return;
      received += chunk.length;
      if (length !== undefined && received > length) return fail(range.longError(length));
      moved = true;
      let step: Promise<void> | undefined;
      try {
        step = deliver(chunk);
      } catch (error) {
        return fail(error);
      }
      if (step === undefined) return;
      body.pause();
      pending = step;
      step.then(() => {
        pending = undefined;
        if (!settled) body.resume();
      }, fail);
    });
    const stopWatching = finished(body, (error) => {
      if (settled) return;
      if (error) {
        const mapped = range.mapError(error);
        // A connection cut mid-body: say how far it got, which is what the user can act on.
        const cut =
          isFerryError(mapped) && mapped.retryable && length !== undefined && received < length;
        fail(cut ? range.shortError(received, length) : mapped);
      } else if (length !== undefined && received < length) {
        fail(range.shortError(received, length));
      } else if (pending !== undefined) {
        pending.then(succeed, fail);
      } else {
        succeed();
      }
    });
    if (attempt.signal.aborted) return onAbort();
    attempt.signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Ticks per stall timeout: a stall is noticed between 3/4 and all of `stallTimeoutMs`. */
const STALL_TICKS = 4;
