import { finished, Readable } from 'node:stream';
import { AbortError, isFerryError } from '@ferry/manifest';
import type { OpenedRange, ReadOptions, Source } from './source.js';

/** How a `CheckedBody` judges and reports the body it wraps. */
export interface CheckedBodyOptions extends OpenedRange {
  signal?: AbortSignal | undefined;
  /** Called with each chunk's length as it is delivered (metrics). */
  onBytes(count: number): void;
}

/**
 * A body that delivers exactly the bytes it promised or fails: an early end, a reset or an
 * overlong body become errors instead of a short part. Backpressure passes through (the
 * wrapped body is paused while this stream's buffer is full), so it adds no buffering of
 * its own beyond one highWaterMark. Aborting `signal` destroys both streams, which closes
 * the underlying socket or file descriptor.
 */
export class CheckedBody extends Readable {
  readonly #body: Readable;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort = () => this.destroy(new AbortError(this.#signal?.reason));
  readonly #stopWatching: () => void;
  #received = 0;

  constructor(options: CheckedBodyOptions) {
    super();
    const { body, length: expected } = options;
    this.#body = body;
    this.#signal = options.signal;
    body.on('data', (chunk: Buffer) => {
      if (this.destroyed) return;
      this.#received += chunk.length;
      if (expected !== undefined && this.#received > expected) {
        this.destroy(options.longError(expected));
        return;
      }
      options.onBytes(chunk.length);
      if (!this.push(chunk)) body.pause();
    });
    this.#stopWatching = finished(body, (error) => {
      if (this.destroyed) return;
      if (error) {
        const mapped = options.mapError(error);
        // A connection cut mid-body: say how far it got, which is what the user can act on.
        const cut =
          isFerryError(mapped) &&
          mapped.retryable &&
          expected !== undefined &&
          this.#received < expected;
        this.destroy(cut ? options.shortError(this.#received, expected) : mapped);
      } else if (expected !== undefined && this.#received < expected)
        this.destroy(options.shortError(this.#received, expected));
      else this.push(null);
    });
    if (this.#signal?.aborted) {
      queueMicrotask(this.#onAbort);
    } else {
      this.#signal?.addEventListener('abort', this.#onAbort, { once: true });
    }
  }

  override _read(): void {
    this.#body.resume();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#signal?.removeEventListener('abort', this.#onAbort);
    this.#stopWatching();
    this.#body.destroy();
    callback(error);
  }
}

/** `Source.read` for every source: its `openRange`, wrapped so the body is checked and counted. */
export async function checkedRead(
  source: Pick<Source, 'openRange' | 'metrics'>,
  key: string,
  options: ReadOptions,
): Promise<Readable> {
  const opened = await source.openRange(key, options);
  return new CheckedBody({
    ...opened,
    signal: options.signal,
    onBytes: (count) => {
      source.metrics.bytesRead += count;
    },
  });
}
