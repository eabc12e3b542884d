import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FerryError } from './errors.js';
import {
  createManifest,
  encodeManifest,
  isVersionId,
  parseManifest,
  parseManifestById,
  validateRef,
  versionIdOf,
} from './manifest.js';
import { compareUtf8 } from './paths.js';
import { entriesArb, manifestArb } from './test-arbitraries.js';
import type { Entry } from './types.js';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const B3 = `blake3:${'3'.repeat(64)}`;

function thrown(fn: () => unknown): FerryError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(FerryError);
    return err as FerryError;
  }
  throw new Error('expected a FerryError');
}

function shuffled<T>(items: T[], seed: number): T[] {
  const out = [...items];
  let x = seed | 1;
  for (let i = out.length - 1; i > 0; i--) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const j = x % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

describe('createManifest', () => {
  it('sorts entries by the UTF-8 bytes of their paths', () => {
    const paths = ['b', 'a/z', '\ufffd', '💾', 'a', 'A', 'a-b'];
    const m = createManifest(paths.map((path) => ({ path, size: 0, digest: D1 })));
    expect(m.entries.map((e) => e.path)).toEqual(['A', 'a', 'a-b', 'a/z', 'b', '\ufffd', '💾']);
    expect(m.version).toBe(1);
  });

  it('keeps created and meta and does not touch its input', () => {
    const entries: Entry[] = [
      { path: 'b', size: 1, digest: D1 },
      { path: 'a', size: 2, digest: D2 },
    ];
    const m = createManifest(entries, { created: '2026-11-27T12:00:00Z', meta: { model: 'x' } });
    expect(m.created).toBe('2026-11-27T12:00:00Z');
    expect(m.meta).toEqual({ model: 'x' });
    expect(entries.map((e) => e.path)).toEqual(['b', 'a']);
  });

  it.each([
    [[{ path: '../x', size: 0, digest: D1 }], 'entries[0].path', '"../x"'],
    [
      [
        { path: 'a', size: 0, digest: D1 },
        { path: 'a', size: 1, digest: D2 },
      ],
      'entries[1].path',
      'duplicates entries[0].path',
    ],
    [[{ path: 'a', size: -1, digest: D1 }], 'entries[0].size', '-1'],
    [[{ path: 'a', size: 0.5, digest: D1 }], 'entries[0].size', '0.5'],
    [[{ path: 'a', size: 2 ** 53, digest: D1 }], 'entries[0].size', 'safe integer'],
    [[{ path: 'a', size: 0, digest: 'sha256:abc' }], 'entries[0].digest', '"sha256:abc"'],
    [
      [{ path: 'a', size: 10, digest: D1, parts: { size: 4, digests: [D1, D2] } }],
      'entries[0].parts.digests',
      'expected ceil(size / parts.size) = 3',
    ],
    [
      [{ path: 'a', size: 1, digest: D1, parts: { size: 4, digests: [B3] } }],
      'entries[0].parts.digests[0]',
      'algorithm sha256',
    ],
    [
      [{ path: 'a', size: 1, digest: D1, parts: { size: 0, digests: [] } }],
      'entries[0].parts.size',
      'positive',
    ],
    [[{ path: 'a', size: 1, digest: D1, mtime: 1.5 }], 'entries[0].mtime', '1.5'],
  ])('refuses bad entries naming the field (%#)', (entries, field, detail) => {
    const err = thrown(() => createManifest(entries as Entry[]));
    expect(err.code).toBe('FERRY_MANIFEST_INVALID');
    expect(err.message).toContain(field);
    expect(err.message).toContain(detail);
  });

  it('refuses a bad created time and non-string meta', () => {
    expect(thrown(() => createManifest([], { created: 'yesterday' })).message).toContain('created');
    const meta = { n: 1 } as unknown as Record<string, string>;
    expect(thrown(() => createManifest([], { meta })).message).toContain('meta["n"]');
  });
});

describe('encodeManifest', () => {
  it('writes sorted keys, sorted entries, no whitespace and no undefined fields', () => {
    const b: Entry = { path: 'b', size: 3, digest: D2 };
    // As JavaScript, or TypeScript without exactOptionalPropertyTypes, may pass it.
    Object.assign(b, { etag: undefined });
    const text = encodeManifest({
      version: 1,
      meta: { z: '1', a: '2' },
      entries: [b, { path: 'a', size: 2, digest: D1, parts: { size: 2, digests: [D1] }, mtime: 7 }],
    });
    expect(text).toBe(
      `{"entries":[{"digest":"${D1}","mtime":7,"parts":{"digests":["${D1}"],"size":2},"path":"a","size":2},` +
        `{"digest":"${D2}","path":"b","size":3}],"meta":{"a":"2","z":"1"},"version":1}`,
    );
  });

  it('round-trips through parseManifest and is a fixed point', () => {
    fc.assert(
      fc.property(manifestArb, (m) => {
        const text = encodeManifest(m);
        const parsed = parseManifest(text);
        expect(encodeManifest(parsed)).toBe(text);
        expect(parsed.entries.map((e) => e.path)).toEqual(
          m.entries.map((e) => e.path).sort(compareUtf8),
        );
        expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(parsed)));
      }),
    );
  });
});

