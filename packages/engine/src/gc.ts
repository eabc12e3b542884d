import { lstat, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isFerryError } from '@ferry/manifest';
import { cacheLayout, rootRelative } from './cache-layout.js';
import { openExistingStore } from './open-store.js';
import { cutsPathFor } from './part-cuts.js';
import { heldEntries } from './path-filter.js';
import { TransferState } from './transfer-state.js';
import { sweepVersionDirs, versionDirOf } from './version-dirs.js';

export interface GcResult {
  /** Partial files deleted (their transfers can no longer resume). */
  removedPartials: number;
  /** Bytes freed on disk by deleting partial files and version folders. */
  freedBytes: number;
  /** Stored manifests no tree, ref or interrupted pull refers to. */
  removedManifests: number;
  /** Stat records and journals of files no recorded version has. */
  removedRecords: number;
  /** Folders deleted by hand (gone from disk) whose records gc dropped. */
  removedFolders: string[];
  /**
   * Version folders (`.ferry/trees/<id>`) no folder shows or showed just before, and no
   * interrupted pull builds: deleted with their files.
   */
  removedVersions: number;
  /**
   * The store could not be opened (a full disk is the usual cause): every partial file was
   * removed to free space, as none can be resumed without it. Run gc again afterwards.
   */
  storeUnavailable?: string;
}

/**
 * Removes what no recorded version needs: partial files and journals of transfers no
 * interrupted pull will resume, manifests nothing refers to, stat records of paths no
 * tree has, the records of folders deleted by hand, and version folders no folder shows or
 * showed just before. Never touches the files of a version a folder shows.
 */
export async function gc(options: { root: string }): Promise<GcResult> {
  const layout = cacheLayout(options.root);
  const result: GcResult = {
    removedPartials: 0,
    freedBytes: 0,
    removedManifests: 0,
    removedRecords: 0,
    removedFolders: [],
    removedVersions: 0,
  };
  let opened: Awaited<ReturnType<typeof openExistingStore>>;
  try {
    opened = await openExistingStore(options.root);
  } catch (error) {
    // A full disk keeps LevelDB from opening: the partial files are what frees it.
    if (!isFerryError(error, 'FERRY_STORE_FAILED')) throw error;
    await removePartials(layout.tmpDir, new Set(), result);
    result.storeUnavailable = error.message;
    return result;
  }
  const store = opened.store;
  try {
    const trees = [];
    for (const tree of await store.listTrees()) {
      if (tree.dir !== '' && (await folderGone(join(options.root, tree.dir)))) {
        await store.deleteTree(tree.dir);
        result.removedFolders.push(tree.dir);
      } else {
        trees.push(tree);
      }
    }
    const transfers = TransferState.of(store);
    const pending = await transfers.listPendingPulls();
    const refs = await store.listRefs();
    // Where interrupted pulls write: a resume needs their journals, partials and records.
    const pendingDirs = new Set(
      pending.flatMap((p) => (p.versionDir === undefined ? [p.dir] : [p.dir, p.versionDir])),
    );
    const inPendingTree = (relPath: string) =>
      [...pendingDirs].some((dir) => dir === '' || relPath.startsWith(`${dir}/`));
    // The version each folder showed before its last switch keeps its records whole.
    const previousDirs = trees.flatMap((t) =>
      t.previous === undefined ? [] : [t.previous.versionDir],
    );
    const inPreviousVersion = (relPath: string) =>
      previousDirs.some((dir) => relPath.startsWith(`${dir}/`));

    const keepPartials = new Set<string>();
    for (const journal of await transfers.listJournals()) {
      if (inPendingTree(journal.path)) {
        keepPartials.add(journal.tmpPath);
        keepPartials.add(cutsPathFor(journal.tmpPath));
      } else {
        await transfers.deleteJournal(journal.path);
        result.removedRecords++;
      }
    }
    await removePartials(layout.tmpDir, keepPartials, result);

    const keepManifests = new Set<string>([
      ...trees.map((t) => t.versionId),
      ...refs.map((r) => r.versionId),
      ...pending.flatMap((p) => (p.versionId === undefined ? [] : [p.versionId])),
      ...trees.flatMap((t) => (t.previous === undefined ? [] : [t.previous.versionId])),
    ]);
    const wanted = new Set<string>();
    for (const tree of trees) {
      const manifest = await store.getManifest(tree.versionId);
      const dir = versionDirOf(tree.dir, tree);
      for (const e of heldEntries(manifest?.entries ?? [], tree.filter))
        wanted.add(rootRelative(dir, e.path));
    }
    for (const id of await store.listManifests()) {
      if (keepManifests.has(id)) continue;
      await store.deleteManifest(id);
      result.removedManifests++;
    }
    const stale = [...(await store.getStats('')).keys()].filter(
      (p) => !wanted.has(p) && !inPendingTree(p) && !inPreviousVersion(p),
    );
    if (stale.length > 0) await store.deleteStats(stale);
    result.removedRecords += stale.length;
    // Version folders nothing shows, showed last or is building, with their records.
    const swept = await sweepVersionDirs(layout, store);
    result.removedVersions = swept.removed.length;
    result.freedBytes += swept.freedBytes;
    return result;
  } finally {
    await opened.close();
  }
}

/** Only a folder that is not there at all: one that cannot be read is not evidence. */
export async function folderGone(path: string): Promise<boolean> {
  return lstat(path).then(
    () => false,
    (error: NodeJS.ErrnoException) => error.code === 'ENOENT',
  );
}

/** Deletes the files of `.ferry/tmp` not in `keep`, counting them into `result`. */
async function removePartials(tmpDir: string, keep: Set<string>, result: GcResult): Promise<void> {
  for (const name of await readdir(tmpDir).catch(() => [] as string[])) {
    const path = join(tmpDir, name);
    if (keep.has(path)) continue;
    const size = (await stat(path).catch(() => undefined))?.size ?? 0;
    await rm(path, { force: true });
    if (name.endsWith('.part')) result.removedPartials++;
    result.freedBytes += size;
  }
}
