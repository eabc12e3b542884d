import type { FerryError } from '@ferry/manifest';

/**
 * The signal of one attempt: aborted when any parent signal aborts (the caller gave up)
 * or when its timer fires (the attempt took too long). `dispose()` removes every listener
 * it added to the parents, so long-lived signals do not collect them.
 */
export class AttemptSignal {
  readonly #controller = new AbortController();
  readonly #parents: AbortSignal[];
  readonly #onParentAbort = (event: Event) => {
    const parent = event.target as AbortSignal;
    this.#controller.abort(parent.reason);
  };
  #timer: NodeJS.Timeout | undefined;
  #timedOut: FerryError | undefined;

  constructor(parents: Array<AbortSignal | undefined>) {
    this.#parents = parents.filter((s): s is AbortSignal => s !== undefined);
    for (const parent of this.#parents) {
      if (parent.aborted) {
        this.#controller.abort(parent.reason);
        break;
      }
      parent.addEventListener('abort', this.#onParentAbort, { once: true });
    }
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** The parent that aborted, if one did: the caller's cancellation, never retried. */
  get cancelled(): AbortSignal | undefined {
    return this.#parents.find((s) => s.aborted);
  }

  /** The timeout error, once the timer fired. */
  get timedOut(): FerryError | undefined {
    return this.#timedOut;
  }

  /** (Re)starts the timer: after `ms` without `clearTimer()`, aborts with `error()`. */
  startTimer(ms: number, error: () => FerryError): void {
    this.clearTimer();
    if (!Number.isFinite(ms) || ms <= 0) return;
    this.#timer = setTimeout(() => {
      this.#timedOut = error();
      this.#controller.abort(this.#timedOut);
    }, ms);
  }

  clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  dispose(): void {
    this.clearTimer();
    for (const parent of this.#parents) parent.removeEventListener('abort', this.#onParentAbort);
  }
}
