// A pull's third phase, the only one that writes files: links what the new version
// shares, moves the rest through the worker pool, removes what it drops.
import { constants } from 'node:fs';
import { copyFile, link, lstat, readdir, rm, statfs } from 'node:fs/promises';
import { join, sep } from 'node:path';
import type { SourceOptions } from '@ferry/adapters';
import { DEFAULT_ALGORITHM, FerryError, formatBytes } from '@ferry/manifest';
import type { CacheIndex, StatRecord } from '@ferry/manifest/store';
import { rootRelative } from './cache-layout.js';
import { contentOf } from './content-store.js';
import {
  type ActiveFiles,
  type CommittedFile,
  followsMd5,
  transferFiles,
} from './file-transfer.js';
import { cutsPathFor } from './part-cuts.js';
import type { Place } from './place.js';
import type { FilePlan } from './plan.js';
import { PROGRESS_INTERVAL_MS, ProgressMeter } from './progress-meter.js';
import type { PullPlan } from './pull-plan.js';
import type { Target } from './pull-resolve.js';
import type { PullRun } from './pull-run.js';
import { ensureRealDirs, type KnownDirs } from './real-dirs.js';
import type { RemoteVersion } from './remote-version.js';
import { removeIfUnchanged } from './remove-folder.js';
import { TransferState } from './transfer-state.js';
import type { PlanSummary } from './types.js';
import { workerSourceOptions } from './worker-source-options.js';

/**
 * A healthy body is never silent this long; a TCP connection that lost its path takes
 * about as long to give up retransmitting the first few times. Parts in flight beside
 * others are hedged after 2 s anyway (see the part worker).
 */
const DEFAULT_STALL_TIMEOUT_MS = 10_000;

/** See `PullOptions.hedgeAfterMs`. */
const DEFAULT_HEDGE_AFTER_MS = 2_000;

/** What the transfer phase did: files written, files removed (`place.dir`-relative). */
export interface Moved {
  committed: CommittedFile[];
  removed: string[];
}

export async function transferPlan(run: PullRun, target: Target, plan: PullPlan): Promise<Moved> {
  const { store, layout, uri, options, emit } = run;
  const { remote } = target;
  const { place, files, carried, summary } = plan;
  await removeOrphanPartials(run, place, files);
  await checkFreeSpace(layout.root, files, summary.resumedBytes);
  const moves = files.some((p) => p.action.kind !== 'skip' || p.action.linkFrom);
  if (moves || carried.keep.length > 0) {
    await TransferState.of(store).setPendingPull(run.subdir, {
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
  const checkEtag = process.env.FERRY_ETAG_CHECK !== '0';
  const pool = run.pool.get({ ...summary.fetch, callerBusy: followsMd5(files, checkEtag) });
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
        checkEtag,
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

/**
 * Hard-links the files a new version shares with the one shown (and the files carried
 * over) into its folder: no byte copied, and their stat records hold for the new path too
 * (a link is the same inode). Where the file system has no hard links, a shared file is
 * copied instead, and verified on the way like any copy.
 */
async function linkUnchanged(
  store: CacheIndex,
  root: string,
  plans: FilePlan[],
  keep: string[],
  place: Place,
): Promise<void> {
  const dirs: KnownDirs = new Map();
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
 * Partial files no planned resume will read: left by transfers that cannot resume. The
 * journaled ones of other folders stay (all folders of a root share one tmp folder): their
 * own interrupted pulls resume them, and `gc` drops those no pull will.
 */
async function removeOrphanPartials(run: PullRun, place: Place, plans: FilePlan[]): Promise<void> {
  const keep = new Set(
    plans.flatMap((p) =>
      p.action.kind === 'fetch' && p.action.resume
        ? [p.action.resume.tmpPath, cutsPathFor(p.action.resume.tmpPath)]
        : [],
    ),
  );
  const ours = (path: string) =>
    [run.subdir, place.dir].some((dir) => dir === '' || path.startsWith(`${dir}/`));
  for (const journal of await TransferState.of(run.store).listJournals()) {
    if (!ours(journal.path)) keep.add(journal.tmpPath).add(cutsPathFor(journal.tmpPath));
  }
  const tmpDir = run.layout.tmpDir;
  const names = await readdir(tmpDir).catch(() => [] as string[]);
  await Promise.all(
    names
      .map((name) => join(tmpDir, name))
      .filter((path) => !keep.has(path))
      .map((path) => rm(path, { force: true })),
  );
}
