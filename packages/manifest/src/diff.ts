import { compareUtf8 } from './paths.js';
import type { Entry, Manifest } from './types.js';

/** How manifest `b` differs from manifest `a`; every list is sorted by path. */
export interface ManifestDiff {
  /** Entries only in `b` (and not the target of a rename). */
  added: Entry[];
  /** Entries only in `a` (and not the source of a rename). */
  removed: Entry[];
  /**
   * Paths in both whose digests differ. `changedParts` lists the part indices of `b` whose
   * digest differs from `a`'s or that `a` does not have; it is present only when both
   * entries carry part digests of the same part size and algorithm.
   */
  changed: Array<{ from: Entry; to: Entry; changedParts?: number[] }>;
  /** Entries of `b` whose path and digest are the same in `a`. */
  unchanged: Entry[];
  /** A path only in `a` and a path only in `b` with the same digest: a move, no transfer. */
  renamed: Array<{ from: Entry; to: Entry }>;
}

function changedParts(from: Entry, to: Entry): number[] | undefined {
  if (from.parts === undefined || to.parts === undefined) return undefined;
  if (from.parts.size !== to.parts.size) return undefined;
  if (algorithmOf(from.digest) !== algorithmOf(to.digest)) return undefined;
  const before = from.parts.digests;
  const indices: number[] = [];
  to.parts.digests.forEach((d, i) => {
    if (before[i] !== d) indices.push(i);
  });
  return indices;
}

function algorithmOf(digest: string): string {
  return digest.slice(0, digest.indexOf(':'));
}

function byDigest(entries: Entry[]): Map<string, Entry[]> {
  const groups = new Map<string, Entry[]>();
  for (const e of entries) {
    const group = groups.get(e.digest);
    if (group === undefined) groups.set(e.digest, [e]);
    else group.push(e);
  }
  return groups;
}

/**
 * Compares two versions of a file set by path and digest. Entries are the same when their
 * digests are equal; two digests of different algorithms or part sizes never are, so such
 * an entry shows as changed even if its bytes are not.
 *
 * Renames pair the i-th removed path with the i-th added path of the same digest, both in
 * path order; the pairing does not depend on the direction, so `diff(b, a)` is `diff(a, b)`
 * with `added`/`removed` and every `from`/`to` swapped.
 */
export function diff(a: Manifest, b: Manifest): ManifestDiff {
  const before = new Map(a.entries.map((e) => [e.path, e]));
  const after = new Map(b.entries.map((e) => [e.path, e]));
  const result: ManifestDiff = { added: [], removed: [], changed: [], unchanged: [], renamed: [] };
  const onlyA: Entry[] = [];
  const onlyB: Entry[] = [];
  for (const to of after.values()) {
    const from = before.get(to.path);
    if (from === undefined) onlyB.push(to);
    else if (from.digest === to.digest) result.unchanged.push(to);
    else {
      const parts = changedParts(from, to);
      result.changed.push(parts === undefined ? { from, to } : { from, to, changedParts: parts });
    }
  }
  for (const from of before.values()) if (!after.has(from.path)) onlyA.push(from);
  const byPath = (x: Entry, y: Entry) => compareUtf8(x.path, y.path);
  onlyA.sort(byPath);
  onlyB.sort(byPath);
  const targets = byDigest(onlyB);
  const paired = new Set<Entry>();
  for (const from of onlyA) {
    const to = targets.get(from.digest)?.shift();
    if (to === undefined) result.removed.push(from);
    else {
      result.renamed.push({ from, to });
      paired.add(to);
    }
  }
  result.added = onlyB.filter((e) => !paired.has(e));
  result.unchanged.sort(byPath);
  result.changed.sort((x, y) => byPath(x.to, y.to));
  result.renamed.sort((x, y) => byPath(x.to, y.to));
  return result;
}
