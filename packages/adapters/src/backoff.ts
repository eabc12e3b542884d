import { AbortError } from '@ferry/manifest';

/**
 * Full-jitter exponential backoff: a uniform delay in [0, min(max, base × 2^(n-1))), but
 * never less than what the server asked for in Retry-After.
 */
export function backoffDelay(
  failure: number,
  baseDelayMs: number,
  maxDelayMs: number,
  retryAfterSeconds: number | undefined,
  random: () => number,
): number {
  const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** (failure - 1));
  const jittered = Math.floor(random() * ceiling);
  return Math.max(jittered, (retryAfterSeconds ?? 0) * 1000);
}

/** Waits `ms`, rejecting with an AbortError as soon as any signal aborts; no listener stays behind. */
export function sleep(ms: number, signals: Array<AbortSignal | undefined>): Promise<void> {
  const live = signals.filter((s): s is AbortSignal => s !== undefined);
  const aborted = live.find((s) => s.aborted);
  if (aborted) return Promise.reject(new AbortError(aborted.reason));
  return new Promise((resolve, reject) => {
    const onAbort = (event: Event) => {
      done();
      reject(new AbortError((event.target as AbortSignal).reason));
    };
    const timer = setTimeout(() => {
      done();
      resolve();
    }, ms);
    const done = () => {
      clearTimeout(timer);
      for (const s of live) s.removeEventListener('abort', onAbort);
    };
    for (const s of live) s.addEventListener('abort', onAbort, { once: true });
  });
}
