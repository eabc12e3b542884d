import { constants, lstatSync } from 'node:fs';
import { copyFile, link, lstat, readdir, rm, statfs } from 'node:fs/promises';
import { basename, join, sep } from 'node:path';
import {
  openSource,
  parseSourceUri,
  type Source,
  type SourceOptions,
  withRetry,
} from '@ferry/adapters';
import {
  AbortError,
  createManifest,
  DEFAULT_ALGORITHM,
  DEFAULT_PART_SIZE,
  type Entry,
  FerryError,
  formatBytes,
  isFerryError,
  isVersionId,
  type Manifest,
  normalizePath,
  type PathFilter,
  throwIfAborted,
  type VersionId,
  versionIdOf,
} from '@ferry/manifest';
import type { ManifestStore, StatRecord, TreeState } from '@ferry/manifest/store';
import { type CacheLayout, cacheLayout, rootRelative } from './cache-layout.js';
import { checkFoldedPaths, foldsCase } from './case-fold.js';
import { contentOf } from './content-store.js';
import { EventChannel } from './event-channel.js';
import { type ActiveFiles, type CommittedFile, transferFiles } from './file-transfer.js';
import { type OpenedStore, openPullStore } from './open-store.js';
import { cutsPathFor } from './part-cuts.js';
import { defaultWorkers, PartPool } from './part-pool.js';
import { compileFilter, normalizeFilter } from './path-filter.js';
import { decidePlace, type Place } from './place.js';
import { type FilePlan, localBytes, PLAN_CHUNK, planPull, summarize } from './plan.js';
import { PROGRESS_INTERVAL_MS, ProgressMeter } from './progress-meter.js';
import { ensureRealDirs } from './real-dirs.js';
import {
  type RemoteEntry,
  type RemoteVersion,
  resolveLocal,
  resolveRemote,
} from './remote-version.js';
import { removeIfUnchanged } from './remove-folder.js';
import { statVouches } from './stat-vouches.js';
import type { PlanSummary, PullEvent, PullOptions, PullResult } from './types.js';
import { folderState, sweepVersionDirs, switchFolder } from './version-dirs.js';
import { walkFiles } from './walk-files.js';
import { workerSourceOptions } from './worker-source-options.js';

const DEFAULT_CONCURRENCY = 16;

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

/**
 * A healthy body is never silent this long; a TCP connection that lost its path takes
 * about as long to give up retransmitting the first few times. Parts in flight beside
 * others are hedged after 2 s anyway (see the part worker).
 */
const DEFAULT_STALL_TIMEOUT_MS = 10_000;
/** See `PullOptions.hedgeAfterMs`. */
const DEFAULT_HEDGE_AFTER_MS = 2_000;

/** A pull's options, checked before anything is opened. */
interface PullSettings {
  /** The folder, root-relative (`''`: the cache root itself). */
  subdir: string;
  layout: CacheLayout;
  partSize: number;
  concurrency: number;
  dryRun: boolean;
  filter: PathFilter | undefined;
}

