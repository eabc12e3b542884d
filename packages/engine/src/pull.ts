import { basename, join } from 'node:path';
import { openSource, parseSourceUri, type Source, withRetry } from '@ferry/adapters';
import {
  AbortError,
  DEFAULT_PART_SIZE,
  FerryError,
  normalizePath,
  throwIfAborted,
} from '@ferry/manifest';
import { cacheLayout, rootRelative } from './cache-layout.js';
import { EventChannel } from './event-channel.js';
import { type OpenedStore, openPullStore } from './open-store.js';
import { defaultConcurrency } from './part-pool.js';
import { normalizeFilter } from './path-filter.js';
import { commitPull } from './pull-commit.js';
import { planTarget } from './pull-plan.js';
import { resolveTarget } from './pull-resolve.js';

import type { PullRun, PullSettings } from './pull-run.js';
import { LazyPool } from './pull-run.js';
import { transferPlan } from './pull-transfer.js';
import type { PullEvent, PullOptions, PullResult } from './types.js';

/**
 * The folder under the cache root a source's files land in (`download_files_from`): the
 * prefix of an S3 or HTTP source (`a/b` for `s3://bucket/a/b`), a local folder's name.
 */
export function defaultSubdir(uri: string): string {
  const parsed = parseSourceUri(uri);
  if (parsed.kind !== 'local') return parsed.prefix;
  // A local folder has no bucket-relative prefix: its name stands in for one.
  return basename(parsed.path ?? '');
}

/**
 * Brings `<root>/<subdir>` to a version of the source, yielding progress events; the
 * generator's return value (also in the final `done` event) is the result. Breaking out
 * of the loop early aborts the pull.
 */
export async function* pullIter(options: PullOptions): AsyncGenerator<PullEvent, PullResult> {
  throwIfAborted(options.signal);
  const controller = new AbortController();
  const onAbort = () => controller.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const channel = new EventChannel<PullEvent>();
  let settled = false;
  const running = runPull(options, controller.signal, (e) => channel.push(e)).then(
    (result) => {
      settled = true;
      channel.close();
      return result;
    },
    (error: unknown) => {
      settled = true;
      channel.fail(error);
      return undefined;
    },
  );
  try {
    for await (const event of channel.drain()) yield event;
    const result = await running;
    if (!result) throw new Error('pull ended without a result');
    return result;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    if (!settled) {
      controller.abort(new AbortError('pull iteration stopped early'));
      await running;
    }
  }
}

/** Runs a pull to the end; `onEvent` sees every progress event. */
export async function pull(
  options: PullOptions & { onEvent?: (event: PullEvent) => void },
): Promise<PullResult> {
  const iterator = pullIter(options);
  for (;;) {
    const step = await iterator.next();
    if (step.done) return step.value;
    options.onEvent?.(step.value);
  }
}

function openPullSource(
  options: PullOptions,
  emit: (event: PullEvent) => void,
): { source: Source; uri: string } {
  if (typeof options.source !== 'string') {
    return { source: options.source, uri: options.source.uri };
  }
  // Metadata reads (ref, manifest, listing) report their retries too: an unreachable
  // endpoint shows up at once, not after the last attempt.
  const source = withRetry(openSource(options.source, options.sourceOptions), {
    onRetry: ({ key, attempt, error }) =>
      emit({ type: 'retry', path: key, attempt, code: error.code, message: error.message }),
  });
  return { source, uri: source.uri };
}

function checkPullOptions(options: PullOptions, uri: string): PullSettings {
  const partSize = options.partSize ?? DEFAULT_PART_SIZE;
  const concurrency = options.concurrency ?? defaultConcurrency();
  if (!Number.isSafeInteger(partSize) || partSize < 1) {
    throw new FerryError(
      'FERRY_USAGE',
      `partSize must be a positive whole number of bytes, not ${partSize}`,
    );
  }
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) {
    throw new FerryError(
      'FERRY_USAGE',
      `concurrency must be a positive whole number, not ${concurrency}`,
    );
  }
  const limit = options.bandwidthLimit;
  if (limit !== undefined && (!Number.isFinite(limit) || limit < 1024)) {
    throw new FerryError(
      'FERRY_USAGE',
      `bandwidthLimit must be at least 1024 bytes per second, not ${limit}`,
    );
  }
  const subdir = options.subdir ?? defaultSubdir(uri);
  return {
    subdir: subdir === '' ? '' : normalizePath(subdir),
    layout: cacheLayout(options.root),
    partSize,
    concurrency,
    dryRun: options.dryRun ?? false,
    filter: normalizeFilter(options),
  };
}

/**
 * A pull in phases: resolve the version asked for, plan what it needs against what the
 * cache holds, transfer, then commit the folder to the version. Only the transfer writes
 * files; only the commit changes which version the folder shows.
 */
async function runPull(
  options: PullOptions,
  signal: AbortSignal,
  emit: (event: PullEvent) => void,
): Promise<PullResult> {
  const started = performance.now();
  const { source, uri } = openPullSource(options, emit);
  const ownsSource = typeof options.source === 'string';
  let pool: LazyPool | undefined;
  const stopPool = () => pool?.started?.stop();
  signal.addEventListener('abort', stopPool, { once: true });
  let opened: OpenedStore | undefined;
  try {
    const settings = checkPullOptions(options, uri);
    pool = new LazyPool(options, settings.concurrency, emit);
    opened = await openPullStore(settings.layout, {
      wait: options.waitForLock ?? true,
      dryRun: settings.dryRun,
      signal,
      onWait: (holder) => emit({ type: 'waiting-for-lock', holder }),
    });
    const run: PullRun = {
      ...settings,
      options,
      source,
      uri,
      store: opened.store,
      readOnly: opened.readOnly,
      pool,
      signal,
      emit,
    };
    const target = await resolveTarget(run);
    const plan = await planTarget(run, target);
    throwIfAborted(signal);
    const moved =
      run.dryRun || run.readOnly
        ? { committed: [], removed: [] }
        : await transferPlan(run, target, plan);
    const versionId = await commitPull(run, target, plan, moved);
    const { committed, removed } = moved;
    const result: PullResult = {
      ...(versionId === undefined ? {} : { versionId }),
      dir: join(run.layout.root, run.subdir),
      files: plan.files.length + plan.vouched.files,
      bytes: plan.files.reduce((n, p) => n + p.entry.size, 0) + plan.vouched.bytes,
      fetchedBytes: committed.reduce((n, f) => n + f.fetchedBytes, 0),
      reusedBytes: committed.reduce((n, f) => n + f.reusedBytes, 0),
      fetchedFiles: committed.filter((f) => f.fetchedBytes > 0).length,
      skippedFiles: plan.files.filter((p) => p.action.kind === 'skip').length + plan.vouched.files,
      removed: removed.map((path) => rootRelative(run.subdir, path)),
      requests: source.metrics.requests + (pool.started?.requests ?? 0),
      workers: pool.started?.workers ?? 0,
      durationMs: Math.round(performance.now() - started),
      dryRun: run.dryRun,
    };
    emit({ type: 'done', result });
    return result;
  } finally {
    signal.removeEventListener('abort', stopPool);
    await pool?.started?.destroy();
    await opened?.close();
    if (ownsSource) await source.close();
  }
}
