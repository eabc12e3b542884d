import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { FerryError, throwIfAborted } from './errors.js';
import type { Digest, DigestAlgorithm, PartList } from './types.js';

/** Part size of new digests: 16 MiB, the unit of ranged transfers and of resumption. */
export const DEFAULT_PART_SIZE: number = 16 * 1024 * 1024;

/**
 * Algorithm of new digests. SHA-256 through node:crypto uses the CPU's SHA extensions and
 * outruns hash-wasm's BLAKE3 on the machines ferry is built on; `pnpm bench -- --scenario
 * hash` measures both (README "Hash benchmark").
 */
export const DEFAULT_ALGORITHM: DigestAlgorithm = 'sha256';

/** Domain separation of the part tree; a change of the rule needs a new tag. */
const PART_TREE_TAG = 'ferry-part-tree-v1';

// Reads of this size keep hashFile's memory at one chunk whatever the file or part size.
const READ_CHUNK = 1024 * 1024;

const DIGEST = /^(sha256|blake3):([0-9a-f]{64})$/;

/** Whether `d` is a digest as `parseDigest` takes them, without splitting it. */
export function isDigest(d: unknown): d is Digest {
  return typeof d === 'string' && DIGEST.test(d);
}

/**
 * Splits a digest into its algorithm and lowercase hex.
 *
 * @throws FerryError `FERRY_MANIFEST_INVALID` unless `d` is `sha256:` or `blake3:`
 * followed by exactly 64 lowercase hex digits.
 */
export function parseDigest(d: string): { algorithm: DigestAlgorithm; hex: string } {
  const match = typeof d === 'string' ? DIGEST.exec(d) : null;
  if (match === null) {
    throw new FerryError(
      'FERRY_MANIFEST_INVALID',
      `invalid digest ${JSON.stringify(d)}: expected sha256:<64 hex> or blake3:<64 hex>, lowercase`,
    );
  }
  return { algorithm: match[1] as DigestAlgorithm, hex: match[2] as string };
}

function checkPartSize(partSize: number): void {
  if (!Number.isSafeInteger(partSize) || partSize <= 0) {
    throw new RangeError(`invalid part size ${partSize}: must be a positive safe integer`);
  }
}

/**
 * Number of parts of a file of `size` bytes: `ceil(size / partSize)`, 0 for an empty file.
 *
 * @throws RangeError when `size` is not a non-negative safe integer or
 * `partSize` not a positive one.
 */
export function partCount(size: number, partSize: number): number {
  checkPartSize(partSize);
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new RangeError(`invalid size ${size}: must be a non-negative safe integer`);
  }
  return Math.ceil(size / partSize);
}

/**
 * The byte range `[start, end)` of part `index` of a file of `size` bytes cut every
 * `partSize` bytes; the last part is short, a part past the end is empty.
 */
export function partRange(
  size: number,
  partSize: number,
  index: number,
): { start: number; end: number } {
  const start = Math.min(size, index * partSize);
  return { start, end: Math.min(size, start + partSize) };
}

/** The length of part `index` (see `partRange`). */
export function partLength(size: number, partSize: number, index: number): number {
  const { start, end } = partRange(size, partSize, index);
  return end - start;
}

/** Hashes the bytes of one part as they stream in. */
export interface PartHasher {
  /** Adds bytes; the hasher does not keep a reference to `chunk`. */
  update(chunk: Uint8Array): void;
  /** The part's digest. Final: `update` and `digest` throw afterwards. */
  digest(): Digest;
}

interface RawHasher {
  update(chunk: Uint8Array): void;
  hex(): string;
}

async function createRawHasher(algorithm: DigestAlgorithm): Promise<RawHasher> {
  if (algorithm === 'sha256') {
    const hash = createHash('sha256');
    return { update: (chunk) => hash.update(chunk), hex: () => hash.digest('hex') };
  }
  if (algorithm === 'blake3') {
    // Loaded on first use: most runs only ever hash SHA-256, and start-up time counts.
    const { createBLAKE3 } = await import('./blake3-wasm.js');
    const hash = await createBLAKE3();
    return { update: (chunk) => hash.update(chunk), hex: () => hash.digest('hex') };
  }
  throw new FerryError(
    'FERRY_UNSUPPORTED',
    `unknown digest algorithm ${JSON.stringify(algorithm)}: use sha256 or blake3`,
  );
}

