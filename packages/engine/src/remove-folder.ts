import { lstat, rename, rm, rmdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError, normalizePath } from '@ferry/manifest';
import type { CacheIndex } from '@ferry/manifest/store';
import { cacheLayout, rootRelative } from './cache-layout.js';
import { openExistingStore } from './open-store.js';
import { cutsPathFor } from './part-cuts.js';
import { heldEntries } from './path-filter.js';
import { realParents } from './real-dirs.js';
import { statVouches } from './stat-vouches.js';
import { TransferState } from './transfer-state.js';
import { folderState, sweepVersionDirs, versionDirOf } from './version-dirs.js';
import { walkFiles } from './walk-files.js';

export interface RemoveFolderResult {
  /** The folder, relative to the root. */
  dir: string;
  /** Files ferry had written there and removed. */
  removedFiles: number;
  /** Bytes those files and the folder's partial files held. */
  freedBytes: number;
  /** Files of the version changed since ferry wrote them: left in place (as are files ferry never wrote). */
  kept: string[];
}

/**
 * Takes a folder out of the cache: the files ferry wrote there (unless changed since),
 * its partial files, and its records; folders left empty go too. Files someone changed or
 * put there are kept and listed: their bytes are not ferry's to delete.
 *
 * @throws FerryError `FERRY_NOT_FOUND` when the cache holds no such folder.
 */
export async function removeFolder(options: {
  root: string;
  dir: string;
}): Promise<RemoveFolderResult> {
  const dir = options.dir.replace(/\/+$/, '') === '.' ? '' : normalizeDir(options.dir);
  const opened = await openExistingStore(options.root);
  const store = opened.store;
  try {
    const tree = await store.getTree(dir);
    const transfers = TransferState.of(store);
    const pending = await transfers.getPendingPull(dir);
    if (tree === undefined && pending === undefined) {
      const known = (await store.listTrees()).map((t) => (t.dir === '' ? '.' : t.dir));
      throw new FerryError(
        'FERRY_NOT_FOUND',
        `the cache at ${options.root} holds no folder ${JSON.stringify(dir)}`,
        {
          key: dir,
          hint:
            known.length === 0
              ? 'The cache holds no folder.'
              : `It holds: ${known.join(', ')} (\`ferry status\` lists them).`,
        },
      );
    }
    const result: RemoveFolderResult = { dir, removedFiles: 0, freedBytes: 0, kept: [] };
    const inside = (relPath: string) => dir === '' || relPath.startsWith(`${dir}/`);
    for (const journal of await transfers.listJournals()) {
      if (!inside(journal.path)) continue;
      for (const path of [journal.tmpPath, cutsPathFor(journal.tmpPath)]) {
        result.freedBytes += (await lstat(path).catch(() => undefined))?.size ?? 0;
        await rm(path, { force: true });
      }
      await transfers.deleteJournal(journal.path);
    }
    if (pending !== undefined) await transfers.deletePendingPull(dir);

    const manifest = tree === undefined ? undefined : await store.getManifest(tree.versionId);
    const storedIn = versionDirOf(dir, tree);
    const folders = new Set<string>();
    for (const entry of heldEntries(manifest?.entries ?? [], tree?.filter)) {
      const relPath = rootRelative(dir, entry.path);
      const storedAt = rootRelative(storedIn, entry.path);
      const size = (await lstat(join(options.root, storedAt)).catch(() => undefined))?.size;
      if (await removeIfUnchanged(store, options.root, storedAt)) {
        if (size !== undefined) {
          result.removedFiles++;
          result.freedBytes += size;
        }
      } else {
        result.kept.push(relPath);
      }
      for (let d = relPath; d.includes('/'); ) {
        d = d.slice(0, d.lastIndexOf('/'));
        folders.add(d);
      }
    }
    await store.deleteStats((await store.getStats(dir === '' ? '' : `${dir}/`)).keys());
    if (tree?.versionDir !== undefined) {
      await dropVersions(options.root, store, dir, tree.versionDir);
    }
    if (tree !== undefined) await store.deleteTree(dir);
    // The version folders left (the one shown before, one an interrupted pull was building).
    await sweepVersionDirs(cacheLayout(options.root), store);
    // Deepest first; a folder still holding someone's files stays.
    for (const folder of [...folders].sort((a, b) => b.length - a.length)) {
      if (inside(folder) || folder === dir) {
        await rmdir(join(options.root, folder)).catch(() => undefined);
      }
    }
    return result;
  } finally {
    await opened.close();
  }
}

/**
 * Takes the link away, and the version folder with it once empty; a version folder still
 * holding someone's files takes the link's place, so they stay where they were seen.
 */
async function dropVersions(
  root: string,
  store: CacheIndex,
  dir: string,
  versionDir: string,
): Promise<void> {
  const folder = join(root, dir);
  const stored = join(root, versionDir);
  // Never through a link on the way: the folder's name may lead anywhere then.
  const state = (await realParents(root, dir))
    ? await folderState(root, dir, versionDir).catch(() => 'foreign' as const)
    : 'foreign';
  const left = await walkFiles(stored, { links: 'skip' }).catch(() => []);
  if (state === 'current' || state === 'link') await unlink(folder);
  if (left.length > 0 && (state === 'current' || state === 'absent')) {
    await rename(stored, folder);
  } else {
    await rm(stored, { recursive: true, force: true });
  }
  await store.deleteStats((await store.getStats(`${versionDir}/`)).keys());
}

function normalizeDir(dir: string): string {
  try {
    return normalizePath(dir.replace(/\/+$/, ''));
  } catch {
    throw new FerryError('FERRY_USAGE', `${JSON.stringify(dir)} is not a folder of the cache`, {
      key: dir,
      hint: 'Name the folder relative to the cache root, as `ferry status` shows it (e.g. llama/v3).',
    });
  }
}

/** Removes a file ferry put there, unless someone changed it since: their bytes stay. */
export async function removeIfUnchanged(
  store: CacheIndex,
  root: string,
  relPath: string,
): Promise<boolean> {
  const record = await store.getStat(relPath);
  const path = join(root, relPath);
  const st = await lstat(path).catch(() => undefined);
  if (!st) return true;
  // Never through a link: a linked folder on the way may lead anywhere.
  if (!(await realParents(root, relPath))) return false;
  if (!st.isFile() || !record || !statVouches(record, st)) return false;
  await unlink(path);
  return true;
}
