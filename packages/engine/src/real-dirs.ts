import { lstat, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError } from '@ferry/manifest';

/**
 * Folders already checked (or being checked) under a root, by path: files of one folder
 * that arrive together wait on the same check instead of each running its own `lstat`
 * and `mkdir` (16 of them at once at the start of every folder of a pull).
 */
export type KnownDirs = Map<string, Promise<void>>;

/**
 * Makes the folders of `relDir` (root-relative, `/`-separated) under `root` one by one as
 * real directories, refusing any that exists as a symbolic link or a file: ferry never
 * writes, renames or removes through a link, or a pulled tree could reach outside its root
 * (`llama/tok -> /etc`). The root itself may be a link: it is the user's choice of place.
 * `known` remembers folders already checked.
 *
 * @throws FerryError `FERRY_IO` naming the link or file in the way.
 */
export async function ensureRealDirs(
  root: string,
  relDir: string,
  known: KnownDirs,
): Promise<void> {
  let dir = root;
  for (const segment of relDir === '' ? [] : relDir.split('/')) {
    dir = join(dir, segment);
    let check = known.get(dir);
    if (check === undefined) {
      check = realDir(dir);
      known.set(dir, check);
    }
    await check;
  }
}

/** Makes `dir` if it is missing; fails when something other than a real folder is there. */
async function realDir(dir: string): Promise<void> {
  const st = await lstat(dir).catch(() => undefined);
  if (st === undefined) {
    await mkdir(dir).catch(async (error: unknown) => {
      // Made meanwhile by another writer: fine if it is a real folder.
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      if (!(await lstat(dir)).isDirectory()) throw inTheWay(dir);
    });
  } else if (st.isSymbolicLink()) {
    throw new FerryError(
      'FERRY_IO',
      `${dir} is a symbolic link: ferry does not write through links`,
      {
        key: dir,
        hint: 'Replace the link with a real folder, or pull into a cache root where this folder is not a link.',
      },
    );
  } else if (!st.isDirectory()) {
    throw inTheWay(dir);
  }
}

/** Whether every folder of `relPath` under `root` is a real directory (no link on the way). */
export async function realParents(root: string, relPath: string): Promise<boolean> {
  const segments = relPath.split('/').slice(0, -1);
  let dir = root;
  for (const segment of segments) {
    dir = join(dir, segment);
    const st = await lstat(dir).catch(() => undefined);
    if (!st?.isDirectory()) return false;
  }
  return true;
}

function inTheWay(dir: string): FerryError {
  return new FerryError('FERRY_IO', `${dir} is in the way: a file where a folder goes`, {
    key: dir,
    hint: 'Move the file away, then pull again.',
  });
}
