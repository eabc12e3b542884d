// A pull's last phase: records the version the folder now holds and shows it.
import {
  createManifest,
  type Entry,
  type Manifest,
  type VersionId,
  versionIdOf,
} from '@ferry/manifest';
import type { CacheIndex, StatRecord } from '@ferry/manifest/store';
import { rootRelative } from './cache-layout.js';
import type { CommittedFile } from './file-transfer.js';
import type { FilePlan } from './plan.js';
import type { PullPlan } from './pull-plan.js';
import type { Target } from './pull-resolve.js';
import type { PullRun } from './pull-run.js';
import type { Moved } from './pull-transfer.js';
import { TransferState } from './transfer-state.js';
import { sweepVersionDirs, switchFolder } from './version-dirs.js';

/**
 * Records the version the folder now holds (its manifest, the ref, the tree state) and
 * shows it: a new version folder is switched to by one rename. Returns the version id.
 */
export async function commitPull(
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
  await TransferState.of(store).commitTree(
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

/** Files found right that the stat index did not vouch for yet go into it now. */
async function recordFreshlyHashed(store: CacheIndex, plans: FilePlan[]): Promise<void> {
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