/**
 * A hasher for one part: SHA-256 through node:crypto, BLAKE3 through hash-wasm.
 *
 * @throws FerryError `FERRY_UNSUPPORTED` for any other algorithm.
 */
export async function createPartHasher(algorithm: DigestAlgorithm): Promise<PartHasher> {
  const raw = await createRawHasher(algorithm);
  let done = false;
  const ensureOpen = () => {
    if (done) throw new Error('PartHasher used after digest()');
  };
  return {
    update(chunk) {
      ensureOpen();
      raw.update(chunk);
    },
    digest() {
      ensureOpen();
      done = true;
      return `${algorithm}:${raw.hex()}`;
    },
  };
}

/**
 * The file digest from its part digests, in file order: the hash of
 * `"ferry-part-tree-v1\n<partSize>\n"` followed by the raw bytes of each part digest (see
 * `Digest`). An empty file has no parts and its digest is the hash of the header alone.
 *
 * @throws FerryError `FERRY_MANIFEST_INVALID` when a part digest is malformed or of another
 * algorithm; RangeError when `partSize` is not a positive safe integer.
 */
export async function combinePartDigests(
  algorithm: DigestAlgorithm,
  partSize: number,
  digests: Digest[],
): Promise<Digest> {
  checkPartSize(partSize);
  const raw = await createRawHasher(algorithm);
  raw.update(Buffer.from(`${PART_TREE_TAG}\n${partSize}\n`, 'utf8'));
  digests.forEach((d, i) => {
    const parsed = parseDigest(d);
    if (parsed.algorithm !== algorithm) {
      throw new FerryError(
        'FERRY_MANIFEST_INVALID',
        `part digest ${i} is ${parsed.algorithm}, expected ${algorithm}`,
      );
    }
    raw.update(Buffer.from(parsed.hex, 'hex'));
  });
  return `${algorithm}:${raw.hex()}`;
}

/** Options of `hashFile`. */
export interface HashFileOptions {
  /**
   * Part size in bytes.
   * @default DEFAULT_PART_SIZE (16 MiB)
   */
  partSize?: number;
  /**
   * Hash function.
   * @default DEFAULT_ALGORITHM
   */
  algorithm?: DigestAlgorithm;
  /** Stops reading; the promise then rejects with an AbortError whose cause is the reason. */
  signal?: AbortSignal;
}

/** What `hashFile` found. */
export interface FileDigest {
  /** The part-tree digest of the whole file. */
  digest: Digest;
  /** The digest of each part. */
  parts: PartList;
  /** Bytes read. */
  size: number;
}

/**
 * Reads a file once, front to back, and returns its part-tree digest and part digests.
 * Memory stays at one 1 MiB read buffer plus one hasher, whatever the file and part size.
 *
 * @throws FerryError `FERRY_IO` (with the file as `key` and the system error as `cause`)
 * when the file cannot be read; RangeError for a bad part size; AbortError when
 * `signal` aborts.
 */
export async function hashFile(path: string, options: HashFileOptions = {}): Promise<FileDigest> {
  const partSize = options.partSize ?? DEFAULT_PART_SIZE;
  const algorithm = options.algorithm ?? DEFAULT_ALGORITHM;
  const { signal } = options;
  checkPartSize(partSize);
  throwIfAborted(signal);
  const digests: Digest[] = [];
  let hasher = await createPartHasher(algorithm);
  let inPart = 0;
  let size = 0;
  try {
    // Breaking out of for-await (by the abort check throwing) destroys the stream.
    for await (const chunk of createReadStream(path, { highWaterMark: READ_CHUNK })) {
      throwIfAborted(signal);
      const bytes = chunk as Buffer;
      let offset = 0;
      while (offset < bytes.length) {
        const take = Math.min(bytes.length - offset, partSize - inPart);
        hasher.update(bytes.subarray(offset, offset + take));
        offset += take;
        inPart += take;
        size += take;
        if (inPart === partSize) {
          digests.push(hasher.digest());
          hasher = await createPartHasher(algorithm);
          inPart = 0;
        }
      }
    }
  } catch (err) {
    if (err instanceof FerryError) throw err;
    const reason = err instanceof Error ? err.message : String(err);
    throw new FerryError('FERRY_IO', `cannot read ${path}: ${reason}`, { cause: err, key: path });
  }
  if (inPart > 0) digests.push(hasher.digest());
  const digest = await combinePartDigests(algorithm, partSize, digests);
  return { digest, parts: { size: partSize, digests }, size };
}
