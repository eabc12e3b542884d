import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, readlink, rename, rm, symlink } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { FerryError } from '@ferry/manifest';
import type { CacheIndex, StatRecord, TreeState } from '@ferry/manifest/store';
import type { CacheLayout } from './cache-layout.js';
import { ensureRealDirs } from './real-dirs.js';
import { TransferState } from './transfer-state.js';

/**
 * Versions side by side. A tree's folder (`<root>/llama`) is a symbolic link to the folder
 * holding the version it shows (`<root>/.ferry/trees/<id>/`). A new version is built in a
 * folder of its own, unchanged files hard-linked from the current one, and the link is
 * switched in one rename: a reader sees one version or the other, never a mix. The version
 * shown before stays until the next switch, for readers still inside it (a process that
 * resolved the folder once, or holds it open) and for an instant rollback.
 */
export const TREES_DIR = '.ferry/trees';

/** A fresh folder for a version, root-relative. */
export function newVersionDir(): string {
  return `${TREES_DIR}/${randomBytes(8).toString('hex')}`;
}

/** Root-relative folder holding a tree's files: its version's, or the folder itself. */
export function versionDirOf(dir: string, tree: Pick<TreeState, 'versionDir'> | undefined): string {
  return tree?.versionDir ?? dir;
}

/** The link's content: relative to the folder's parent, so the cache can be moved whole. */
function linkTarget(root: string, dir: string, versionDir: string): string {
  return relative(dirname(join(root, dir)), join(root, versionDir));
}

/** Whether a link at `path` with content `target` leads into the cache's own version folders. */
function isVersionLink(root: string, path: string, target: string): boolean {
  if (isAbsolute(target)) return false;
  const inside = relative(join(root, TREES_DIR), resolve(dirname(path), target));
  return inside !== '' && !inside.startsWith('..') && !inside.includes(sep);
}

/**
 * What is at a tree's folder: the link to `versionDir` (`current`), a link to another of
 * the cache's versions (`link`), the files themselves (`folder`), nothing, or something ferry
 * did not make (a link elsewhere, a file): never followed nor replaced.
 */
export async function folderState(
  root: string,
  dir: string,
  versionDir: string | undefined,
): Promise<'current' | 'link' | 'folder' | 'absent'> {
  const path = join(root, dir);
  const st = await lstat(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (st === undefined) return 'absent';
  if (st.isDirectory()) return 'folder';
  if (st.isSymbolicLink()) {
    const target = await readlink(path);
    if (versionDir !== undefined && target === linkTarget(root, dir, versionDir)) return 'current';
    if (isVersionLink(root, path, target)) return 'link';
    throw new FerryError(
      'FERRY_IO',
      `${path} is a symbolic link ferry did not make (to ${target}): ferry does not write through links`,
      {
        key: path,
        hint: 'Replace the link with a real folder, or pull into a cache root where this folder is not a link.',
      },
    );
  }
  throw new FerryError('FERRY_IO', `${path} is in the way: a file where a folder goes`, {
    key: path,
    hint: 'Move the file away, then pull again.',
  });
}

/** Whether a tree's folder is the link to its version folder (never throws: a report asks). */
export async function showsVersion(
  root: string,
  dir: string,
  tree: Pick<TreeState, 'versionDir'>,
): Promise<boolean> {
  return folderState(root, dir, tree.versionDir).then(
    (state) => state === 'current',
    () => false,
  );
}

/**
 * Points a tree's folder at `versionDir` in one rename of a new link over the old one.
 * A folder holding the files themselves (a tree pulled before versions were kept side by
 * side) is first moved to `asideDir`, with its stat records, to become the previous version:
 * readers of that folder see it vanish for the moment between the two renames, once.
 */
export async function switchFolder(
  layout: CacheLayout,
  store: CacheIndex,
  dir: string,
  versionDir: string,
  asideDir: string | undefined,
): Promise<void> {
  const path = join(layout.root, dir);
  // The folders above it must be real: a linked one could make the rename land anywhere.
  const cut = dir.lastIndexOf('/');
  await ensureRealDirs(layout.root, cut === -1 ? '' : dir.slice(0, cut), new Map());
  const state = await folderState(layout.root, dir, versionDir);
  if (state === 'current') return;
  if (state === 'folder') {
    if (asideDir === undefined) throw new Error(`switchFolder: ${path} needs a place to go`);
    await ensureRealDirs(layout.root, TREES_DIR, new Map());
    await rename(path, join(layout.root, asideDir));
    await moveRecords(store, dir, asideDir);
  }
  await mkdir(layout.tmpDir, { recursive: true });
  const staged = join(layout.tmpDir, `link-${randomBytes(8).toString('hex')}`);
  await symlink(linkTarget(layout.root, dir, versionDir), staged);
  try {
    await rename(staged, path);
  } catch (error) {
    await rm(staged, { force: true });
    throw error;
  }
}

/** Re-keys the stat records of the files under `from` to the same files under `to`. */
async function moveRecords(store: CacheIndex, from: string, to: string): Promise<void> {
  const records = await store.getStats(`${from}/`);
  const moved: Array<[string, StatRecord]> = [...records].map(([path, record]) => [
    `${to}/${path.slice(from.length + 1)}`,
    record,
  ]);
  await store.putStats(moved);
  await store.deleteStats(records.keys());
}

/**
 * Deletes the version folders no tree shows or showed last, and no interrupted pull is
 * building, with their stat records: the previous version of a folder two switches ago, a
 * folder's versions after `ferry rm`, what a crash left half-built. Returns the folders
 * removed (root-relative) and the bytes freed (files no other version links to).
 */
export async function sweepVersionDirs(
  layout: CacheLayout,
  store: CacheIndex,
): Promise<{ removed: string[]; freedBytes: number }> {
  const keep = new Set<string>();
  for (const tree of await store.listTrees()) {
    if (tree.versionDir !== undefined) keep.add(tree.versionDir);
    if (tree.previous !== undefined) keep.add(tree.previous.versionDir);
  }
  for (const pending of await TransferState.of(store).listPendingPulls()) {
    if (pending.versionDir !== undefined) keep.add(pending.versionDir);
  }
  const names = await readdir(join(layout.root, TREES_DIR)).catch(() => [] as string[]);
  const removed: string[] = [];
  let freedBytes = 0;
  for (const name of names) {
    const versionDir = `${TREES_DIR}/${name}`;
    if (keep.has(versionDir)) continue;
    freedBytes += await unsharedBytes(join(layout.root, versionDir));
    await removeVersionDir(layout, store, versionDir);
    removed.push(versionDir);
  }
  return { removed, freedBytes };
}

/** Bytes of the files under `dir` that no other name links to: what deleting it frees. */
async function unsharedBytes(dir: string): Promise<number> {
  let bytes = 0;
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) bytes += await unsharedBytes(path);
    else if (entry.isFile()) {
      const st = await lstat(path).catch(() => undefined);
      if (st?.nlink === 1) bytes += st.size;
    }
  }
  return bytes;
}

/** Deletes one version folder and its stat records (`rm` removes links, never follows them). */
export async function removeVersionDir(
  layout: CacheLayout,
  store: CacheIndex,
  versionDir: string,
): Promise<void> {
  await rm(join(layout.root, versionDir), { recursive: true, force: true });
  await store.deleteStats((await store.getStats(`${versionDir}/`)).keys());
}
