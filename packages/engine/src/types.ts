import type { Source, SourceOptions } from '@ferry/adapters';
import type { VersionId } from '@ferry/manifest';

/** How a pull decides that a file already in the cache is right. */
export type VerifyMode = 'size' | 'stat' | 'hash';

export interface PullOptions {
  /** `s3://bucket/prefix`, `https://host/path`, a local path, or an opened Source. */
  source: string | Source;
  /** Options for opening `source` when it is a string (endpoint, region…). */
  sourceOptions?: SourceOptions;
  /** Ref (or version id) of a published prefix. @default `latest` when the prefix is published */
  ref?: string;
  /** Cache root: files go to `<root>/<subdir>/`, ferry's state to `<root>/.ferry/`. */
  root: string;
  /**
   * Folder under `root` the files land in (`download_files_from`).
   * @default the source's prefix: `a/b` for `s3://bucket/a/b`, the last path segment for HTTP and local sources
   */
  subdir?: string;
  /** Ranged requests in flight at once, across all files. @default 16, or two per core above 8 cores (`defaultConcurrency`) */
  concurrency?: number;
  /**
   * Bytes per ranged request and per hashed part for a plain (unpublished) prefix; a
   * published manifest's own part size wins. Transfer buffers hold about
   * `concurrency × (socket buffer + 256 KiB)`, whatever the part size. @default 16 MiB
   */
  partSize?: number;
  /**
   * `size`: present with the right size is enough (the model.json rule).
   * `stat`: size and mtime match what ferry recorded after verifying (default; no reads).
   * `hash`: re-hash every present file.
   * @default 'stat'
   */
  verify?: VerifyMode;
  /**
   * Worker threads that fetch and hash parts; 0 runs them on the calling thread (its event
   * loop then also hashes and writes). A number given leaves the calling thread's event
   * loop free of that work. @default one thread per core, but no more than the transfer can
   * use (at least 256 MiB and two requests in flight each), the calling thread being one of
   * them: it runs its share of the parts beside one worker fewer, unless it has a plain
   * listing's MD5s to follow (`pullThreads`)
   */
  workers?: number;
  /**
   * Make each file durable (fdatasync) before it is renamed into place, so a power cut or
   * kernel crash cannot leave a recorded file incomplete. Costs the disk's write time on top
   * of the transfer (the kernel otherwise writes back in the background, as other tools
   * rely on). A killed process loses nothing either way, and a resume re-hashes the parts
   * its journal claims before trusting them. `bake` always makes its files durable.
   * @default false
   */
  durable?: boolean;
  /**
   * A body that delivers nothing for this long is read again from its last byte. With
   * several parts in flight a body idle for 2 s while the others flow is hedged long before
   * (a second request races it); this bounds a single stream, and a stalled origin.
   * @default 10000
   */
  stallTimeoutMs?: number;
  /**
   * A body that delivers nothing for this long while the rest of the pull moved at least
   * 4 MiB meanwhile is hedged: a second request for the rest of its part races it, and
   * whichever delivers next wins. A link slow for everyone never triggers it. 0 turns
   * hedging off. @default 2000
   */
  hedgeAfterMs?: number;
  /**
   * With `ref` a version id: the ref name that version was pulled under, recorded with the
   * folder (`resume` passes it, so a resumed folder keeps its ref). Ignored for ref names.
   */
  refName?: string;
  /**
   * Make no network request: serve the version the cache holds for `ref` (a ref pulled
   * before, or a version id), or fail naming what is missing. @default false
   */
  offline?: boolean;
  /**
   * When the source cannot be reached (refused, DNS, timeouts, 5xx after retries) and the
   * cache holds the whole version last pulled for `ref`, serve it with a `warning` event
   * instead of failing. @default true
   */
  fallback?: boolean;
  /**
   * Base URLs of HTTP caches or CDNs in front of the source, as the published prefix's URL
   * through each: content-addressed parts are read from them first, in order, and from the
   * source when they fail; every byte is verified either way. @default none
   */
  mirrors?: string[];
  /**
   * Globs selecting the files to pull (`*.safetensors`, `onnx/**`): a file is pulled when it
   * matches one of them. A glob without `/` matches file names in any folder; `*` stays
   * within a folder name, `**` crosses folders. The folder then holds that subset (and
   * loses files the new selection drops); the manifest still describes the whole version.
   * @default every file
   */
  include?: string[];
  /**
   * Exact paths of files to pull (`config.json`, `onnx/model.onnx`), alongside any `include`:
   * a path the version lacks is an error. @default none
   */
  only?: string[];
  /** Globs of files not to pull; an exclude wins over an include. @default none */
  exclude?: string[];
  /**
   * Bytes per second the whole pull may receive, across every request and worker (a shared
   * token bucket with no idle credit). @default no limit
   */
  bandwidthLimit?: number;
  /** Accept a source that holds no file (a typo'd prefix does too). @default false */
  allowEmpty?: boolean;
  /** Plan only: report what would be transferred, change nothing. @default false */
  dryRun?: boolean;
  /** Wait for another pull holding the root instead of failing with FERRY_STORE_LOCKED. @default true */
  waitForLock?: boolean;
  signal?: AbortSignal;
}

