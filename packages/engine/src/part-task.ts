import type { SourceOptions } from '@ferry/adapters';
import type { Digest, DigestAlgorithm } from '@ferry/manifest';
import type { SerializedError } from './serialized-error.js';

interface TaskBase {
  /** First byte of the part. */
  start: number;
  /** One past its last byte. */
  end: number;
  algorithm: DigestAlgorithm;
  /** When known, the part must hash to this or the task fails with FERRY_INTEGRITY. */
  expectedDigest?: Digest;
}

interface WriteTaskBase extends TaskBase {
  /** Create (or truncate) `tmpPath` instead of writing into a preallocated file. */
  create: boolean;
}

/** Fetch `[start, end)` of a remote object into the same offsets of `tmpPath`, hashing it. */
export interface FetchTask extends WriteTaskBase {
  kind: 'fetch';
  uri: string;
  sourceOptions: SourceOptions;
  key: string;
  /** The file's path in the version, for messages (the object may be a part of it). */
  path: string;
  /**
   * The file offset at which the object `key` begins: 0 when the object is the whole file,
   * the part's own start when the object is the part (the `parts` layout). @default 0
   */
  keyOffset?: number;
  ifMatch?: string;
  tmpPath: string;
  /**
   * Base URLs of HTTP caches in front of the origin, tried in order before it for a part
   * object (`keyOffset` set): their copies are verified like the origin's.
   */
  mirrors?: string[];
  /** A body idle this long (and not hedged away) is read again from its last byte. */
  stallTimeoutMs?: number;
  /** A body idle this long while the rest of the pull moves is raced by a second request; 0: never. */
  hedgeAfterMs?: number;
  /** Also compute the MD5 of the part (a one-part file of a plain listing: its ETag). */
  md5?: boolean;
  /**
   * Bytes of the part already in `tmpPath` from an interrupted transfer: they are re-hashed
   * from the file and only the rest is fetched.
   */
  resumeFrom?: number;
  /** The part's index in the file's cuts sidecar (see part-cuts.ts), for a journaled file. */
  cuts?: number;
  /** Progress counter slot this task adds its bytes to. */
  slot: number;
}

/** Copy `[start, end)` of a local file into the same offsets of `tmpPath`, hashing it. */
export interface CopyTask extends WriteTaskBase {
  kind: 'copy';
  fromPath: string;
  tmpPath: string;
  slot: number;
}

/** Hash `[start, end)` of a local file. */
export interface HashTask extends TaskBase {
  kind: 'hash';
  path: string;
}

/** MD5 of a whole local file, to compare with an S3 single-part ETag. */
export interface Md5Task {
  kind: 'md5';
  path: string;
}

export type PartTask = FetchTask | CopyTask | HashTask | Md5Task;

export interface PartTaskResult {
  /** Digest of the part (for `md5`: the hex MD5 of the file). */
  digest: Digest;
  bytes: number;
  /** Hex MD5 of the bytes, when the task asked for it. */
  md5?: string;
  /** The file's mtime after the task's last write, when the task created the file (its only writer). */
  mtimeMs?: number;
  /** Bytes of the part that were already on disk (`resumeFrom`), re-hashed and not fetched. */
  kept?: number;
}

/** A task's result or error, with the read retries it took on the way. */
export type PartTaskOutcome = { retries: RetryNotice[] } & (
  | { ok: true; result: PartTaskResult }
  | { ok: false; error: SerializedError }
);

/** A read a worker retried; the pull turns these into `retry` events. */
export interface RetryNotice {
  key: string;
  attempt: number;
  code: string;
  message: string;
}

/** What the pool hands every worker at start-up. */
export interface PartWorkerData {
  /** Int32 per slot: bytes moved by the task running in that slot (wraps at 2 GiB, read as deltas). */
  progress: SharedArrayBuffer;
  /** Int32 [0]: set to 1 to make every running task stop at its next chunk. */
  control: SharedArrayBuffer;
  /** The bandwidth cap every worker books its received bytes against (`RatePacer`). */
  pace?: { shared: SharedArrayBuffer; bytesPerSecond: number };
}
