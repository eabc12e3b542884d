import { AbortError, errorDetails, FerryError, isFerryError } from '@ferry/manifest';
import { AttemptSignal } from './attempt-signal.js';
import { backoffDelay, sleep } from './backoff.js';

/**
 * The default `baseDelayMs`: 200, or `FERRY_RETRY_BASE_MS` (whole milliseconds), read once.
 * Only tests set it: a spawned CLI takes no `sleep`, and its retries against an endpoint
 * that refuses every connection otherwise wait out seconds of real backoff.
 */
const DEFAULT_BASE_DELAY_MS = /^\d+$/.test(process.env.FERRY_RETRY_BASE_MS ?? '')
  ? Number(process.env.FERRY_RETRY_BASE_MS)
  : 200;

/** How `withRetry` retries. Every field is optional. */
export interface RetryOptions {
  /** Retries after the first attempt; the operation fails after `retries + 1` attempts. @default 5 */
  retries?: number;
  /**
   * Ceiling of the first backoff; it doubles per failure (full jitter below it).
   * @default 200, or `FERRY_RETRY_BASE_MS` when set (for tests)
   */
  baseDelayMs?: number;
  /** Largest backoff ceiling. A server's Retry-After can ask for longer and is honoured. @default 20000 */
  maxDelayMs?: number;
  /**
   * Time one attempt may take until it has a result: a stat, a listing page, a small
   * read, or a ranged read's response headers. @default 60000
   */
  attemptTimeoutMs?: number;
  /** A body that delivers no bytes for this long (while the reader wants more) is FERRY_TRANSIENT. @default 30000 */
  stallTimeoutMs?: number;
  /** Called before each retry's wait, for logs and progress events. */
  onRetry?: (info: RetryInfo) => void;
  /** Cancels every operation of the wrapped source, in addition to each call's own signal. */
  signal?: AbortSignal;
  /** Uniform [0, 1) numbers for the jitter; tests pass a fixed one. @default Math.random */
  random?: () => number;
  /**
   * Waits out a backoff of `ms` milliseconds (at least the server's Retry-After), rejecting
   * with an AbortError when `signal` aborts. Tests pass one that records `ms` and resolves
   * at once, so that honouring a Retry-After of seconds costs them no time.
   * @default a real timer (`setTimeout`)
   */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** What `onRetry` is told. */
export interface RetryInfo {
  key: string;
  /** The attempt about to start: 2 for the first retry. */
  attempt: number;
  /** The failure being retried. */
  error: FerryError;
  /** How long ferry waits before that attempt. */
  delayMs: number;
}

/** Resolved retry settings and the loop they drive; shared by every operation of one wrapper. */
export class RetryPolicy {
  readonly retries: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  readonly attemptTimeoutMs: number;
  readonly stallTimeoutMs: number;
  readonly signal: AbortSignal | undefined;
  readonly #onRetry: RetryOptions['onRetry'];
  readonly #random: () => number;
  readonly #sleep: (ms: number, signal: AbortSignal) => Promise<void>;

  constructor(options: RetryOptions = {}) {
    this.retries = options.retries ?? 5;
    this.baseDelayMs = options.baseDelayMs ?? DEFAULT_BASE_DELAY_MS;
    this.maxDelayMs = options.maxDelayMs ?? 20_000;
    this.attemptTimeoutMs = options.attemptTimeoutMs ?? 60_000;
    this.stallTimeoutMs = options.stallTimeoutMs ?? 30_000;
    this.signal = options.signal;
    this.#onRetry = options.onRetry;
    this.#random = options.random ?? Math.random;
    this.#sleep = options.sleep ?? sleep;
  }

  /** Runs `op` until it succeeds, fails for good, or the caller aborts. */
  async run<T>(
    key: string,
    callSignal: AbortSignal | undefined,
    op: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    for (let failures = 0; ; ) {
      const attempt = this.attempt(key, callSignal);
      try {
        return await op(attempt.signal);
      } catch (error) {
        failures += 1;
        await this.backoff(key, this.classify(error, attempt), failures, callSignal);
      } finally {
        attempt.dispose();
      }
    }
  }

  /** A fresh attempt signal whose timer is already running. */
  attempt(key: string, callSignal: AbortSignal | undefined): AttemptSignal {
    const attempt = new AttemptSignal([callSignal, this.signal]);
    attempt.startTimer(
      this.attemptTimeoutMs,
      () =>
        new FerryError(
          'FERRY_TRANSIENT',
          `No result for ${key} within ${this.attemptTimeoutMs} ms`,
          {
            key,
            retryable: true,
            hint: 'The source is slow or unreachable; ferry retries, and a larger attemptTimeoutMs allows slower sources.',
          },
        ),
    );
    return attempt;
  }

  /** What an attempt's failure means: the caller's abort, the attempt's timeout, or the error itself. */
  classify(error: unknown, attempt: AttemptSignal): unknown {
    const cancelled = attempt.cancelled;
    if (cancelled !== undefined) return new AbortError(cancelled.reason);
    return attempt.timedOut ?? error;
  }

  /**
   * Throws `error` when it is final (not retryable, out of retries, an abort); otherwise
   * reports the retry and waits the backoff, abortably.
   */
  async backoff(
    key: string,
    error: unknown,
    failures: number,
    callSignal: AbortSignal | undefined,
  ): Promise<void> {
    if (!isFerryError(error) || !error.retryable) throw error;
    if (failures > this.retries) {
      throw new FerryError(error.code, `${error.message} (gave up after ${failures} attempts)`, {
        ...errorDetails(error),
        cause: error,
      });
    }
    const delayMs = backoffDelay(
      failures,
      this.baseDelayMs,
      this.maxDelayMs,
      error.retryAfterSeconds,
      this.#random,
    );
    this.#onRetry?.({ key, attempt: failures + 1, error, delayMs });
    // Its own signal: the failed attempt's timer may still be running, and must not cut the wait.
    const wait = new AttemptSignal([callSignal, this.signal]);
    try {
      await this.#sleep(delayMs, wait.signal);
    } finally {
      wait.dispose();
    }
  }
}
