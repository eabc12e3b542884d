/**
 * A one-consumer async queue: producers push events from callbacks, the async generator
 * that drives a pull drains them in order. `close()` ends the stream, `fail()` makes the
 * consumer throw once it has drained what came before.
 */
export class EventChannel<T> {
  #items: T[] = [];
  #wake: (() => void) | undefined;
  #closed = false;
  #error: { error: unknown } | undefined;

  push(item: T): void {
    this.#items.push(item);
    this.#notify();
  }

  close(): void {
    this.#closed = true;
    this.#notify();
  }

  fail(error: unknown): void {
    this.#error ??= { error };
    this.#notify();
  }

  async *drain(): AsyncGenerator<T> {
    for (;;) {
      // Taken a batch at a time: shift() per item is quadratic in what waits (a dry run of
      // 100k files queues 100k events before the consumer runs).
      while (this.#items.length > 0) {
        const batch = this.#items;
        this.#items = [];
        for (const item of batch) yield item;
      }
      if (this.#error) throw this.#error.error;
      if (this.#closed) return;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}
