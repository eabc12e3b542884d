import { createHash } from 'node:crypto';
import { isDigest, partCount } from './digest.js';
import { FerryError } from './errors.js';
import { compareUtf8, isReservedPath, normalizePath } from './paths.js';
import type { Entry, Manifest, PartList, Ref, VersionId } from './types.js';

const MANIFEST_KEYS = new Set(['version', 'entries', 'created', 'meta', 'layout', 'store']);
const ENTRY_KEYS = new Set(['path', 'size', 'digest', 'parts', 'etag', 'mtime']);
/**
 * The largest file a manifest may list: S3's largest object. A larger size is a hostile or
 * broken manifest, and taking it at its word would size part tables and partial files by it.
 */
export const MAX_FILE_SIZE = 5 * 2 ** 40;
/**
 * The most entries a manifest may list: far beyond any model (a million files), and a
 * bound on what one hostile manifest can make a pull plan for.
 */
export const MAX_ENTRIES = 1_000_000;
const PART_KEYS = new Set(['size', 'digests']);
const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const REF = /^[A-Za-z0-9._-]{1,128}$/;
/**
 * A store relative to its prefix: the prefix itself or a folder above it, never beside or
 * below it, and not absurdly far up (a bucket or a file system is not 32 folders deep).
 */
const STORE = /^(\.\/|(\.\.\/){1,32})$/;

/** Raised on the first invalid field; `field` is its JSON path, e.g. `entries[3].size`. */
class Invalid extends Error {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field} ${reason}`);
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function show(value: unknown): string {
  if (value === undefined) return 'undefined';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function checkKeys(value: Record<string, unknown>, allowed: Set<string>, field: string): void {
  for (const key in value) {
    if (!allowed.has(key)) {
      throw new Invalid(field === '' ? key : `${field}.${key}`, 'is not a known field');
    }
  }
}

function checkSafeInteger(value: unknown, field: string, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    const what = min > 0 ? 'a positive safe integer' : 'a non-negative safe integer';
    throw new Invalid(field, `must be ${what}, got ${show(value)}`);
  }
  return value;
}

function checkDigest(value: unknown, field: string): string {
  if (typeof value !== 'string') throw new Invalid(field, `must be a string, got ${show(value)}`);
  if (!isDigest(value)) {
    throw new Invalid(
      field,
      `must be sha256:<64 lowercase hex> or blake3:<64 lowercase hex>, got ${show(value)}`,
    );
  }
  return value;
}

function checkParts(value: unknown, field: string, size: number, digest: string): PartList {
  if (!isRecord(value)) throw new Invalid(field, `must be an object, got ${show(value)}`);
  checkKeys(value, PART_KEYS, field);
  const partSize = checkSafeInteger(value.size, `${field}.size`, 1);
  if (!Array.isArray(value.digests)) {
    throw new Invalid(`${field}.digests`, `must be an array, got ${show(value.digests)}`);
  }
  const expected = partCount(size, partSize);
  if (value.digests.length !== expected) {
    throw new Invalid(
      `${field}.digests`,
      `has ${value.digests.length} digests, expected ceil(size / parts.size) = ${expected}`,
    );
  }
  // Both algorithms' names are six letters: the first seven characters name it and the colon.
  const algorithm = digest.slice(0, 7);
  const digests: string[] = value.digests;
  for (let i = 0; i < digests.length; i++) {
    const d = checkDigest(digests[i], `${field}.digests[${i}]`);
    if (!d.startsWith(algorithm)) {
      throw new Invalid(
        `${field}.digests[${i}]`,
        `must use the entry's algorithm ${algorithm.slice(0, -1)}`,
      );
    }
  }
  return { size: partSize, digests: digests.slice() };
}

function checkEntry(value: unknown, field: string): Entry {
  if (!isRecord(value)) throw new Invalid(field, `must be an object, got ${show(value)}`);
  checkKeys(value, ENTRY_KEYS, field);
  if (typeof value.path !== 'string') {
    throw new Invalid(`${field}.path`, `must be a string, got ${show(value.path)}`);
  }
  try {
    normalizePath(value.path);
  } catch (err) {
    throw new Invalid(`${field}.path`, `is invalid: ${(err as Error).message}`);
  }
  if (isReservedPath(value.path)) {
    throw new Invalid(
      `${field}.path`,
      `${show(value.path)} is inside .ferry/, which is ferry's own`,
    );
  }
  const size = checkSafeInteger(value.size, `${field}.size`, 0);
  if (size > MAX_FILE_SIZE) {
    throw new Invalid(`${field}.size`, `${size} bytes is more than any store holds (5 TiB)`);
  }
  const digest = checkDigest(value.digest, `${field}.digest`);
  const entry: Entry = { path: value.path, size, digest };
  if (value.parts !== undefined)
    entry.parts = checkParts(value.parts, `${field}.parts`, size, digest);
  if (value.etag !== undefined) {
    if (typeof value.etag !== 'string') {
      throw new Invalid(`${field}.etag`, `must be a string, got ${show(value.etag)}`);
    }
    entry.etag = value.etag;
  }
  if (value.mtime !== undefined) {
    // Integers only: a fractional mtime (fs.Stats#mtimeMs) would make the canonical bytes
    // depend on each language's float formatting. Use Math.trunc(stats.mtimeMs).
    entry.mtime = checkSafeInteger(value.mtime, `${field}.mtime`, 0);
  }
  return entry;
}

