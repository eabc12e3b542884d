import type { Manifest } from '@ferry/manifest';
import type { TreeState } from '@ferry/manifest/store';
import type { RemoteVersion } from './remote-version.js';
import type { PendingPull } from './transfer-state.js';
import { newVersionDir, versionDirOf } from './version-dirs.js';

/** Where a pull puts the version's files (see version-dirs.ts). */
export interface Place {
  /** Root-relative folder the files go to: the tree's own, or a version folder. */
  dir: string;
  /** The version folder shown now, when `dir` is a new one built beside it. */
  base?: string;
  /** The folder will show another version than it does now. */
  switching: boolean;
  /** Where the version shown now stays once switched away from (kept as the previous one). */
  shown?: string;
  /** The folder's link must be made or mended, even if no file changes. */
  relink: boolean;
}

/** What a pull knows about a folder before it plans. */
export interface PlaceFacts {
  /** The folder, root-relative (`''`: the cache root itself). */
  subdir: string;
  /** What the store records for it. */
  tree: TreeState | undefined;
  /** The manifest of the version the tree is at. */
  previous: Manifest | undefined;
  /** The version asked for. */
  remote: Pick<RemoteVersion, 'versionId' | 'entries'>;
  /** What is at the folder's path (see `folderState`). */
  folder: 'current' | 'link' | 'folder' | 'absent';
  /** An interrupted pull of the folder. */
  pending?: Pick<PendingPull, 'versionId' | 'versionDir'>;
  /** Names a new version folder (a test passes its own). */
  newDir?: () => string;
}

/**
 * Decides where the files go. A folder at the root of the cache holds them itself (the root
 * cannot become a link); so does a folder someone filled before any pull (hashed in place
 * once, then switched like any other at the next version). A new version goes to a folder of
 * its own beside the one shown — the one an interrupted pull of the same version was
 * building, if any — except the version shown just before (a rollback: its folder is still
 * there). The same version, or a different subset of it, is mended in place.
 */
export function decidePlace(facts: PlaceFacts): Place {
  const { subdir, tree, previous, remote, folder, pending } = facts;
  const fresh = facts.newDir ?? newVersionDir;
  if (subdir === '') return { dir: '', switching: false, relink: false };
  const resumable =
    pending?.versionDir !== undefined &&
    (remote.versionId === undefined || pending.versionId === remote.versionId)
      ? pending.versionDir
      : undefined;
  if (tree === undefined) {
    if (folder === 'folder') return { dir: subdir, switching: false, relink: false };
    return { dir: resumable ?? fresh(), switching: true, relink: true };
  }
  const current = versionDirOf(subdir, tree);
  if (!changesVersion(tree, previous, remote)) {
    // A folder pulled before versions were kept side by side stays as it is until then.
    return { dir: current, switching: false, relink: current !== subdir && folder !== 'current' };
  }
  // A folder holding the files itself is moved aside to become the previous version.
  const shown = current === subdir ? fresh() : current;
  if (tree.previous !== undefined && tree.previous.versionId === remote.versionId) {
    return { dir: tree.previous.versionDir, switching: true, shown, relink: true };
  }
  return { dir: resumable ?? fresh(), base: current, switching: true, shown, relink: true };
}

/** Whether the source's version differs from the tree's (for a plain listing: any file). */
function changesVersion(
  tree: TreeState,
  previous: Manifest | undefined,
  remote: Pick<RemoteVersion, 'versionId' | 'entries'>,
): boolean {
  if (remote.versionId !== undefined) return remote.versionId !== tree.versionId;
  if (previous === undefined || previous.entries.length !== remote.entries.length) return true;
  const held = new Map(previous.entries.map((e) => [e.path, e]));
  return remote.entries.some((e) => {
    const h = held.get(e.path);
    return h === undefined || h.size !== e.size || h.etag !== e.etag;
  });
}
