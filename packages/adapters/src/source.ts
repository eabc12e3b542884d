import type { Readable } from 'node:stream';
import type { S3ReadGrant } from './s3-direct-get.js';

/** One object as a listing or a stat reports it. */
export interface ObjectInfo {
  /** Key relative to the source's root, `/`-separated, checked with `normalizePath`. */
  key: string;
  /** Size in bytes. */
  size: number;
  /** Strong entity tag (quotes kept, as the server sent it), when the origin has one. */
  etag?: string;
  lastModified?: Date;
}

/** What a source can do; callers check these instead of catching FERRY_UNSUPPORTED. */
export interface SourceCapabilities {
  /** `list()` works (S3, local). HTTP cannot list; it reads a published manifest instead. */
  list: boolean;
  /** `read()` honours `start`/`end` without reading the whole object. */
  rangeReads: boolean;
  /** `write()` and `writeText()` work. */
  write: boolean;
}

/** Counters a source keeps so callers can report and tests can assert request counts. */
export interface SourceMetrics {
  /** Requests sent (HTTP requests; for a local source, opens and listings). */
  requests: number;
  /** Body bytes delivered by `read()` and `readText()`. */
  bytesRead: number;
}

// Option fields that may be `undefined` count as absent: callers pass their own optional
// values (a signal, a range end) straight through.
export interface SignalOptions {
  signal?: AbortSignal | undefined;
}

export interface ReadTextOptions extends SignalOptions {
  /** Refuse a body larger than this, without reading past it. @default 256 MiB */
  maxBytes?: number | undefined;
}

export interface ReadOptions extends SignalOptions {
  /** First byte to read. @default 0 */
  start?: number | undefined;
  /** One past the last byte to read (exclusive, like `slice`). @default the object's size */
  end?: number | undefined;
  /**
   * ETag (or version) the object must still have; when it changed the read fails with
   * `FERRY_SOURCE_CHANGED`, so the parts of one file all come from one object.
   */
  ifMatch?: string | undefined;
}

/**
 * A body as the origin sent it, status and range headers already checked, its bytes not yet
 * counted: what `readRange` consumes directly, without a stream wrapped around it.
 */
export interface OpenedRange {
  /** The raw body (a response or a file stream). Destroying it releases the socket or file. */
  body: Readable;
  /** Exactly how many bytes the body must deliver; `undefined` when the origin did not say. */
  length: number | undefined;
  /** Maps an error of `body` (reset, premature close) to the error callers see. */
  mapError(error: unknown): Error;
  /** The error for a body that ended after `received` of `length` bytes. */
  shortError(received: number, length: number): Error;
  /** The error for a body that delivered more than `length` bytes. */
  longError(length: number): Error;
  /**
   * Present when the body can lend its chunks: after this call each chunk's memory holds the
   * next read once its 'data' listener returned (see `RangeReadOptions.transientChunks`).
   */
  lend?: () => void;
}

export interface WriteOptions extends SignalOptions {
  /** Exact body size in bytes; large bodies are uploaded in parts. */
  size: number;
}

/**
 * An origin ferry reads files from (and publishes to, when `capabilities.write`).
 * Every key is relative to the root the source was opened on.
 */
export interface Source {
  /** The URI the source was opened with, normalised (`s3://bucket/prefix`, `https://…`, `file:///…`). */
  readonly uri: string;
  readonly capabilities: SourceCapabilities;
  readonly metrics: SourceMetrics;

