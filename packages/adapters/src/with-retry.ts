import type { Readable } from 'node:stream';
import { compareUtf8, FerryError } from '@ferry/manifest';
import { ResumableBody } from './resumable-body.js';
import { type RetryOptions, RetryPolicy } from './retry-policy.js';
import type {
  ObjectInfo,
  ReadOptions,
  SignalOptions,
  Source,
  SourceCapabilities,
  SourceMetrics,
  WriteOptions,
} from './source.js';

/**
 * Wraps any source so its operations retry retryable failures (FERRY_TRANSIENT,
 * FERRY_THROTTLED) with exponential backoff and full jitter, honouring Retry-After, with a
 * per-attempt timeout and a stall timeout on bodies. Reads resume from the last byte
 * received with the same `ifMatch` (pin reads with `ifMatch` so a resumed body cannot mix
 * two versions of an object). A listing that fails midway is listed again and continues
 * after the last key it yielded. Stream uploads cannot be replayed and get one attempt;
 * byte-array uploads and `writeText` are retried. After `retries` retries the last error
 * is thrown again as a FerryError of the same code with it as `cause`. Aborting a call's
 * signal (or `options.signal`) rejects promptly with an AbortError.
 */
export function withRetry(source: Source, options: RetryOptions = {}): Source {
  return new RetryingSource(source, new RetryPolicy(options));
}

class RetryingSource implements Source {
  readonly #source: Source;
  readonly #policy: RetryPolicy;

  constructor(source: Source, policy: RetryPolicy) {
    this.#source = source;
    this.#policy = policy;
  }

  get uri(): string {
    return this.#source.uri;
  }

  get capabilities(): SourceCapabilities {
    return this.#source.capabilities;
  }

  get metrics(): SourceMetrics {
    return this.#source.metrics;
  }

  async *list(prefix?: string, options: SignalOptions = {}): AsyncIterable<ObjectInfo> {
    let last: string | undefined;
    for (let failures = 0; ; ) {
      const attempt = this.#policy.attempt(prefix ?? '', options.signal);
      const iterator = this.#source
        .list(prefix, { signal: attempt.signal })
        [Symbol.asyncIterator]();
      try {
        for (;;) {
          const next = await iterator.next();
          attempt.clearTimer();
          if (next.done) return;
          const key = next.value.key;
          // After a retry the listing starts over: skip what was already yielded.
          if (last !== undefined && compareUtf8(key, last) <= 0) continue;
          last = key;
          yield next.value;
          failures = 0;
          attempt.startTimer(this.#policy.attemptTimeoutMs, () =>
            listTimeoutError(prefix, this.#policy.attemptTimeoutMs),
          );
        }
      } catch (error) {
        failures += 1;
        await this.#policy.backoff(
          prefix ?? '',
          this.#policy.classify(error, attempt),
          failures,
          options.signal,
        );
      } finally {
        attempt.dispose();
        await iterator.return?.();
      }
    }
  }

  stat(key: string, options: SignalOptions = {}): Promise<ObjectInfo> {
    return this.#policy.run(key, options.signal, (signal) => this.#source.stat(key, { signal }));
  }

  read(key: string, options: ReadOptions = {}): Promise<Readable> {
    const { signal, start = 0, end, ifMatch } = options;
    return ResumableBody.open(this.#policy, key, start, signal, (from, attemptSignal) => {
      const next: ReadOptions = { start: from, signal: attemptSignal };
      if (end !== undefined) next.end = end;
      if (ifMatch !== undefined) next.ifMatch = ifMatch;
      return this.#source.read(key, next);
    });
  }

  readText(key: string, options: SignalOptions = {}): Promise<string> {
    return this.#policy.run(key, options.signal, (signal) =>
      this.#source.readText(key, { signal }),
    );
  }

  writeText(key: string, text: string, options: SignalOptions = {}): Promise<void> {
    return this.#policy.run(key, options.signal, (signal) =>
      this.#source.writeText(key, text, { signal }),
    );
  }

  write(
    key: string,
    body: Readable | Uint8Array,
    options: WriteOptions,
  ): Promise<{ etag?: string }> {
    if (!(body instanceof Uint8Array)) {
      // A consumed stream cannot be sent again; the attempt timeout would cut a large upload.
      return this.#source.write(key, body, options);
    }
    return this.#policy.run(key, options.signal, (signal) =>
      this.#source.write(key, body, { size: options.size, signal }),
    );
  }

  close(): Promise<void> {
    return this.#source.close();
  }
}

function listTimeoutError(prefix: string | undefined, ms: number): FerryError {
  return new FerryError(
    'FERRY_TRANSIENT',
    `No listing page for "${prefix ?? ''}" within ${ms} ms`,
    {
      key: prefix,
      retryable: true,
      hint: 'The source is slow or unreachable; ferry retries, and a larger attemptTimeoutMs allows slower sources.',
    },
  );
}
