import { constants } from 'node:fs';
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
  versionIdOf,
} from '@ferry/manifest';
import type { ManifestStore, StatRecord, TreeState } from '@ferry/manifest/store';
import { cacheLayout, rootRelative } from './cache-layout.js';
import { checkFoldedPaths, foldsCase } from './case-fold.js';
import { contentOf } from './content-store.js';
import { EventChannel } from './event-channel.js';
import {
  type ActiveFiles,
  type CommittedFile,
  type TransferContext,
  transferFiles,
} from './file-transfer.js';
import { type OpenedStore, openPullStore } from './open-store.js';
import { cutsPathFor } from './part-cuts.js';
import { defaultWorkers, PartPool } from './part-pool.js';
import { compileFilter, normalizeFilter } from './path-filter.js';
import { decidePlace, type Place } from './place.js';
import { type FilePlan, localBytes, planPull, summarize } from './plan.js';
import { PROGRESS_INTERVAL_MS, ProgressMeter } from './progress-meter.js';
import { ensureRealDirs } from './real-dirs.js';
import { type RemoteVersion, resolveLocal, resolveRemote } from './remote-version.js';
import { removeIfUnchanged } from './remove-folder.js';
import { statVouches } from './stat-vouches.js';
import type { PullEvent, PullOptions, PullResult } from './types.js';
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