  /** Objects under `prefix` (relative to the root), in key order, paginated underneath. */
  list(prefix?: string, options?: SignalOptions): AsyncIterable<ObjectInfo>;
  /** Size and ETag of one object; `FERRY_NOT_FOUND` when absent. */
  stat(key: string, options?: SignalOptions): Promise<ObjectInfo>;
  /** Exactly the bytes `[start, end)` of the object; a short body is an error, not a short read. */
  read(key: string, options?: ReadOptions): Promise<Readable>;
  /**
   * The response for `[start, end)` with its headers checked and its body left raw: the
   * caller counts the bytes (`readRange` does). `read()` is this plus a `CheckedBody`.
   */
  openRange(key: string, options?: ReadOptions): Promise<OpenedRange>;
  /** A small UTF-8 object (manifests, refs); larger than `maxBytes` is FERRY_BAD_RESPONSE. */
  readText(key: string, options?: ReadTextOptions): Promise<string>;
  /** Writes a small UTF-8 object. */
  writeText(key: string, text: string, options?: SignalOptions): Promise<void>;
  /** Uploads a body of `options.size` bytes (multipart for large ones). */
  write(
    key: string,
    body: Readable | Uint8Array,
    options: WriteOptions,
  ): Promise<{ etag?: string }>;
  /** Removes one object; a missing one is no error (S3 semantics). Needs `capabilities.write`. */
  delete(key: string, options?: SignalOptions): Promise<void>;
  /**
   * Copies the object at `from` to `to`, both under this source's root, inside the store:
   * no byte goes through this process on S3 (CopyObject, objects up to 5 GB). `to` appears
   * whole or not at all and is as new as a write (its modification time is now).
   * `FERRY_NOT_FOUND` when `from` is absent. Needs `capabilities.write`.
   */
  copy(from: string, to: string, options?: SignalOptions): Promise<void>;
  /**
   * Options that open this same source in another thread with what this one already
   * resolved (for S3: its address and current credentials, so a worker thread never loads
   * the SDK), and until when they hold (ms since the epoch) when they expire. They carry
   * secrets: pass them to threads, never persist them. Sources without this are opened
   * from their URI and options alone. A wrapper (`withRetry`) forwards it, as `undefined`
   * when the source it wraps has none.
   */
  handoff?: (() => Promise<Handoff>) | undefined;
  /** Releases sockets and handles. */
  close(): Promise<void>;
}

/** What `Source.handoff` gives another thread. */
export interface Handoff {
  options: SourceOptions;
  expiresAt?: number | undefined;
}

/**
 * Plain-data options for opening a source, so a worker thread can open its own copy of
 * the same source from what the main thread passes it.
 */
export interface SourceOptions {
  /** S3 endpoint URL. @default `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`, else AWS */
  endpoint?: string;
  /** S3 region. @default the SDK chain (`AWS_REGION`, profile), else `us-east-1` */
  region?: string;
  /** Path-style S3 addressing. @default true when a custom endpoint is set, else false */
  forcePathStyle?: boolean;
  /**
   * When the S3 client computes and validates request/response checksums.
   * `when-required` is needed for s3rver: with the SDK's default it stores uploads with the
   * `aws-chunked` framing in their bytes (the adapters README says why).
   * @default `FERRY_S3_CHECKSUMS`, else `when-required` with a custom endpoint, else `when-supported`
   */
  checksums?: 'when-required' | 'when-supported';
  /** Sockets kept open per origin. @default 64 */
  maxSockets?: number;
  /**
   * Most bytes one read of a plain-HTTP socket brings (ferry's own client, `RawHttpPool`):
   * a pull under a bandwidth limit reads less at a time, so that no burst overshoots it.
   * @default 1 MiB
   */
  readBufferBytes?: number;
  /** Per-request connect/response-headers timeout in milliseconds. @default 30000 */
  requestTimeoutMs?: number;
  /**
   * Keys asked for per S3 listing page (`MaxKeys`). Only tests and stores with small page
   * limits need to change it. @default 1000
   */
  listPageSize?: number;
  /**
   * Part size of multipart uploads to S3; bodies up to this size go in one PutObject.
   * A multipart `write()` buffers at most 4 parts. @default 8 MiB (more above 80 GB)
   */
  uploadPartSize?: number;
  /**
   * Static S3 credentials, for callers that hold them explicitly. Prefer the SDK chain
   * (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, `AWS_PROFILE`, instance roles).
   * @default the SDK's default credential chain
   */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /**
   * The S3 read path another thread resolved (from its `handoff()`): reads sign with it
   * and never load the SDK, unless S3 redirects them to another region. Holds secrets.
   */
  s3ReadGrant?: S3ReadGrant;
}
