import type { SourceOptions } from '@ferry/adapters';
import { cacheLayout } from './cache-layout.js';
import { openStore } from './open-store.js';
import { pull } from './pull.js';
import { type PendingPull, TransferState } from './transfer-state.js';
import type { PullEvent, PullResult } from './types.js';

export interface ResumeOptions {
  /** The cache root whose interrupted pulls to finish. */
  root: string;
  /** @default 16 */
  concurrency?: number;
  /** @default min(4, cores) */
  workers?: number;
  /** Bytes per second each resumed pull may receive (see `PullOptions.bandwidthLimit`). */
  bandwidthLimit?: number;
  signal?: AbortSignal;
  onEvent?: (event: PullEvent) => void;
}

/**
 * Finishes every pull that started in `root` and never committed (killed, aborted,
 * failed), each at the version it was pulling, keeping the parts already on disk.
 * Resolves with one result per resumed pull; none when nothing was interrupted.
 */
export async function resume(options: ResumeOptions): Promise<PullResult[]> {
  const layout = cacheLayout(options.root);
  const store = await openStore(layout, {
    wait: true,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  let pending: Array<{ dir: string } & PendingPull>;
  try {
    pending = await TransferState.of(store).listPendingPulls();
  } finally {
    await store.close();
  }
  const results: PullResult[] = [];
  for (const p of pending) {
    results.push(
      await pull({
        source: p.source,
        ...(p.sourceOptions === undefined
          ? {}
          : { sourceOptions: p.sourceOptions as SourceOptions }),
        // The exact version that was interrupted, even if the ref has moved since.
        ...(p.versionId !== undefined
          ? { ref: p.versionId, ...(p.ref === undefined ? {} : { refName: p.ref }) }
          : p.ref !== undefined
            ? { ref: p.ref }
            : {}),
        root: options.root,
        subdir: p.dir,
        partSize: p.partSize,
        ...(p.filter?.include === undefined ? {} : { include: p.filter.include }),
        ...(p.filter?.only === undefined ? {} : { only: p.filter.only }),
        ...(p.filter?.exclude === undefined ? {} : { exclude: p.filter.exclude }),
        ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
        ...(options.workers === undefined ? {} : { workers: options.workers }),
        ...(options.bandwidthLimit === undefined ? {} : { bandwidthLimit: options.bandwidthLimit }),
        ...(options.signal === undefined ? {} : { signal: options.signal }),
        ...(options.onEvent === undefined ? {} : { onEvent: options.onEvent }),
      }),
    );
  }
  return results;
}
