import type { Stats } from 'node:fs';
import type { StatRecord } from '@ferry/manifest/store';

/**
 * Whether a file's stat still vouches for the content its record describes, without
 * reading it: the same size, and the same mtime — or the recorded mtime cut to whole
 * seconds, when the file now has a whole-second mtime. That is what tar (GNU format),
 * Docker, containerd and OCI layers leave of an mtime, so a baked cache copied into an
 * image still starts without reading a byte. New inodes and owners do not matter.
 *
 * What it can miss, knowingly: a same-size rewrite whose mtime was then set to exactly
 * the recorded second (on purpose, with `touch -d`), or one made within the same second as
 * the original write on a file system that keeps only seconds. `verify --deep` (or
 * `--verify hash`) reads everything.
 */
export function statVouches(record: StatRecord, st: Pick<Stats, 'size' | 'mtimeMs'>): boolean {
  if (record.size !== st.size) return false;
  if (record.mtimeMs === st.mtimeMs) return true;
  return st.mtimeMs % 1000 === 0 && Math.floor(record.mtimeMs / 1000) * 1000 === st.mtimeMs;
}
