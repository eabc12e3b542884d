import type { Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { compareUtf8, FerryError, isReservedPath, normalizePath } from '@ferry/manifest';

/** A regular file under a directory, with its normalised relative path. */
export interface LocalFile {
  path: string;
  absPath: string;
  size: number;
  mtimeMs: number;
}

/**
 * Regular files under `dir`, sorted by path, skipping ferry's own `.ferry/` folder.
 * Symbolic links are never followed: refused by default (publishing must not reach outside
 * the folder the user named), or passed over with `links: 'skip'`.
 */
export async function walkFiles(
  dir: string,
  options: { links?: 'refuse' | 'skip' } = {},
): Promise<LocalFile[]> {
  const files: LocalFile[] = [];
  const visit = async (absDir: string, relDir: string): Promise<void> => {
    let entries: Dirent[];
    try {
      entries = await readdir(absDir, { withFileTypes: true });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (relDir === '' && (code === 'ENOENT' || code === 'ENOTDIR')) {
        throw new FerryError('FERRY_NOT_FOUND', `${dir} is not a directory`, {
          key: dir,
          cause: error,
          hint: 'Name the folder that holds the files to publish.',
        });
      }
      throw error;
    }
    await Promise.all(
      entries.map(async (entry) => {
        const rel = relDir === '' ? entry.name : `${relDir}/${entry.name}`;
        const abs = join(absDir, entry.name);
        if (relDir === '' && isReservedPath(entry.name)) return;
        if (entry.isDirectory()) return visit(abs, rel);
        if (entry.isSymbolicLink()) {
          if (options.links === 'skip') return;
          throw new FerryError(
            'FERRY_BAD_PATH',
            `${abs} is a symbolic link; ferry publishes regular files only`,
            {
              key: abs,
              hint: 'Replace the link with the file it points to, or move it out of the folder.',
            },
          );
        }
        if (!entry.isFile()) return;
        const st = await stat(abs);
        files.push({ path: normalizePath(rel), absPath: abs, size: st.size, mtimeMs: st.mtimeMs });
      }),
    );
  };
  await visit(dir, '');
  return files.sort((a, b) => compareUtf8(a.path, b.path));
}
