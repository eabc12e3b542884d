import type { ObjectInfo } from '@ferry/adapters';
import type { Dataset } from './dataset.js';

/**
 * The files a local origin holds per prefix, recorded when the runner publishes or copies
 * them there (no listing needed; a published prefix lists part objects, not its files).
 */
export class PublishedObjects {
  readonly #byPrefix = new Map<string, ObjectInfo[]>();

  record(dataset: Dataset, prefix: string): void {
    this.#byPrefix.set(
      prefix,
      [...dataset.files].map(([key, facts]) => ({ key, size: facts.size })),
    );
  }

  get(prefix: string): ObjectInfo[] {
    const objects = this.#byPrefix.get(prefix);
    if (objects === undefined) throw new Error(`nothing published at ${prefix}`);
    return objects;
  }
}