async function runPull(
  options: PullOptions,
  signal: AbortSignal,
  emit: (event: PullEvent) => void,
): Promise<PullResult> {
  const started = performance.now();
  const { source, uri } = openPullSource(options, emit);
  const ownsSource = typeof options.source === 'string';
  const subdir = options.subdir === undefined ? defaultSubdir(uri) : options.subdir;
  const normalizedSubdir = subdir === '' ? '' : normalizePath(subdir);
  const layout = cacheLayout(options.root);
  const partSize = options.partSize ?? DEFAULT_PART_SIZE;
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  const algorithm = DEFAULT_ALGORITHM;
  const dryRun = options.dryRun ?? false;
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

  let pool: PartPool | undefined;
  const stopPool = () => pool?.stop();
  signal.addEventListener('abort', stopPool, { once: true });
  /** `work`: about what the pull will move, to size the pool (the first call fixes it). */
  const getPool = (work = { bytes: Number.POSITIVE_INFINITY }) => {
    pool ??= new PartPool({
      workers: options.workers ?? defaultWorkers(work, concurrency),
      concurrency,
      ...(options.bandwidthLimit === undefined ? {} : { bytesPerSecond: options.bandwidthLimit }),
      onRetry: (notice) =>
        emit({
          type: 'retry',
          path: notice.key,
          ...(notice.part === undefined ? {} : { part: notice.part }),
          attempt: notice.attempt,
          code: notice.code,
          message: notice.message,
        }),
    });
    return pool;
  };
  let store: ManifestStore | undefined;
  let opened: OpenedStore | undefined;
  let meter: ProgressMeter | undefined;
  try {
    opened = await openPullStore(layout, {
      wait: options.waitForLock ?? true,
      dryRun,
      signal,
      onWait: (holder) => emit({ type: 'waiting-for-lock', holder }),
    });
    store = opened.store;
    const local = (): Promise<RemoteVersion | undefined> =>
      resolveLocal(store as ManifestStore, uri, options.ref, normalizedSubdir);
    let servedLocally = false;
    let resolved: RemoteVersion;
    // A version id the cache holds is content-addressed: no need to ask the source.
    const held = isVersionId(options.ref) ? await local() : undefined;
    if (held !== undefined) {
      resolved = held;
    } else if (options.offline === true) {
      const found = await local();
      if (found === undefined) throw offlineMissing(uri, options.ref);
      resolved = found;
      servedLocally = true;
    } else {
      try {
        resolved = await resolveRemote(source, options.ref, signal);
      } catch (error) {
        const found = options.fallback !== false && unreachable(error) ? await local() : undefined;
        if (found === undefined) throw error;
        resolved = found;
        servedLocally = true;
        emit({
          type: 'warning',
          message: `${uri} cannot be reached (${(error as Error).message}); serving the version this cache holds for ${options.ref ?? 'it'}, ${found.versionId}`,
        });
      }
    }
    const remote =
      resolved.ref === undefined && options.refName !== undefined
        ? { ...resolved, ref: options.refName }
        : resolved;
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
    const filter = normalizeFilter(options);
    const paths =
      filter?.only === undefined ? undefined : new Set(remote.entries.map((e) => e.path));
    const absent = filter?.only?.filter((p) => !paths?.has(p)) ?? [];
    if (absent.length > 0) {
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
    checkFoldedPaths(
      wanted.entries.map((e) => e.path),
      await foldsCase(layout.root),
      layout.root,
    );
    await checkNoOverlap(store, normalizedSubdir, options.root, uri);
    const tree = await store.getTree(normalizedSubdir);
    // At the version it already has (a warm start), the remote manifest is the previous one.
    const previous =
      tree === undefined
        ? undefined
        : tree.versionId === remote.versionId && remote.manifest !== undefined
          ? remote.manifest
          : await store.getManifest(tree.versionId);
    const place = await choosePlace(store, layout.root, normalizedSubdir, tree, previous, remote);
    // A new version of a published prefix almost surely has work: workers boot (loading
    // their modules takes a few hundred ms) while the plan is made. A warm start, at the
    // version it already has, never starts them.
    if (!dryRun && remote.versionId !== undefined && remote.entries.length > 0) {
      if (tree?.versionId !== remote.versionId) {
        getPool({ bytes: wanted.entries.reduce((n, e) => n + e.size, 0) });
      }
    }
    const plans = await planPull({
      previous,
      remote: wanted,
      sourceUri: uri,
      layout,
      subdir: place.dir,
      ...(place.base === undefined ? {} : { base: place.base }),
      store,
      verify: options.verify ?? 'stat',
      partSize,
      algorithm,
      pool: getPool,
    });
    const dropped = droppedPaths(previous, tree?.filter, plans);
    // Building a version beside the shown one: what it drops is simply not carried over.
    const carried =
      place.base === undefined
        ? { removals: [], keep: [] }
        : await carryOver(store, layout.root, place.base, dropped, plans);
    const removals = (place.base === undefined ? dropped : carried.removals).map((path) =>
      rootRelative(normalizedSubdir, path),
    );
    if (servedLocally) checkHeldWhole(plans, uri, options.ref);
    const edits = plans
      .filter((p) => p.overwritesEdit === true)
      .map((p) => rootRelative(normalizedSubdir, p.entry.path));
    if (edits.length > 0 && !dryRun) {
      emit({
        type: 'warning',
        message: `${edits.length === 1 ? `${edits[0]} was` : `${edits.length} files (${edits.slice(0, 3).join(', ')}${edits.length > 3 ? ', …' : ''}) were`} changed since ferry wrote ${edits.length === 1 ? 'it' : 'them'}; the version's ${edits.length === 1 ? 'copy replaces it' : 'copies replace them'}`,
      });
    }
    if (dryRun) emitPlannedFiles(plans, removals, emit);
    else if (opened.readOnly) {
      checkNothingToWrite(plans, removals, place.relink, layout.root);
    }
    const summary = summarize(plans, removals.length);
    emit({ type: 'plan', plan: summary });
    throwIfAborted(signal);

    let committed: CommittedFile[] = [];
    const removed: string[] = [];
    if (!dryRun && !opened.readOnly) {
      await removeOrphanPartials(layout.tmpDir, plans);
      await checkFreeSpace(layout.root, plans, summary.resumedBytes);
      const moves = plans.some((p) => p.action.kind !== 'skip' || p.action.linkFrom);
      if (moves || carried.keep.length > 0) {
        await store.setPendingPull(normalizedSubdir, {
          source: uri,
          ...(remote.ref === undefined ? {} : { ref: remote.ref }),
          ...(remote.versionId === undefined ? {} : { versionId: remote.versionId }),
          partSize,
          ...(options.sourceOptions === undefined
            ? {}
            : { sourceOptions: persistable(options.sourceOptions) }),
          ...(filter === undefined ? {} : { filter }),
          ...(place.dir === normalizedSubdir ? {} : { versionDir: place.dir }),
          startedAt: new Date().toISOString(),
        });
        await linkUnchanged(store, layout.root, plans, carried.keep, place);
      }
      // A warm start ends here: nothing to move, so no worker thread is ever started.
      if (plans.some((p) => p.action.kind !== 'skip')) {
        const active: ActiveFiles = new Set();
        meter = new ProgressMeter(
          summary.fetch.bytes,
          () => {
            const running = pool?.inFlightByOwner() ?? new Map<string, number>();
            return {
              transferredBytes: pool?.fetchedBytes() ?? 0,
              active: [...active].map((f) => ({
                path: f.plan.entry.path,
                transferredBytes: f.doneBytes + (running.get(f.plan.relPath) ?? 0),
                totalBytes: f.plan.entry.size,
              })),
            };
          },
          emit,
        );
        committed = await transferWithPool(plans, getPool(summary.fetch), meter, active, {
          store,
          layout,
          sourceUri: uri,
          sourceOptions: workerSourceOptions(source, options.sourceOptions ?? {}),
          algorithm,
          concurrency,
          checkEtag: process.env.FERRY_ETAG_CHECK !== '0',
          durable: options.durable ?? false,
          stallTimeoutMs: options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS,
          hedgeAfterMs: options.hedgeAfterMs ?? DEFAULT_HEDGE_AFTER_MS,
          ...contentOf(uri, remote.manifest, options.mirrors ?? [], emit),
          signal,
          emit,
        });
      }
      if (place.base === undefined) {
        for (const path of dropped) {
          if (await removeIfUnchanged(store, layout.root, rootRelative(place.dir, path))) {
            removed.push(path);
          }
        }
      } else {
        removed.push(...carried.removals);
      }
      for (const path of removed) {
        emit({ type: 'removed', path: rootRelative(normalizedSubdir, path) });
      }
    }

    const manifest = remote.manifest ?? (dryRun ? undefined : buildManifest(plans, committed));
    const versionId =
      remote.manifest !== undefined && remote.versionId !== undefined
        ? remote.versionId
        : manifest === undefined
          ? undefined
          : versionIdOf(manifest);
    if (manifest !== undefined && versionId !== undefined && !dryRun) {
      await recordFreshlyHashed(store, plans);
      // A manifest is named by its content: one the store holds is there already.
      if (tree?.versionId !== versionId) await store.putManifest(manifest);
      if (remote.ref !== undefined) await store.setRef(uri, remote.ref, versionId);
      const shownBefore =
        place.switching && tree !== undefined && place.shown !== undefined
          ? { versionId: tree.versionId, versionDir: place.shown }
          : tree?.previous;
      await store.commitTree(
        normalizedSubdir,
        {
          source: uri,
          versionId,
          ...(remote.ref === undefined ? {} : { ref: remote.ref }),
          ...(filter === undefined ? {} : { filter }),
          ...(place.dir === normalizedSubdir ? {} : { versionDir: place.dir }),
          ...(shownBefore === undefined || shownBefore.versionDir === place.dir
            ? {}
            : { previous: shownBefore }),
          updatedAt: new Date().toISOString(),
        },
        // Records of files removed in place; a version left behind keeps its own.
        place.base === undefined ? removed.map((path) => rootRelative(place.dir, path)) : [],
      );
      if (place.dir !== normalizedSubdir && !opened.readOnly) {
        await switchFolder(layout, store, normalizedSubdir, place.dir, place.shown);
        if (place.switching) await sweepVersionDirs(layout, store);
      }
    }
    const fetchedBytes = committed.reduce((n, f) => n + f.fetchedBytes, 0);
    const result: PullResult = {
      ...(versionId === undefined ? {} : { versionId }),
      dir: join(layout.root, normalizedSubdir),
      files: plans.length,
      bytes: plans.reduce((n, p) => n + p.entry.size, 0),
      fetchedBytes,
      reusedBytes: committed.reduce((n, f) => n + f.reusedBytes, 0),
      fetchedFiles: committed.filter((f) => f.fetchedBytes > 0).length,
      skippedFiles: plans.filter((p) => p.action.kind === 'skip').length,
      removed: removed.map((path) => rootRelative(normalizedSubdir, path)),
      requests: source.metrics.requests + (pool?.requests ?? 0),
      durationMs: Math.round(performance.now() - started),
      dryRun,
    };
    meter?.finish();
    emit({ type: 'done', result });
    return result;
  } finally {
    signal.removeEventListener('abort', stopPool);
    await pool?.destroy();
    await opened?.close();
    if (ownsSource) await source.close();
  }
}

/** Runs the transfer with progress sampling. */
async function transferWithPool(
  plans: FilePlan[],
  pool: PartPool,
  meter: ProgressMeter,
  active: ActiveFiles,
  ctx: Omit<TransferContext, 'pool'>,
): Promise<CommittedFile[]> {
  meter.start(PROGRESS_INTERVAL_MS);
  try {
    return await transferFiles(plans, { ...ctx, pool }, active);
  } finally {
    meter.stop();
  }
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