describe('versionIdOf', () => {
  it('is sha256 of the canonical bytes, even for blake3 content', () => {
    const m = createManifest([{ path: 'a', size: 0, digest: B3 }]);
    const id = versionIdOf(m);
    expect(id).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(id).toBe(`sha256:${createHash('sha256').update(encodeManifest(m)).digest('hex')}`);
  });

  it('does not depend on the order of entries or meta keys', () => {
    fc.assert(
      fc.property(manifestArb, fc.integer(), (m, seed) => {
        const reordered = { ...m, entries: shuffled(m.entries, seed) };
        if (m.meta !== undefined) {
          reordered.meta = Object.fromEntries(shuffled(Object.entries(m.meta), seed));
        }
        expect(versionIdOf(reordered)).toBe(versionIdOf(m));
      }),
    );
  });

  it('changes with any entry', () => {
    fc.assert(
      fc.property(entriesArb, (entries) => {
        if (entries.length === 0) return;
        const m = createManifest(entries);
        const [first, ...rest] = m.entries;
        if (first === undefined) return;
        const { parts: _, ...unparted } = first;
        const bumped = createManifest([{ ...unparted, size: first.size + 1 }, ...rest]);
        expect(versionIdOf(bumped)).not.toBe(versionIdOf(m));
      }),
    );
  });
});

describe('parseManifest', () => {
  const good = { version: 1, entries: [{ path: 'a', size: 1, digest: D1 }] };

  it('accepts bytes and any JSON layout', () => {
    const bytes = new TextEncoder().encode(JSON.stringify(good, null, 2));
    expect(parseManifest(bytes).entries).toEqual(good.entries);
  });

  it.each([
    ['{', 'not valid JSON'],
    ['[]', 'manifest must be an object'],
    [JSON.stringify({ ...good, version: 2 }), 'version must be 1, got 2'],
    [JSON.stringify({ entries: [] }), 'version must be 1, got undefined'],
    [JSON.stringify({ ...good, extra: true }), 'extra is not a known field'],
    [JSON.stringify({ version: 1, entries: {} }), 'entries must be an array'],
    [
      JSON.stringify({ version: 1, entries: [{ ...good.entries[0], x: 1 }] }),
      'entries[0].x is not a known field',
    ],
    [
      JSON.stringify({ version: 1, entries: [{ path: 'a', size: '1', digest: D1 }] }),
      'entries[0].size',
    ],
    [
      JSON.stringify({ version: 1, entries: [{ path: '/a', size: 1, digest: D1 }] }),
      'entries[0].path',
    ],
    [
      JSON.stringify({
        version: 1,
        entries: [{ path: 'a', size: 1, digest: `sha1:${'a'.repeat(40)}` }],
      }),
      'entries[0].digest',
    ],
    [
      JSON.stringify({
        version: 1,
        entries: [
          good.entries[0],
          { path: 'b', size: 1, digest: D1 },
          { path: 'c', size: -5, digest: D1 },
        ],
      }),
      'entries[2].size must be a non-negative safe integer, got -5',
    ],
    [
      JSON.stringify({ version: 1, entries: [{ path: 'a', size: 1, digest: D1, etag: 5 }] }),
      'entries[0].etag',
    ],
    [
      JSON.stringify({ version: 1, entries: [{ path: '.ferry/db/CURRENT', size: 1, digest: D1 }] }),
      'entries[0].path ".ferry/db/CURRENT" is inside .ferry/',
    ],
    [
      JSON.stringify({ version: 1, entries: [{ path: '.FeRRy/x', size: 1, digest: D1 }] }),
      'entries[0].path ".FeRRy/x" is inside .ferry/',
    ],
    [
      JSON.stringify({
        version: 1,
        entries: [{ path: 'huge.bin', size: 2 ** 53 - 1, digest: D1 }],
      }),
      'entries[0].size 9007199254740991 bytes is more than any store holds',
    ],
  ])('refuses %s naming the field and the origin', (text, reason) => {
    const err = thrown(() => parseManifest(text, 's3://bucket/.ferry/manifests/x.json'));
    expect(err.code).toBe('FERRY_MANIFEST_INVALID');
    expect(err.message).toContain(reason);
    expect(err.message).toContain('s3://bucket/.ferry/manifests/x.json');
    expect(err.key).toBe('s3://bucket/.ferry/manifests/x.json');
  });

  it('keeps where a parts layout stores its content, and refuses any other place', () => {
    const parted = {
      version: 1,
      layout: 'parts',
      entries: [{ path: 'a', size: 1, digest: D1, parts: { size: 16, digests: [D2] } }],
    };
    for (const store of ['./', '../', '../../']) {
      const manifest = parseManifest(JSON.stringify({ ...parted, store }));
      expect(manifest.store).toBe(store);
      expect(encodeManifest(manifest)).toContain(`"store":"${store}"`);
    }
    // Where the content is belongs to the version: another store is another version id.
    expect(versionIdOf(createManifest(parted.entries, { layout: 'parts', store: '../' }))).not.toBe(
      versionIdOf(createManifest(parted.entries, { layout: 'parts' })),
    );
    for (const store of ['', '.', '..', '../x/', 'x/', '/', './../', '../'.repeat(33), 1]) {
      expect(thrown(() => parseManifest(JSON.stringify({ ...parted, store }))).message).toContain(
        'store must be "./" or "../" repeated',
      );
    }
    expect(
      thrown(() => parseManifest(JSON.stringify({ ...good, store: '../' }))).message,
    ).toContain('store goes with layout "parts"');
  });

  it('refuses more entries than any model has before looking at them', () => {
    const text = JSON.stringify({ version: 1, entries: new Array(1_000_001).fill(0) });
    const err = thrown(() => parseManifest(text));
    expect(err.message).toContain('entries lists 1000001 files, more than 1000000');
  });

  it('refuses bytes that are not UTF-8', () => {
    const err = thrown(() => parseManifest(new Uint8Array([0x7b, 0xff, 0x7d]), 'm.json'));
    expect(err.code).toBe('FERRY_MANIFEST_INVALID');
    expect(err.message).toBe('invalid manifest m.json: not valid UTF-8');
  });
});