function checkManifest(value: unknown): Manifest {
  if (!isRecord(value)) throw new Invalid('manifest', `must be an object, got ${show(value)}`);
  checkKeys(value, MANIFEST_KEYS, '');
  if (value.version !== 1) {
    throw new Invalid('version', `must be 1, got ${show(value.version)}`);
  }
  if (!Array.isArray(value.entries)) {
    throw new Invalid('entries', `must be an array, got ${show(value.entries)}`);
  }
  if (value.entries.length > MAX_ENTRIES) {
    throw new Invalid('entries', `lists ${value.entries.length} files, more than ${MAX_ENTRIES}`);
  }
  const entries = value.entries.map((e: unknown, i: number) => checkEntry(e, `entries[${i}]`));
  entries.sort((a, b) => compareUtf8(a.path, b.path));
  // Sorted, two entries of one path are neighbours; the input order names them.
  for (let i = 1; i < entries.length; i++) {
    const path = (entries[i] as Entry).path;
    if (path === (entries[i - 1] as Entry).path) {
      const input = (value.entries as Entry[]).map((e) => e.path);
      const first = input.indexOf(path);
      const second = input.indexOf(path, first + 1);
      throw new Invalid(
        `entries[${second}].path`,
        `duplicates entries[${first}].path ${show(path)}`,
      );
    }
  }
  const manifest: Manifest = { version: 1, entries };
  if (value.layout !== undefined) {
    if (value.layout !== 'parts') {
      throw new Invalid('layout', `must be "parts" when present, got ${show(value.layout)}`);
    }
    const index = entries.findIndex((e) => e.size > 0 && e.parts === undefined);
    if (index !== -1) {
      throw new Invalid(`entries[${index}].parts`, 'is required: the content is stored by part');
    }
    manifest.layout = 'parts';
  }
  if (value.store !== undefined) {
    if (typeof value.store !== 'string' || !STORE.test(value.store)) {
      throw new Invalid(
        'store',
        `must be "./" or "../" repeated (1 to 32 times), got ${show(value.store)}`,
      );
    }
    if (manifest.layout !== 'parts') {
      throw new Invalid('store', 'goes with layout "parts": only parts are kept in a store');
    }
    manifest.store = value.store;
  }
  if (value.created !== undefined) {
    if (typeof value.created !== 'string' || !ISO_8601.test(value.created)) {
      throw new Invalid('created', `must be an ISO 8601 date-time, got ${show(value.created)}`);
    }
    manifest.created = value.created;
  }
  if (value.meta !== undefined) {
    if (!isRecord(value.meta))
      throw new Invalid('meta', `must be an object, got ${show(value.meta)}`);
    const meta: Record<string, string> = {};
    for (const [key, v] of Object.entries(value.meta)) {
      if (typeof v !== 'string') {
        throw new Invalid(`meta[${JSON.stringify(key)}]`, `must be a string, got ${show(v)}`);
      }
      meta[key] = v;
    }
    manifest.meta = meta;
  }
  return manifest;
}

function validate(value: unknown, origin: string | undefined): Manifest {
  try {
    return checkManifest(value);
  } catch (err) {
    if (!(err instanceof Invalid)) throw err;
    throw invalid(`${err.field} ${err.reason}`, origin);
  }
}

function invalid(reason: string, origin: string | undefined, cause?: unknown): FerryError {
  const where = origin === undefined ? '' : ` ${origin}`;
  return new FerryError('FERRY_MANIFEST_INVALID', `invalid manifest${where}: ${reason}`, {
    cause,
    key: origin,
    hint: 'the manifest is corrupt or was written by another tool or a newer ferry; republish it',
  });
}

/**
 * Builds a manifest from entries: validates every field as `parseManifest` does and sorts
 * the entries by path in the byte order of their UTF-8 encoding (code point order), which
 * is the order of the canonical encoding. The input array is not modified.
 *
 * @throws FerryError `FERRY_MANIFEST_INVALID` naming the field (`entries[i]` counts in the
 * input order), e.g. a bad path, a duplicate path, a negative size, a malformed digest or a
 * part count that is not `ceil(size / parts.size)`.
 */
