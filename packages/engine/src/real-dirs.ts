import { lstat, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError } from '@ferry/manifest';

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
  known: Set<string>,
): Promise<void> {
  let dir = root;
  for (const segment of relDir === '' ? [] : relDir.split('/')) {
    dir = join(dir, segment);
    if (known.has(dir)) continue;
    const st = await lstat(dir).catch(() => undefined);
    if (st === undefined) {
      await mkdir(dir).catch(async (error: unknown) => {
        // Made meanwhile by another file of the same folder: fine if it is a real folder.
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
    known.add(dir);
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
