import fc from 'fast-check';
import type { Entry, Manifest } from './types.js';

// Shared fast-check generators for the manifest tests (not part of the build).

const segment = fc
  .string({ minLength: 1, maxLength: 5, unit: 'grapheme' })
  .filter((s) => !/[/\\\0]/.test(s) && s !== '.' && s !== '..');

/** Valid relative paths, including non-ASCII ones. */
export const pathArb = fc
  .array(segment, { minLength: 1, maxLength: 3 })
  .map((segs) => segs.join('/'))
  .filter((p) => !/^[A-Za-z]:/.test(p));

/** A digest of the given algorithm with random hex. */
export const digestArb = (algorithm: 'sha256' | 'blake3' = 'sha256') =>
  fc
    .uint8Array({ minLength: 32, maxLength: 32 })
    .map((b) => `${algorithm}:${Buffer.from(b).toString('hex')}`);

/** A valid entry without its path; parts, when present, have the right count. */
export const entryBodyArb = fc
  .record({
    size: fc.integer({ min: 0, max: 5000 }),
    digest: digestArb(),
    partSize: fc.option(fc.integer({ min: 1000, max: 3000 }), { nil: undefined }),
    partDigests: fc.array(digestArb(), { minLength: 6, maxLength: 6 }),
    etag: fc.option(fc.string({ maxLength: 8 }), { nil: undefined }),
    mtime: fc.option(fc.nat(), { nil: undefined }),
  })
  .map(({ size, digest, partSize, partDigests, etag, mtime }): Omit<Entry, 'path'> => {
    const body: Omit<Entry, 'path'> = { size, digest };
    if (partSize !== undefined) {
      body.parts = { size: partSize, digests: partDigests.slice(0, Math.ceil(size / partSize)) };
    }
    if (etag !== undefined) body.etag = etag;
    if (mtime !== undefined) body.mtime = mtime;
    return body;
  });

/** Entries with unique paths, in no particular order. */
export const entriesArb = fc
  .uniqueArray(fc.tuple(pathArb, entryBodyArb), { selector: ([p]) => p, maxLength: 12 })
  .map((rows) => rows.map(([path, body]): Entry => ({ path, ...body })));

/** A valid manifest, entries in no particular order. */
export const manifestArb = fc
  .record({
    entries: entriesArb,
    created: fc.option(fc.constant('2026-11-27T12:00:00.000Z'), { nil: undefined }),
    meta: fc.option(fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 })), {
      nil: undefined,
    }),
  })
  .map(({ entries, created, meta }): Manifest => {
    const m: Manifest = { version: 1, entries };
    if (created !== undefined) m.created = created;
    if (meta !== undefined) m.meta = meta;
    return m;
  });
