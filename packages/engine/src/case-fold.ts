import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { checkCaseCollisions, FerryError, isFerryError } from '@ferry/manifest';

/**
 * Whether the file system under `root` folds case: `<root>/.FERRY` is then the same folder
 * as `<root>/.ferry` (macOS and Windows defaults, a case-insensitive ext4 folder). False when
 * `.ferry` is not there yet, as nothing can be told from a missing folder.
 */
export async function foldsCase(root: string): Promise<boolean> {
  const [lower, upper] = await Promise.all(
    [join(root, '.ferry'), join(root, '.FERRY')].map((p) => stat(p).catch(() => undefined)),
  );
  return (
    lower !== undefined && upper !== undefined && lower.ino === upper.ino && lower.dev === upper.dev
  );
}

/**
 * On a root that folds case, refuses a version two of whose paths differ only by case: one
 * file would overwrite the other, and the folder would never match the version.
 * @throws FerryError `FERRY_BAD_PATH` naming both paths.
 */
export function checkFoldedPaths(paths: Iterable<string>, folds: boolean, root: string): void {
  if (!folds) return;
  try {
    checkCaseCollisions(paths);
  } catch (error) {
    if (!isFerryError(error, 'FERRY_BAD_PATH')) throw error;
    throw new FerryError(
      'FERRY_BAD_PATH',
      `${root} is on a case-insensitive file system, and the version's ${error.message}`,
      {
        key: error.key,
        cause: error,
        hint: 'Pull into a root on a case-sensitive file system (--to), or leave one of the two out (--exclude); the publisher should rename one.',
      },
    );
  }
}