describe('parseManifestById', () => {
  it('rebuilds exactly what parseManifest would from canonical bytes under their id', () => {
    fc.assert(
      fc.property(manifestArb, (m) => {
        const text = encodeManifest(m);
        expect(parseManifestById(text, versionIdOf(m))).toEqual(parseManifest(text));
      }),
      { numRuns: 50 },
    );
  });

  it('validates in full bytes that do not hash to the id', () => {
    const m = createManifest([{ path: 'a', size: 1, digest: D1 }]);
    const id = versionIdOf(m);
    const corrupt = encodeManifest(m).replace('"a"', '"../a"');
    expect(thrown(() => parseManifestById(corrupt, id, 'store')).code).toBe(
      'FERRY_MANIFEST_INVALID',
    );
    const other = encodeManifest(createManifest([{ path: 'b', size: 2, digest: D2 }]));
    expect(parseManifestById(other, id).entries[0]?.path).toBe('b');
  });
});

describe('validateRef', () => {
  it('accepts ref names', () => {
    for (const r of ['v3', 'latest', 'a.b_c-D', 'x'.repeat(128), '...'])
      expect(validateRef(r)).toBe(r);
  });

  it.each(['', '.', '..', 'a/b', 'a b', 'x'.repeat(129), 'é', 'a\0'])('refuses %j', (r) => {
    const err = thrown(() => validateRef(r));
    expect(err.code).toBe('FERRY_BAD_REF');
    expect(err.message).toContain(JSON.stringify(r).slice(0, 20));
  });

  it('says a shortened version id is not whole, and how to find the whole one', () => {
    const err = thrown(() => validateRef('sha256:a87b91ae35cb'));
    expect(err).toMatchObject({ code: 'FERRY_BAD_REF', key: 'sha256:a87b91ae35cb' });
    expect(err.message).toBe('"sha256:a87b91ae35cb" is not a whole version id');
    expect(err.hint).toContain('64 hex digits');
  });
});

describe('isVersionId', () => {
  it('is what versionIdOf makes, and nothing else', () => {
    expect(isVersionId(versionIdOf(createManifest([])))).toBe(true);
    for (const s of [
      'sha256:abc',
      `blake3:${'0'.repeat(64)}`,
      `sha256:${'A'.repeat(64)}`,
      'v1',
      7,
    ]) {
      expect(isVersionId(s), String(s)).toBe(false);
    }
  });
});