export function createManifest(
  entries: Entry[],
  extra: {
    created?: string;
    meta?: Record<string, string>;
    layout?: 'parts';
    store?: string;
  } = {},
): Manifest {
  return validate(
    {
      version: 1,
      entries,
      created: extra.created,
      meta: extra.meta,
      layout: extra.layout,
      store: extra.store,
    },
    undefined,
  );
}

// Keys sorted by UTF-8 bytes at every level; undefined members are left out like JSON does.
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (isRecord(value)) {
    const members = Object.keys(value)
      .filter((k) => value[k] !== undefined)
      .sort(compareUtf8)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`);
    return `{${members.join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * The canonical encoding of a manifest: JSON without whitespace, object keys sorted
 * recursively and entries sorted by path (both by UTF-8 bytes), fields that are
 * `undefined` left out, only the fields the format knows. Equal manifests give equal
 * strings, whatever the order they were built in.
 *
 * @throws FerryError `FERRY_MANIFEST_INVALID` when `m` is not a valid manifest.
 */
export function encodeManifest(m: Manifest): string {
  return canonicalJson(validate(m, undefined));
}

/**
 * Parses and fully validates a manifest; the result has its entries sorted by path.
 * `origin` (a file path or object key) is put in error messages and in the error's `key`.
 * Any JSON layout is accepted; only the decoded values count.
 *
 * @throws FerryError `FERRY_MANIFEST_INVALID` naming `origin` and the field, e.g.
 * `entries[3].size`: not UTF-8 or not JSON, unknown `version`, unknown keys, bad or
 * duplicate paths, sizes that are negative, fractional or above 2^53-1, malformed digests,
 * or a part list whose length is not `ceil(size / parts.size)`.
 */
export function parseManifest(text: string | Uint8Array, origin?: string): Manifest {
  let json: string;
  try {
    json = typeof text === 'string' ? text : new TextDecoder('utf-8', { fatal: true }).decode(text);
  } catch (err) {
    throw invalid('not valid UTF-8', origin, err);
  }
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    throw invalid(`not valid JSON (${(err as Error).message})`, origin, err);
  }
  return validate(value, origin);
}

/**
 * A manifest kept by its version id (the cache's store). Bytes that still hash to `id` are
 * the canonical encoding of a manifest that was validated before it was encoded
 * (`encodeManifest`), so JSON.parse alone rebuilds it: validating 100k entries again cost
 * a warm start about as much as parsing them. Other bytes are parsed and validated in full.
 *
 * @throws FerryError `FERRY_MANIFEST_INVALID` as `parseManifest`, for bytes that do not hash
 * to `id` and are not a valid manifest.
 */
export function parseManifestById(text: string, id: VersionId, origin?: string): Manifest {
  if (versionIdOfEncoded(text) === id) return JSON.parse(text) as Manifest;
  return parseManifest(text, origin);
}

/**
 * The version id of a manifest: always `sha256:<hex>` of its canonical UTF-8 bytes, whatever
 * algorithm its content digests use, so ids compare across algorithms.
 *
 * @throws FerryError `FERRY_MANIFEST_INVALID` when `m` is not a valid manifest.
 */
const VERSION_ID = /^sha256:[0-9a-f]{64}$/;

/** Whether `s` is a version id as `versionIdOf` makes them: `sha256:` and 64 lowercase hex. */
export function isVersionId(s: unknown): s is VersionId {
  return typeof s === 'string' && VERSION_ID.test(s);
}

export function versionIdOf(m: Manifest): VersionId {
  return versionIdOfEncoded(encodeManifest(m));
}

/** The version id of a manifest already in its canonical encoding (`encodeManifest`'s output). */
export function versionIdOfEncoded(canonical: string): VersionId {
  return `sha256:${createHash('sha256').update(canonical, 'utf8').digest('hex')}`;
}

/**
 * Checks a ref name: 1 to 128 of `A-Z a-z 0-9 . _ -`, and not `.` or `..`, so that it is
 * safe as a file name and an object key (`.ferry/refs/<name>`).
 *
 * @throws FerryError `FERRY_BAD_REF` naming the ref and the rule.
 */
export function validateRef(name: string): Ref {
  if (typeof name === 'string' && /^(sha256|blake3):/.test(name)) {
    // Shortened as ferry prints it: the whole id is what names a version.
    throw new FerryError('FERRY_BAD_REF', `${show(name)} is not a whole version id`, {
      key: name,
      hint: 'A version id is sha256: and 64 hex digits; `ferry refs <source>` and `ferry status --json` print them whole.',
    });
  }
  if (typeof name !== 'string' || !REF.test(name) || name === '.' || name === '..') {
    throw new FerryError(
      'FERRY_BAD_REF',
      `invalid ref ${show(name)}: use 1 to 128 of A-Z a-z 0-9 . _ -, not "." or ".."`,
      {
        key: typeof name === 'string' ? name : undefined,
        hint: 'Name refs like v3, latest or 2026-12-01 (letters, digits, ".", "_", "-").',
      },
    );
  }
  return name;
}
