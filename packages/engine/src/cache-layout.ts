import { createHash } from 'node:crypto';
import { join } from 'node:path';

/** Where ferry keeps things under a cache root (the engine README, "How a pull works"). */
export interface CacheLayout {
  root: string;
  /** `<root>/.ferry` */
  stateDir: string;
  /** LevelDB of manifests, refs, trees, the stat index and journals. */
  dbDir: string;
  /** Partial files; never read as results. */
  tmpDir: string;
}

export function cacheLayout(root: string): CacheLayout {
  const stateDir = join(root, '.ferry');
  return { root, stateDir, dbDir: join(stateDir, 'db'), tmpDir: join(stateDir, 'tmp') };
}

/**
 * The partial file of a root-relative path. Named by a hash so that deep or unusual paths
 * never need directories under tmp/, and stable so a resumed pull finds its bytes again.
 */
export function tmpPathFor(layout: CacheLayout, relPath: string): string {
  const name = createHash('sha256').update(relPath).digest('hex').slice(0, 40);
  return join(layout.tmpDir, `${name}.part`);
}

/** Joins a tree folder and an entry path into the root-relative path the stat index uses. */
export function rootRelative(subdir: string, path: string): string {
  return subdir === '' ? path : `${subdir}/${path}`;
}
