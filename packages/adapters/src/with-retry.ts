import { Readable } from 'node:stream';
import { AbortError, compareUtf8, FerryError } from '@ferry/manifest';
import { readRange } from './read-range.js';
import { type RetryOptions, RetryPolicy } from './retry-policy.js';
import type {
  Handoff,
  ObjectInfo,
  OpenedRange,
  ReadOptions,
  ReadTextOptions,
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

  /** A stream over `readRange`: resolves once the first response is open, resumes broken bodies. */
  read(key: string, options: ReadOptions = {}): Promise<Readable> {
    const { start = 0, end, ifMatch } = options;
    const local = new AbortController();
    const signal =
      options.signal === undefined ? local.signal : AbortSignal.any([options.signal, local.signal]);
    let wake: (() => void) | undefined;
    const out = new Readable({
      read() {
        wake?.();
      },
      destroy(error, callback) {
        // A consumer that stops reading stops the transfer under it.
        local.abort(new AbortError('read stopped'));
        wake?.();
        callback(error);
      },
    });
    return new Promise((resolve, reject) => {
      let opened = false;
      const open = () =>
        readRange(
          this.#source,
          key,
          {
            start,
            end,
            ifMatch,
            signal,
            onOpen: () => {
              opened = true;
              resolve(out);
            },
          },
          (chunk) => {
            if (out.push(chunk)) return undefined;
            return new Promise<void>((wakeUp) => {
              wake = () => {
                wake = undefined;
                wakeUp();
              };
            });
          },
          this.#policy,
        );
      open().then(
        () => {
          if (!opened) resolve(out);
          out.push(null);
        },
        (error: unknown) => {
          if (opened) out.destroy(error instanceof Error ? error : new Error(String(error)));
          else reject(error);
        },
      );
    });
  }

  openRange(key: string, options: ReadOptions = {}): Promise<OpenedRange> {
    const { signal, ...range } = options;
    return this.#policy.run(key, signal, (attemptSignal) =>
      this.#source.openRange(key, { ...range, signal: attemptSignal }),
    );
  }

  readText(key: string, options: ReadTextOptions = {}): Promise<string> {
    return this.#policy.run(key, options.signal, (signal) =>
      this.#source.readText(key, { signal, maxBytes: options.maxBytes }),
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

  delete(key: string, options: SignalOptions = {}): Promise<void> {
    return this.#policy.run(key, options.signal, (signal) => this.#source.delete(key, { signal }));
  }

  copy(from: string, to: string, options: SignalOptions = {}): Promise<void> {
    return this.#policy.run(to, options.signal, (signal) =>
      this.#source.copy(from, to, { signal }),
    );
  }

  /** Present when the wrapped source has it. */
  get handoff(): (() => Promise<Handoff>) | undefined {
    const source = this.#source;
    const handoff = source.handoff;
    if (handoff === undefined) return undefined;
    return () => this.#policy.run('', undefined, () => handoff.call(source));
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
