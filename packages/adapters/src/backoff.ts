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

/** Waits `ms`, rejecting with an AbortError as soon as `signal` aborts; no listener stays behind. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(new AbortError(signal.reason));
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(new AbortError(signal?.reason));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