function checkPullOptions(options: PullOptions, uri: string): PullSettings {
  const partSize = options.partSize ?? DEFAULT_PART_SIZE;
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
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

/** What every phase of one pull works with. */
interface PullRun extends PullSettings {
  options: PullOptions;
  source: Source;
  uri: string;
  store: ManifestStore;
  /** The root cannot be written, or this is a dry run: the store is a private copy. */
  readOnly: boolean;
  /** The worker pool, started on first use (a warm start never starts it). */
  pool: LazyPool;
  signal: AbortSignal;
  emit: (event: PullEvent) => void;
}

/**
 * The pull's worker pool, created on first use. `work` (about what the pull will move)
 * sizes it; the first call fixes it.
 */
class LazyPool {
  #pool: PartPool | undefined;

  constructor(
    private readonly options: PullOptions,
    private readonly concurrency: number,
    private readonly emit: (event: PullEvent) => void,
  ) {}

  get started(): PartPool | undefined {
    return this.#pool;
  }

  get(work = { bytes: Number.POSITIVE_INFINITY }): PartPool {
    this.#pool ??= new PartPool({
      workers: this.options.workers ?? defaultWorkers(work, this.concurrency),
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

/** The version a pull brings the folder to, and what the folder holds now. */
interface Target {
  /** The version as resolved (its ref named as the caller asked). */
  remote: RemoteVersion;
  /** The same, with only the entries the filter selects: what the folder will hold. */
  wanted: RemoteVersion;
  /** Resolved from the cache alone: the source was not asked, or could not be reached. */
  servedLocally: boolean;
  tree: TreeState | undefined;
  /** The manifest of the version the folder is at now. */
  previous: Manifest | undefined;
}

async function resolveTarget(run: PullRun): Promise<Target> {
  const { store, uri, options, filter, emit } = run;
  const tree = await store.getTree(run.subdir);
  const { version, servedLocally } = await resolveVersion(run);
  const remote =
    version.ref === undefined && options.refName !== undefined
      ? { ...version, ref: options.refName }
      : version;
  emit({
    type: 'resolved',
    source: uri,
    ...(remote.ref === undefined ? {} : { ref: remote.ref }),
    ...(remote.versionId === undefined ? {} : { versionId: remote.versionId }),
    published: remote.published,
    files: remote.entries.length,
    bytes: remote.entries.reduce((n, e) => n + e.size, 0),
  });
  if (remote.entries.length === 0 && options.allowEmpty !== true) {
    // A typo in a prefix lists nothing, and "pulled 0 files" would look like success.
    throw new FerryError('FERRY_NOT_FOUND', `${uri} holds no files`, {
      key: uri,
      hint: 'Check the bucket and prefix (ferry refs <source> lists published versions); allowEmpty (--allow-empty) accepts an empty source.',
    });
  }
  // The folder holds the files the filter selects; the manifest still describes them all.
  checkOnlyPresent(remote, filter, uri);
  const selects = compileFilter(filter);
  const wanted =
    filter === undefined
      ? remote
      : { ...remote, entries: remote.entries.filter((e) => selects(e.path)) };
  if (wanted.entries.length === 0 && remote.entries.length > 0 && options.allowEmpty !== true) {
    throw new FerryError(
      'FERRY_NOT_FOUND',
      `the filters select none of the ${remote.entries.length} files of ${uri}`,
      {
        key: uri,
        hint: 'Check --include / --exclude: a glob without "/" matches file names in any folder.',
      },
    );
  }
  // At the version it already has (a warm start), the remote manifest is the previous one.
  const previous =
    tree === undefined
      ? undefined
      : tree.versionId === remote.versionId && remote.manifest !== undefined
        ? remote.manifest
        : await store.getManifest(tree.versionId);
  return { remote, wanted, servedLocally, tree, previous };
}

/**
 * The version asked for: from the cache when a version id it holds is asked for or the
 * pull is offline, else from the source (the manifest itself from the cache when the
 * cache holds the version the ref names), else, when the source cannot be reached, from
 * the cache.
 */
async function resolveVersion(
  run: PullRun,
): Promise<{ version: RemoteVersion; servedLocally: boolean }> {
  const { store, uri, options, emit } = run;
  const local = (): Promise<RemoteVersion | undefined> =>
    resolveLocal(store, uri, options.ref, run.subdir);
  // A version id the cache holds is content-addressed: no need to ask the source.
  const held = isVersionId(options.ref) ? await local() : undefined;
  if (held !== undefined) return { version: held, servedLocally: false };
  if (options.offline === true) {
    const found = await local();
    if (found === undefined) throw offlineMissing(uri, options.ref);
    return { version: found, servedLocally: true };
  }
  try {
    const version = await resolveRemote(run.source, options.ref, run.signal, (id) =>
      store.getManifest(id),
    );
    return { version, servedLocally: false };
  } catch (error) {
    const found = options.fallback !== false && unreachable(error) ? await local() : undefined;
    if (found === undefined) throw error;
    emit({
      type: 'warning',
      message: `${uri} cannot be reached (${(error as Error).message}); serving the version this cache holds for ${options.ref ?? 'it'}, ${found.versionId}`,
    });
    return { version: found, servedLocally: true };
  }
}

/** Refuses an `only` filter naming a file the version does not have. */
function checkOnlyPresent(remote: RemoteVersion, filter: PathFilter | undefined, uri: string) {
  if (filter?.only === undefined) return;
  const paths = new Set(remote.entries.map((e) => e.path));
  const absent = filter.only.filter((p) => !paths.has(p));
  if (absent.length === 0) return;
  const names = new Set(absent.map((p) => p.slice(p.lastIndexOf('/') + 1)));
  const near = remote.entries
    .map((e) => e.path)
    .filter((p) => names.has(p.slice(p.lastIndexOf('/') + 1)));
  throw new FerryError('FERRY_NOT_FOUND', `${uri} has no file ${absent.join(', ')}`, {
    key: absent[0] as string,
    hint:
      near.length > 0
        ? `Did you mean ${near.slice(0, 3).join(', ')}? Paths are relative to the folder.`
        : 'Paths are relative to the folder and match exactly; --include takes globs.',
  });
}

/** What a pull will do. */
interface PullPlan {
  place: Place;
  /** One plan per file, except those in `vouched`. */
  files: FilePlan[];
  /**
   * Files found as ferry left them at a warm start, not planned one by one: a warm start
   * over a large version holds nothing per file.
   */
  vouched: { files: number; bytes: number };
  /** Files of the folder's version this one lacks, as left in place (`place.dir`-relative). */
  removals: string[];
  /** What of the version shown goes into the one built beside it (see `carryOver`). */
  carried: { removals: string[]; keep: string[] };
  summary: PlanSummary;
}

async function planTarget(run: PullRun, target: Target): Promise<PullPlan> {
  const { store, layout, uri, options, emit } = run;
  const { remote, wanted, tree, previous } = target;
  await checkNoOverlap(store, run.subdir, options.root, uri);
  const place = await choosePlace(store, layout.root, run.subdir, tree, previous, remote);
  const none = { removals: [], keep: [] };
  let plan: Omit<PullPlan, 'summary'>;
  if (atWarmStart(run, target, place) && (await allVouched(run, place.dir, wanted.entries))) {
    const bytes = wanted.entries.reduce((n, e) => n + e.size, 0);
    plan = {
      place,
      files: [],
      vouched: { files: wanted.entries.length, bytes },
      removals: [],
      carried: none,
    };
  } else {
    checkFoldedPaths(
      wanted.entries.map((e) => e.path),
      await foldsCase(layout.root),
      layout.root,
    );
    // A new version of a published prefix almost surely has work: workers boot (loading
    // their modules takes a few hundred ms) while the plan is made.
    if (!run.dryRun && remote.versionId !== undefined && tree?.versionId !== remote.versionId) {
      run.pool.get({ bytes: wanted.entries.reduce((n, e) => n + e.size, 0) });
    }
    const files = await planPull({
      previous,
      remote: wanted,
      sourceUri: uri,
      layout,
      subdir: place.dir,
      ...(place.base === undefined ? {} : { base: place.base }),
      store,
      verify: options.verify ?? 'stat',
      partSize: run.partSize,
      algorithm: DEFAULT_ALGORITHM,
      pool: () => run.pool.get(),
    });
    const dropped = droppedPaths(previous, tree?.filter, files);
    // Building a version beside the shown one: what it drops is simply not carried over.
    const carried =
      place.base === undefined
        ? none
        : await carryOver(store, layout.root, place.base, dropped, files);
    const removals = place.base === undefined ? dropped : carried.removals;
    plan = { place, files, vouched: { files: 0, bytes: 0 }, removals, carried };
  }
  const folderRemovals = plan.removals.map((path) => rootRelative(run.subdir, path));
  if (target.servedLocally) checkHeldWhole(plan.files, uri, options.ref);
  warnOfEdits(run, plan.files);
  if (run.dryRun) emitPlannedFiles(plan.files, folderRemovals, emit);
  else if (run.readOnly) checkNothingToWrite(plan.files, folderRemovals, place.relink, layout.root);
  const summary = summarize(plan.files, folderRemovals.length);
  summary.skip.files += plan.vouched.files;
  summary.skip.bytes += plan.vouched.bytes;
  emit({ type: 'plan', plan: summary });
  return { ...plan, summary };
}

/**
 * A pull of the version the folder is at, in place, with the same filter: when every file
 * is as ferry left it (see `allVouched`), there is nothing to plan.
 */
function atWarmStart(run: PullRun, target: Target, place: Place): boolean {
  const { tree, remote } = target;
  return (
    tree !== undefined &&
    remote.versionId !== undefined &&
    tree.versionId === remote.versionId &&
    !run.dryRun &&
    (run.options.verify ?? 'stat') !== 'hash' &&
    place.base === undefined &&
    !place.switching &&
    !place.relink &&
    JSON.stringify(tree.filter) === JSON.stringify(run.filter)
  );
}

/**
 * Whether every entry's file is at `dir` as ferry wrote it: its stat record vouches for it
 * (see `statVouches`) and names the entry's digest. Stops at the first that is not, and
 * keeps nothing per file: the records are read a chunk at a time, the next chunk while this
 * one's files are stat-ed.
 */
async function allVouched(run: PullRun, dir: string, entries: RemoteEntry[]): Promise<boolean> {
  const read = (from: number) => {
    const chunk = entries.slice(from, from + PLAN_CHUNK);
    const records = run.store.getStatsOf(chunk.map((e) => rootRelative(dir, e.path)));
    // Settled by the await below; handled now so a failure meanwhile is not unhandled.
    records.catch(() => {});
    return { chunk, records };
  };
  let next = entries.length > 0 ? read(0) : undefined;
  for (let from = 0; next !== undefined; from += PLAN_CHUNK) {
    const { chunk, records } = next;
    const found = await records;
    next = from + PLAN_CHUNK < entries.length ? read(from + PLAN_CHUNK) : undefined;
    for (let i = 0; i < chunk.length; i++) {
      const entry = chunk[i] as RemoteEntry;
      const record = found[i];
      if (record === undefined || record.digest !== entry.digest) return false;
      const st = lstatSync(join(run.layout.root, rootRelative(dir, entry.path)), {
        throwIfNoEntry: false,
      });
      if (st === undefined || !st.isFile() || !statVouches(record, st)) return false;
    }
  }
  return true;
}

/** Files the user changed since ferry wrote them, which the pull replaces: say so. */
function warnOfEdits(run: PullRun, plans: FilePlan[]): void {
  if (run.dryRun) return;
  const edits = plans
    .filter((p) => p.overwritesEdit === true)
    .map((p) => rootRelative(run.subdir, p.entry.path));
  if (edits.length === 0) return;
  run.emit({
    type: 'warning',
    message: `${edits.length === 1 ? `${edits[0]} was` : `${edits.length} files (${edits.slice(0, 3).join(', ')}${edits.length > 3 ? ', …' : ''}) were`} changed since ferry wrote ${edits.length === 1 ? 'it' : 'them'}; the version's ${edits.length === 1 ? 'copy replaces it' : 'copies replace them'}`,
  });
}

/** What the transfer phase did: files written, files removed (`place.dir`-relative). */
interface Moved {
  committed: CommittedFile[];
  removed: string[];
}

async function transferPlan(run: PullRun, target: Target, plan: PullPlan): Promise<Moved> {
  const { store, layout, uri, options, emit } = run;
  const { remote } = target;
  const { place, files, carried, summary } = plan;
  await removeOrphanPartials(layout.tmpDir, files);
  await checkFreeSpace(layout.root, files, summary.resumedBytes);
  const moves = files.some((p) => p.action.kind !== 'skip' || p.action.linkFrom);
  if (moves || carried.keep.length > 0) {
    await store.setPendingPull(run.subdir, {
      source: uri,
      ...(remote.ref === undefined ? {} : { ref: remote.ref }),
      ...(remote.versionId === undefined ? {} : { versionId: remote.versionId }),
      partSize: run.partSize,
      ...(options.sourceOptions === undefined
        ? {}
        : { sourceOptions: persistable(options.sourceOptions) }),
      ...(run.filter === undefined ? {} : { filter: run.filter }),
      ...(place.dir === run.subdir ? {} : { versionDir: place.dir }),
      startedAt: new Date().toISOString(),
    });
    await linkUnchanged(store, layout.root, files, carried.keep, place);
  }
  // A warm start ends here: nothing to move, so no worker thread is ever started.
  const committed = files.some((p) => p.action.kind !== 'skip')
    ? await transferWithProgress(run, remote, files, summary)
    : [];
  const removed: string[] = [];
  if (place.base === undefined) {
    for (const path of plan.removals) {
      if (await removeIfUnchanged(store, layout.root, rootRelative(place.dir, path))) {
        removed.push(path);
      }
    }
  } else {
    removed.push(...carried.removals);
  }
  for (const path of removed) emit({ type: 'removed', path: rootRelative(run.subdir, path) });
  return { committed, removed };
}

/** Moves the plan's files, with progress sampled from the pool. */
async function transferWithProgress(
  run: PullRun,
  remote: RemoteVersion,
  files: FilePlan[],
  summary: PlanSummary,
): Promise<CommittedFile[]> {
  const { options, uri } = run;
  const pool = run.pool.get(summary.fetch);
  const active: ActiveFiles = new Set();
  const meter = new ProgressMeter(
    summary.fetch.bytes,
    () => {
      const running = pool.inFlightByOwner();
      return {
        transferredBytes: pool.fetchedBytes(),
        active: [...active].map((f) => ({
          path: f.plan.entry.path,
          transferredBytes: f.doneBytes + (running.get(f.plan.relPath) ?? 0),
          totalBytes: f.plan.entry.size,
        })),
      };
    },
    run.emit,
  );
  meter.start(PROGRESS_INTERVAL_MS);
  try {
    const committed = await transferFiles(
      files,
      {
        pool,
        store: run.store,
        layout: run.layout,
        sourceUri: uri,
        sourceOptions: workerSourceOptions(run.source, options.sourceOptions ?? {}),
        algorithm: DEFAULT_ALGORITHM,
        concurrency: run.concurrency,
        checkEtag: process.env.FERRY_ETAG_CHECK !== '0',
        durable: options.durable ?? false,
        stallTimeoutMs: options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS,
        hedgeAfterMs: options.hedgeAfterMs ?? DEFAULT_HEDGE_AFTER_MS,
        ...contentOf(uri, remote.manifest, options.mirrors ?? [], run.emit),
        signal: run.signal,
        emit: run.emit,
      },
      active,
    );
    meter.finish();
    return committed;
  } finally {
    meter.stop();
  }
}

/**
 * Records the version the folder now holds (its manifest, the ref, the tree state) and
 * shows it: a new version folder is switched to by one rename. Returns the version id.
 */
async function commitPull(
  run: PullRun,
  target: Target,
  plan: PullPlan,
  moved: Moved,
): Promise<VersionId | undefined> {
  const { store, layout, uri } = run;
  const { remote, tree } = target;
  const { place, files } = plan;
  const manifest =
    remote.manifest ?? (run.dryRun ? undefined : buildManifest(files, moved.committed));
  if (manifest === undefined) return undefined;
  const versionId =
    remote.manifest !== undefined && remote.versionId !== undefined
      ? remote.versionId
      : versionIdOf(manifest);
  if (run.dryRun) return versionId;
  await recordFreshlyHashed(store, files);
  // A manifest is named by its content: one the store holds is there already.
  if (tree?.versionId !== versionId) await store.putManifest(manifest);
  if (remote.ref !== undefined) await store.setRef(uri, remote.ref, versionId);
  const shownBefore =
    place.switching && tree !== undefined && place.shown !== undefined
      ? { versionId: tree.versionId, versionDir: place.shown }
      : tree?.previous;
  await store.commitTree(
    run.subdir,
    {
      source: uri,
      versionId,
      ...(remote.ref === undefined ? {} : { ref: remote.ref }),
      ...(run.filter === undefined ? {} : { filter: run.filter }),
      ...(place.dir === run.subdir ? {} : { versionDir: place.dir }),
      ...(shownBefore === undefined || shownBefore.versionDir === place.dir
        ? {}
        : { previous: shownBefore }),
      updatedAt: new Date().toISOString(),
    },
    // Records of files removed in place; a version left behind keeps its own.
    place.base === undefined ? moved.removed.map((path) => rootRelative(place.dir, path)) : [],
  );
  if (place.dir !== run.subdir && !run.readOnly) {
    await switchFolder(layout, store, run.subdir, place.dir, place.shown);
    if (place.switching) await sweepVersionDirs(layout, store);
  }
  return versionId;
}

/** Source options worth recording for `resume`: plain settings, never credentials. */
function persistable(options: SourceOptions): Record<string, string | number | boolean> {
  const kept: Record<string, string | number | boolean> = {};
  for (const [key, value] of Object.entries(options)) {
    if (
      key !== 'credentials' &&
      (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean')
    ) {
      kept[key] = value;
    }
  }
  return kept;
}

/** Paths (in the folder) of files the tree's version held that this pull's plan lacks. */
function droppedPaths(
  previous: Manifest | undefined,
  previousFilter: PathFilter | undefined,
  plans: FilePlan[],
): string[] {
  if (!previous) return [];
  // A warm start plans every entry of the manifest it is at: nothing to drop, and no set of
  // every path to build for a large version.
  const entries = previous.entries;
  if (entries.length === plans.length && plans.every((p, i) => p.entry === entries[i])) return [];
  const wanted = new Set(plans.map((p) => p.entry.path));
  const held = compileFilter(previousFilter);
  return previous.entries.filter((e) => held(e.path) && !wanted.has(e.path)).map((e) => e.path);
}

/**
 * Gathers what `decidePlace` needs: what is at the folder, and the version folder an
 * interrupted pull of it was building.
 */
async function choosePlace(
  store: ManifestStore,
  root: string,
  subdir: string,
  tree: TreeState | undefined,
  previous: Manifest | undefined,
  remote: RemoteVersion,
): Promise<Place> {
  if (subdir === '') return decidePlace({ subdir, tree, previous, remote, folder: 'folder' });
  const pending = (await store.listPendingPulls()).find((p) => p.dir === subdir);
  return decidePlace({
    subdir,
    tree,
    previous,
    remote,
    folder: await folderState(root, subdir, tree?.versionDir),
    ...(pending === undefined ? {} : { pending }),
  });
}

/**
 * What of the version shown goes into the one built beside it, besides the files of the
 * plan: files someone put in the folder or changed since ferry wrote them (`keep`: their
 * bytes are not ferry's to drop), and files of the old version the new one lacks, as ferry
 * left them (`removals`: left behind). Links in the folder are not followed nor carried.
 */
async function carryOver(
  store: ManifestStore,
  root: string,
  base: string,
  dropped: string[],
  plans: FilePlan[],
): Promise<{ removals: string[]; keep: string[] }> {
  const planned = new Set(plans.map((p) => p.entry.path));
  const wasVersion = new Set(dropped);
  const records = await store.getStats(`${base}/`);
  const removals: string[] = [];
  const keep: string[] = [];
  const gone = await lstat(join(root, base)).then(
    (st) => !st.isDirectory(),
    () => true,
  );
  for (const file of gone ? [] : await walkFiles(join(root, base), { links: 'skip' })) {
    if (planned.has(file.path)) continue;
    const record = records.get(rootRelative(base, file.path));
    if (wasVersion.has(file.path) && record !== undefined && statVouches(record, file)) {
      removals.push(file.path);
    } else {
      keep.push(file.path);
    }
  }
  // A file of the old version already gone from the folder is gone from the new one too.
  for (const path of dropped) {
    if (!removals.includes(path) && !keep.includes(path)) removals.push(path);
  }
  return { removals, keep };
}

/**
 * Hard-links the files a new version shares with the one shown (and the files carried
 * over) into its folder: no byte copied, and their stat records hold for the new path too
 * (a link is the same inode). Where the file system has no hard links, a shared file is
 * copied instead, and verified on the way like any copy.
 */
async function linkUnchanged(
  store: ManifestStore,
  root: string,
  plans: FilePlan[],
  keep: string[],
  place: Place,
): Promise<void> {
  const dirs = new Set<string>();
  const records: Array<[string, StatRecord]> = [];
  const linkInto = async (from: string, relPath: string): Promise<boolean> => {
    await ensureRealDirs(root, parentDir(relPath), dirs);
    const to = join(root, relPath);
    try {
      await link(from, to);
      return true;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') {
        const [a, b] = await Promise.all([lstat(from), lstat(to)]);
        return a.ino === b.ino && a.dev === b.dev;
      }
      if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EMLINK' || code === 'EXDEV') {
        return false;
      }
      throw error;
    }
  };
  for (const p of plans) {
    if (p.action.kind !== 'skip' || p.action.linkFrom === undefined) continue;
    if (await linkInto(p.action.linkFrom, p.relPath)) {
      records.push([p.relPath, p.action.record]);
      p.action.fresh = false;
    } else {
      const fromRelPath = relativeToRoot(root, p.action.linkFrom);
      p.action = {
        kind: 'copy',
        fromPath: p.action.linkFrom,
        fromRelPath,
        record: p.action.record,
      };
    }
  }
  if (place.base !== undefined) {
    for (const path of keep) {
      const from = join(root, rootRelative(place.base, path));
      if (!(await linkInto(from, rootRelative(place.dir, path)))) {
        await copyFile(from, join(root, rootRelative(place.dir, path)), constants.COPYFILE_FICLONE);
      }
    }
  }
  // Written now, not at the commit: a resume finds them vouched for, not to be hashed.
  if (records.length > 0) await store.putStats(records);
}

function parentDir(relPath: string): string {
  const cut = relPath.lastIndexOf('/');
  return cut === -1 ? '' : relPath.slice(0, cut);
}

function relativeToRoot(root: string, path: string): string {
  return path
    .slice(root.length + 1)
    .split(sep)
    .join('/');
}

/** Failures that mean the source is out of reach (after retries), not that it said no. */
function unreachable(error: unknown): boolean {
  return isFerryError(error, 'FERRY_TRANSIENT') || isFerryError(error, 'FERRY_THROTTLED');
}

function offlineMissing(uri: string, ref: string | undefined): FerryError {
  return new FerryError(
    'FERRY_NOT_FOUND',
    `offline: this cache holds no version of ${uri}${ref === undefined ? '' : ` for ${ref}`}`,
    {
      key: ref,
      hint: 'Pull it once with the network, or name a version id the cache holds (ferry status).',
    },
  );
}

/** A version served without the source must be whole in the cache: nothing can be fetched. */
function checkHeldWhole(plans: FilePlan[], uri: string, ref: string | undefined): void {
  const missing = plans
    .filter((p) => p.action.kind !== 'skip' && p.action.kind !== 'copy')
    .map((p) => p.entry.path);
  if (missing.length === 0) return;
  throw new FerryError(
    'FERRY_NOT_FOUND',
    `offline: ${missing.length} ${missing.length === 1 ? 'file' : 'files'} of ${uri}${ref === undefined ? '' : `@${ref}`} missing or changed in the cache (${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', …' : ''})`,
    { key: missing[0], hint: 'Pull again with the network to repair them.' },
  );
}

/** On a root that cannot be written, a pull may only confirm what is there. */
function checkNothingToWrite(
  plans: FilePlan[],
  removals: string[],
  relink: boolean,
  root: string,
): void {
  const changes = plans.filter((p) => p.action.kind !== 'skip').length + removals.length;
  const links = plans.some((p) => p.action.kind === 'skip' && p.action.linkFrom !== undefined);
  if (changes === 0 && !links && !relink) return;
  throw new FerryError(
    'FERRY_READ_ONLY',
    changes === 0
      ? `${root} is read-only, and this pull would have to switch a folder to the version it asks for`
      : `${root} is read-only, and this pull would change ${changes} ${changes === 1 ? 'file' : 'files'} there`,
    {
      key: root,
      hint: 'Pull into a writable root (--to; an emptyDir or volume in a container), or bake the version into the image.',
    },
  );
}

/** A dry run's per-file account. */
function emitPlannedFiles(
  plans: FilePlan[],
  removals: string[],
  emit: (event: PullEvent) => void,
): void {
  for (const p of plans) {
    const local = localBytes(p);
    const action =
      p.action.kind === 'copy'
        ? 'reuse'
        : p.action.kind === 'skip'
          ? 'skip'
          : p.action.resume !== undefined
            ? 'resume'
            : 'fetch';
    const bytes =
      action === 'skip'
        ? 0
        : action === 'reuse'
          ? p.entry.size
          : p.entry.size - local.reused - local.resumed;
    emit({ type: 'planned-file', path: p.entry.path, action, bytes });
  }
  for (const relPath of removals)
    emit({ type: 'planned-file', path: relPath, action: 'remove', bytes: 0 });
}

/**
 * Room kept free beyond what a pull writes (the store, directories, other writers): 64 MiB,
 * or 2 % of a disk smaller than 3.2 GiB.
 */
const SPACE_HEADROOM = 64 * 2 ** 20;

/**
 * Fails before any transfer when the root's file system cannot hold what the pull writes:
 * every file fetched or copied is written whole next to its previous version (which stays
 * until the new one is renamed over it), less what interrupted transfers already wrote.
 */
async function checkFreeSpace(root: string, plans: FilePlan[], resumed: number): Promise<void> {
  const writes = plans.reduce((n, p) => (p.action.kind === 'skip' ? n : n + p.entry.size), 0);
  const fs = await statfs(root).catch(() => undefined);
  if (fs === undefined) return;
  const spare = Math.min(SPACE_HEADROOM, Math.floor(fs.blocks * fs.bsize * 0.02));
  const need = writes - resumed + spare;
  const free = fs.bavail * fs.bsize;
  if (free >= need) return;
  throw new FerryError(
    'FERRY_NO_SPACE',
    `${root} has ${formatBytes(free)} free; this pull needs ${formatBytes(need)} (${formatBytes(writes - resumed)} of files to write and ${formatBytes(spare)} to spare)`,
    {
      key: root,
      hint: 'Free space on that disk (`ferry gc` removes what no version needs), or pull into a root on a larger one (--to).',
    },
  );
}

/**
 * Refuses a folder that contains, or lies inside, another folder of the same root pulled
 * from elsewhere: each tree removes what its versions drop and replaces what they change,
 * so two nested trees would overwrite and delete each other's files.
 */
async function checkNoOverlap(
  store: ManifestStore,
  subdir: string,
  root: string,
  uri: string,
): Promise<void> {
  const inside = (outer: string, inner: string) =>
    outer === '' || inner === outer || inner.startsWith(`${outer}/`);
  const others = [...(await store.listTrees()), ...(await store.listPendingPulls())];
  for (const other of others) {
    if (other.dir === subdir) continue;
    if (!inside(other.dir, subdir) && !inside(subdir, other.dir)) continue;
    const folder = (dir: string) => (dir === '' ? root : join(root, dir));
    throw new FerryError(
      'FERRY_OVERLAP',
      `${folder(subdir)} (for ${uri}) overlaps ${folder(other.dir)}, pulled from ${other.source}`,
      {
        key: subdir,
        hint: 'Pull into another cache root (--to), or remove the other folder from this cache first.',
      },
    );
  }
}

/** Partial files no planned resume will read: left by transfers that cannot resume. */
async function removeOrphanPartials(tmpDir: string, plans: FilePlan[]): Promise<void> {
  const keep = new Set(
    plans.flatMap((p) =>
      p.action.kind === 'fetch' && p.action.resume
        ? [p.action.resume.tmpPath, cutsPathFor(p.action.resume.tmpPath)]
        : [],
    ),
  );
  const names = await readdir(tmpDir).catch(() => [] as string[]);
  await Promise.all(
    names
      .map((name) => join(tmpDir, name))
      .filter((path) => !keep.has(path))
      .map((path) => rm(path, { force: true })),
  );
}

/** Files found right that the stat index did not vouch for yet go into it now. */
async function recordFreshlyHashed(store: ManifestStore, plans: FilePlan[]): Promise<void> {
  const records = plans.flatMap(
    (p): Array<[string, StatRecord]> =>
      p.action.kind === 'skip' && p.action.fresh ? [[p.relPath, p.action.record]] : [],
  );
  if (records.length > 0) await store.putStats(records);
}

/** The manifest of a plain listing, from the digests computed while fetching or checking. */
function buildManifest(plans: FilePlan[], committed: CommittedFile[]): Manifest {
  const fetched = new Map(committed.map((c) => [c.plan.relPath, c]));
  const entries: Entry[] = plans.map((p) => {
    const known = p.action.kind === 'skip' ? p.action.known : fetched.get(p.relPath);
    if (!known) throw new Error(`no digest for ${p.relPath} after the transfer`);
    return {
      path: p.entry.path,
      size: p.entry.size,
      digest: known.digest,
      ...(known.parts ? { parts: known.parts } : {}),
      ...(p.entry.etag === undefined ? {} : { etag: p.entry.etag }),
      ...(p.entry.mtime === undefined ? {} : { mtime: p.entry.mtime }),
    };
  });
  return createManifest(entries);
}
