import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { diff, type ManifestDiff } from './diff.js';
import { createManifest } from './manifest.js';
import { compareUtf8 } from './paths.js';
import { digestArb, entriesArb, pathArb } from './test-arbitraries.js';
import type { Entry } from './types.js';

const d = (n: number, algorithm = 'sha256') => `${algorithm}:${n.toString(16).padStart(64, '0')}`;

describe('diff', () => {
  it('sorts entries into added, removed, changed, unchanged and renamed', () => {
    const a = createManifest([
      { path: 'same', size: 1, digest: d(1) },
      { path: 'gone', size: 1, digest: d(2) },
      { path: 'edited', size: 1, digest: d(3) },
      { path: 'old-name', size: 1, digest: d(4) },
    ]);
    const b = createManifest([
      { path: 'same', size: 1, digest: d(1) },
      { path: 'edited', size: 2, digest: d(30) },
      { path: 'new-name', size: 1, digest: d(4) },
      { path: 'new', size: 1, digest: d(5) },
    ]);
    const result = diff(a, b);
    expect(result.unchanged.map((e) => e.path)).toEqual(['same']);
    expect(result.removed.map((e) => e.path)).toEqual(['gone']);
    expect(result.added.map((e) => e.path)).toEqual(['new']);
    expect(result.changed).toEqual([
      {
        from: a.entries.find((e) => e.path === 'edited'),
        to: b.entries.find((e) => e.path === 'edited'),
      },
    ]);
    expect(result.renamed.map((r) => [r.from.path, r.to.path])).toEqual([['old-name', 'new-name']]);
  });

  it('lists changed parts, including parts beyond the old length', () => {
    const a = createManifest([
      { path: 'w', size: 30, digest: d(1), parts: { size: 10, digests: [d(10), d(11), d(12)] } },
    ]);
    const b = createManifest([
      {
        path: 'w',
        size: 50,
        digest: d(2),
        parts: { size: 10, digests: [d(10), d(99), d(12), d(13), d(14)] },
      },
    ]);
    expect(diff(a, b).changed[0]?.changedParts).toEqual([1, 3, 4]);
  });

  it('gives no changedParts without comparable part lists', () => {
    const parts10 = { size: 10, digests: [d(10)] };
    const cases: Array<[Entry, Entry]> = [
      [
        { path: 'x', size: 5, digest: d(1) },
        { path: 'x', size: 5, digest: d(2), parts: parts10 },
      ],
      [
        { path: 'x', size: 5, digest: d(1), parts: parts10 },
        { path: 'x', size: 5, digest: d(2), parts: { size: 20, digests: [d(10)] } },
      ],
      [
        { path: 'x', size: 5, digest: d(1), parts: parts10 },
        {
          path: 'x',
          size: 5,
          digest: d(2, 'blake3'),
          parts: { size: 10, digests: [d(10, 'blake3')] },
        },
      ],
    ];
    for (const [from, to] of cases) {
      const [change] = diff(createManifest([from]), createManifest([to])).changed;
      expect(change).toBeDefined();
      expect(change && 'changedParts' in change).toBe(false);
    }
  });

  it('pairs renames of equal content in path order and leaves the rest added/removed', () => {
    const a = createManifest([
      { path: 'a1', size: 1, digest: d(7) },
      { path: 'a2', size: 1, digest: d(7) },
      { path: 'a3', size: 1, digest: d(7) },
    ]);
    const b = createManifest([
      { path: 'b1', size: 1, digest: d(7) },
      { path: 'b2', size: 1, digest: d(7) },
    ]);
    const result = diff(a, b);
    expect(result.renamed.map((r) => [r.from.path, r.to.path])).toEqual([
      ['a1', 'b1'],
      ['a2', 'b2'],
    ]);
    expect(result.removed.map((e) => e.path)).toEqual(['a3']);
    expect(result.added).toEqual([]);
  });

  // Two manifests over a shared pool of paths and digests, so that every category occurs.
  const pairArb = fc
    .tuple(
      entriesArb,
      fc.array(fc.tuple(pathArb, fc.integer({ min: 0, max: 3 }))),
      fc.array(digestArb(), { minLength: 4, maxLength: 4 }),
    )
    .map(([base, extra, pool]) => {
      const pick = (i: number) => pool[i % pool.length] as string;
      const a = base.filter((_, i) => i % 3 !== 0);
      const b = base
        .filter((_, i) => i % 3 !== 1)
        .map((e, i) => (i % 2 === 0 ? e : { path: e.path, size: e.size, digest: pick(i) }));
      const seen = new Set(b.map((e) => e.path));
      for (const [path, i] of extra) {
        if (!seen.has(path)) {
          seen.add(path);
          b.push({ path, size: 1, digest: pick(i) });
        }
      }
      return [createManifest(a), createManifest(b)] as const;
    });

  const paths = (entries: Entry[]) => entries.map((e) => e.path);
  const pairs = (rows: Array<{ from: Entry; to: Entry }>) =>
    rows.map((r) => `${r.from.path} -> ${r.to.path}`).sort(compareUtf8);

  it('is symmetric: swapping the manifests swaps added/removed and from/to', () => {
    fc.assert(
      fc.property(pairArb, ([a, b]) => {
        const forward = diff(a, b);
        const backward = diff(b, a);
        expect(paths(backward.added)).toEqual(paths(forward.removed));
        expect(paths(backward.removed)).toEqual(paths(forward.added));
        expect(pairs(backward.renamed)).toEqual(
          pairs(forward.renamed.map((r) => ({ from: r.to, to: r.from }))),
        );
        expect(pairs(backward.changed)).toEqual(
          pairs(forward.changed.map((c) => ({ from: c.to, to: c.from }))),
        );
        expect(paths(backward.unchanged)).toEqual(paths(forward.unchanged));
      }),
    );
  });

  it('accounts for every entry of both manifests exactly once', () => {
    fc.assert(
      fc.property(pairArb, ([a, b]) => {
        const r: ManifestDiff = diff(a, b);
        const fromA = [
          ...r.removed,
          ...r.changed.map((c) => c.from),
          ...r.unchanged,
          ...r.renamed.map((x) => x.from),
        ];
        const fromB = [
          ...r.added,
          ...r.changed.map((c) => c.to),
          ...r.unchanged,
          ...r.renamed.map((x) => x.to),
        ];
        expect(paths(fromA).sort(compareUtf8)).toEqual(paths(a.entries));
        expect(paths(fromB).sort(compareUtf8)).toEqual(paths(b.entries));
        expect(diff(a, a).unchanged).toEqual(a.entries);
      }),
    );
  });
});