/** What a pull did, in its final event and as `pull()`'s result. */
export interface PullResult {
  /** The version now in place; absent only for a dry run of an unpublished prefix. */
  versionId?: VersionId;
  /** The directory the files are in (`<root>/<subdir>`). */
  dir: string;
  files: number;
  bytes: number;
  /** Bytes received from the source. */
  fetchedBytes: number;
  /** Bytes copied from files already in the cache instead of fetched. */
  reusedBytes: number;
  fetchedFiles: number;
  skippedFiles: number;
  /** Files the previous version had and this one lacks, removed. */
  removed: string[];
  /** Requests sent to the source (listing, manifests, ranges). */
  requests: number;
  /** Worker threads the pull started: 0 when its parts ran on the calling thread, or nothing moved. */
  workers: number;
  durationMs: number;
  dryRun: boolean;
}

export interface PlanSummary {
  fetch: { files: number; bytes: number };
  /** Part of `fetch` that resumes an interrupted transfer: bytes already on disk. */
  resumedBytes: number;
  reuse: { files: number; bytes: number };
  skip: { files: number; bytes: number };
  /**
   * Files present whose stat record did not vouch for them (none, or size or mtime changed
   * beyond what an image layer does), read and hashed to decide: a warm start has none.
   */
  hashed: { files: number; bytes: number };
  remove: { files: number };
}

/**
 * Bytes moved so far by a pull, a publish or a deep verify, sampled on a timer: every long
 * command reports progress in this one shape, so a front end renders it without arithmetic.
 */
export interface ProgressEvent {
  type: 'progress';
  transferredBytes: number;
  totalBytes: number;
  /** Bytes per second over the last few seconds. */
  rate: number;
  /** Seconds left at `rate`, undefined until known. */
  etaSeconds: number | undefined;
  /** Files in progress, with their own bytes. */
  active: Array<{ path: string; transferredBytes: number; totalBytes: number }>;
}

/** Progress of a pull, in order: resolved, plan, then file and progress events, then done. */
export type PullEvent =
  | {
      type: 'resolved';
      source: string;
      ref?: string;
      versionId?: VersionId;
      published: boolean;
      files: number;
      bytes: number;
    }
  | { type: 'waiting-for-lock'; holder: string }
  | { type: 'plan'; plan: PlanSummary }
  | { type: 'file-start'; path: string; size: number; bytesToFetch: number }
  | { type: 'file-done'; path: string; size: number; fetchedBytes: number; reusedBytes: number }
  | {
      type: 'retry';
      /** The file (or metadata key: ref, manifest, listing) whose read is retried. */
      path: string;
      /** Index of the part, for file reads. */
      part?: number;
      /** The attempt about to start; 0 for a hedge (a second request racing a stalled body). */
      attempt: number;
      code: string;
      message: string;
    }
  | ProgressEvent
  | { type: 'removed'; path: string }
  /** Something the user should know that did not stop the pull (e.g. served offline). */
  | { type: 'warning'; message: string }
  /** Dry runs only: what would happen to each file. */
  | {
      type: 'planned-file';
      path: string;
      action: 'fetch' | 'resume' | 'reuse' | 'skip' | 'remove';
      /** Bytes the action would move from the source (fetch, resume) or copy (reuse). */
      bytes: number;
    }
  | { type: 'done'; result: PullResult };
