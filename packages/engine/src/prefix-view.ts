import type { Readable } from 'node:stream';
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
} from '@ferry/adapters';
import { childUri } from './content-store.js';

/**
 * A folder of a source seen as a source of its own: keys are relative to `<rel>/`, requests
 * go through the parent's connections and credentials. A store and every prefix published
 * to it are read this way, through one client, however many prefixes the store has.
 * Closing the view leaves the parent open.
 */
export function prefixView(parent: Source, rel: string): Source {
  return rel === '' ? parent : new PrefixView(parent, rel);
}

class PrefixView implements Source {
  readonly #parent: Source;
  readonly #root: string;
  readonly uri: string;

  constructor(parent: Source, rel: string) {
    this.#parent = parent;
    this.#root = `${rel}/`;
    this.uri = childUri(parent.uri, rel);
  }

  get capabilities(): SourceCapabilities {
    return this.#parent.capabilities;
  }

  get metrics(): SourceMetrics {
    return this.#parent.metrics;
  }

  async *list(prefix = '', options?: SignalOptions): AsyncIterable<ObjectInfo> {
    for await (const object of this.#parent.list(this.#root + prefix, options)) {
      yield { ...object, key: object.key.slice(this.#root.length) };
    }
  }

  async stat(key: string, options?: SignalOptions): Promise<ObjectInfo> {
    const info = await this.#parent.stat(this.#root + key, options);
    return { ...info, key };
  }

  read(key: string, options?: ReadOptions): Promise<Readable> {
    return this.#parent.read(this.#root + key, options);
  }

  openRange(key: string, options?: ReadOptions): Promise<OpenedRange> {
    return this.#parent.openRange(this.#root + key, options);
  }

  readText(key: string, options?: ReadTextOptions): Promise<string> {
    return this.#parent.readText(this.#root + key, options);
  }

  writeText(key: string, text: string, options?: SignalOptions): Promise<void> {
    return this.#parent.writeText(this.#root + key, text, options);
  }

  write(
    key: string,
    body: Readable | Uint8Array,
    options: WriteOptions,
  ): Promise<{ etag?: string }> {
    return this.#parent.write(this.#root + key, body, options);
  }

  delete(key: string, options?: SignalOptions): Promise<void> {
    return this.#parent.delete(this.#root + key, options);
  }

  copy(from: string, to: string, options?: SignalOptions): Promise<void> {
    return this.#parent.copy(this.#root + from, this.#root + to, options);
  }

  get handoff(): (() => Promise<Handoff>) | undefined {
    const parent = this.#parent;
    const handoff = parent.handoff;
    return handoff === undefined ? undefined : () => handoff.call(parent);
  }

  async close(): Promise<void> {}
}
