// What the phases of one pull share (see pull.ts): its settings, store, source and the
// worker pool it starts only when something must move.
import type { Source } from '@ferry/adapters';
import type { PathFilter } from '@ferry/manifest';
import type { CacheIndex } from '@ferry/manifest/store';
import type { CacheLayout } from './cache-layout.js';
import { PartPool, type PullWork, pullThreads } from './part-pool.js';
import type { PullEvent, PullOptions } from './types.js';

/** A pull's options, checked before anything is opened. */
export interface PullSettings {
  /** The folder, root-relative (`''`: the cache root itself). */
  subdir: string;
  layout: CacheLayout;
  partSize: number;
  concurrency: number;
  dryRun: boolean;
  filter: PathFilter | undefined;
}

/** What every phase of one pull works with. */
export interface PullRun extends PullSettings {
  options: PullOptions;
  source: Source;
  uri: string;
  store: CacheIndex;
  /** The root cannot be written, or this is a dry run: the store is a private copy. */
  readOnly: boolean;
  /** The worker pool, started on first use (a warm start never starts it). */
  pool: LazyPool;
  signal: AbortSignal;
  emit: (event: PullEvent) => void;
}

/**
 * The pull's worker pool, created on first use. `work` (about what the pull will move, and
 * whether the calling thread will be busy) sizes it; the first call fixes it.
 */
export class LazyPool {
  #pool: PartPool | undefined;

  constructor(
    private readonly options: PullOptions,
    private readonly concurrency: number,
    private readonly emit: (event: PullEvent) => void,
  ) {}

  get started(): PartPool | undefined {
    return this.#pool;
  }

  get(work: PullWork): PartPool {
    this.#pool ??= new PartPool({
      // Workers a caller names leave its thread free; by default it shares the work.
      ...(this.options.workers === undefined
        ? pullThreads(work, this.concurrency)
        : { workers: this.options.workers }),
      concurrency: this.concurrency,
      ...(this.options.bandwidthLimit === undefined
        ? {}
        : { bytesPerSecond: this.options.bandwidthLimit }),
      onRetry: (notice) =>
        this.emit({
          type: 'retry',
          path: notice.key,
          ...(notice.part === undefined ? {} : { part: notice.part }),
          attempt: notice.attempt,
          code: notice.code,
          message: notice.message,
        }),
    });
    return this.#pool;
  }
}
