// A pull's second phase: what the version needs against what the cache holds, decided
// per file by plan.ts, or found to need nothing by one pass over the stat records.
import { lstatSync } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_ALGORITHM, FerryError, type Manifest, type PathFilter } from '@ferry/manifest';
import type { CacheIndex, TreeState } from '@ferry/manifest/store';
import { rootRelative } from './cache-layout.js';
import { checkFoldedPaths, foldsCase } from './case-fold.js';
import { compileFilter } from './path-filter.js';
import { decidePlace, type Place } from './place.js';
import { type FilePlan, localBytes, PLAN_CHUNK, planPull, summarize } from './plan.js';
import type { Target } from './pull-resolve.js';
import type { PullRun } from './pull-run.js';
import type { RemoteEntry, RemoteVersion } from './remote-version.js';
import { statVouches } from './stat-vouches.js';
import { TransferState } from './transfer-state.js';
import type { PlanSummary, PullEvent } from './types.js';
import { folderState } from './version-dirs.js';
import { walkFiles } from './walk-files.js';

/** What a pull will do. */
export interface PullPlan {
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

export async function planTarget(run: PullRun, target: Target): Promise<PullPlan> {
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
      run.pool.get({
        bytes: wanted.entries.reduce((n, e) => n + e.size, 0),
        // Re-hashing every file there first is work for workers alone.
        callerBusy: options.verify === 'hash',
      });
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
      // Wanted first to hash files already there: as many threads as the cores, all workers.
      pool: () => run.pool.get({ bytes: Number.POSITIVE_INFINITY, callerBusy: true }),
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
  store: CacheIndex,
  root: string,
  subdir: string,
  tree: TreeState | undefined,
  previous: Manifest | undefined,
  remote: RemoteVersion,
): Promise<Place> {
  if (subdir === '') return decidePlace({ subdir, tree, previous, remote, folder: 'folder' });
  const pending = await TransferState.of(store).getPendingPull(subdir);
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
  store: CacheIndex,
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
 * Refuses a folder that contains, or lies inside, another folder of the same root pulled
 * from elsewhere: each tree removes what its versions drop and replaces what they change,
 * so two nested trees would overwrite and delete each other's files.
 */
async function checkNoOverlap(
  store: CacheIndex,
  subdir: string,
  root: string,
  uri: string,
): Promise<void> {
  const inside = (outer: string, inner: string) =>
    outer === '' || inner === outer || inner.startsWith(`${outer}/`);
  const others = [
    ...(await store.listTrees()),
    ...(await TransferState.of(store).listPendingPulls()),
  ];
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
