import { createReadStream } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import {
  type ObjectInfo,
  openSource,
  type Source,
  type SourceOptions,
  withRetry,
} from '@ferry/adapters';
import {
  checkCaseCollisions,
  createManifest,
  DEFAULT_ALGORITHM,
  DEFAULT_PART_SIZE,
  type Entry,
  encodeManifest,
  FerryError,
  isFerryError,
  type Manifest,
  throwIfAborted,
  type VersionId,
  validateRef,
  versionIdOf,
} from '@ferry/manifest';
import { hashLocalFile } from './local-hash.js';
import { PartPool } from './part-pool.js';
import { referencedParts } from './remote-admin.js';
import { manifestKey, PARTS_PREFIX, partKey, REMOTE_GRACE_MS, refKey } from './remote-version.js';
import { type LocalFile, walkFiles } from './walk-files.js';

export interface PublishOptions {
  /** The folder whose files make the version. */
  dir: string;
  /** Where to publish: `s3://bucket/prefix` or a local directory (or an opened Source). */
  dest: string | Source;
  sourceOptions?: SourceOptions;
  /** Ref to move to the new version once everything is uploaded. */
  ref: string;
  /** Part size of the part-tree digests. @default 16 MiB */
  partSize?: number;
  /** Uploads in flight at once. @default 4 */
  concurrency?: number;
  /** Worker threads for hashing. @default min(4, cores) */
  workers?: number;
  signal?: AbortSignal;
  onEvent?: (event: PublishEvent) => void;
}

export type PublishEvent =
  /** The folder was walked: this many files and bytes will be hashed. */
  | { type: 'hash-start'; files: number; bytes: number }
  | { type: 'file-hashed'; path: string; size: number }
  | { type: 'hashed'; files: number; bytes: number }
  | { type: 'upload-start'; path: string; size: number }
  | { type: 'upload-done'; path: string; size: number }
  | { type: 'skipped'; path: string; size: number }
  /** Published anyway, but worth knowing (two paths that differ only by case). */
  | { type: 'warning'; message: string };

export interface PublishResult {
  versionId: VersionId;
  ref: string;
  files: number;
  bytes: number;
  /** Files with at least one part uploaded. */
  uploadedFiles: number;
  /** Bytes of the parts uploaded: only content the destination did not hold. */
  uploadedBytes: number;
  durationMs: number;
}

/**
 * Publishes a folder as a version: hashes it in parallel, uploads every part the
 * destination does not hold yet as an immutable object named by its digest
 * (`.ferry/parts/<algorithm>/<hex>`), then writes the manifest (named by its own digest) and
 * moves the ref last. Nothing a published version needs is ever overwritten or deleted, so
 * every ref stays pullable; identical content is stored once across versions and folders;
 * a reader following the ref never sees a version whose parts are not all there.
 */
export async function publish(options: PublishOptions): Promise<PublishResult> {
  throwIfAborted(options.signal);
  const started = performance.now();
  const ref = validateRef(options.ref);
  const partSize = options.partSize ?? DEFAULT_PART_SIZE;
  const dest =
    typeof options.dest === 'string'
      ? withRetry(
          openSource(options.dest, {
            // A part object goes up in one PUT: it is small, and several go up at once.
            uploadPartSize: Math.max(partSize, 8 * 2 ** 20),
            ...options.sourceOptions,
          }),
        )
      : options.dest;
  try {
    if (!dest.capabilities.write) {
      throw new FerryError('FERRY_UNSUPPORTED', `cannot publish to ${dest.uri}: it is read-only`, {
        hint: 'Publish to an s3:// prefix or a local directory.',
      });
    }
    const files = await walkFiles(resolve(options.dir));
    try {
      checkCaseCollisions(files.map((f) => f.path));
    } catch (error) {
      // Linux and S3 tell the two apart; a pull onto macOS or Windows could not.
      if (!isFerryError(error, 'FERRY_BAD_PATH')) throw error;
      options.onEvent?.({
        type: 'warning',
        message: `${error.message}: this version cannot be pulled onto a case-insensitive file system (macOS, Windows)`,
      });
    }
    const pool = new PartPool({
      workers: options.workers ?? availableParallelism(),
      concurrency: 1,
    });
    let entries: Entry[];
    options.onEvent?.({
      type: 'hash-start',
      files: files.length,
      bytes: files.reduce((n, f) => n + f.size, 0),
    });
    try {
      entries = await Promise.all(
        files.map(async (f) => {
          const { digest, parts } = await hashLocalFile(
            pool,
            f.absPath,
            f.size,
            partSize,
            DEFAULT_ALGORITHM,
          );
          options.onEvent?.({ type: 'file-hashed', path: f.path, size: f.size });
          return { path: f.path, size: f.size, digest, parts };
        }),
      );
    } finally {
      await pool.destroy();
    }
    options.onEvent?.({
      type: 'hashed',
      files: entries.length,
      bytes: entries.reduce((n, e) => n + e.size, 0),
    });

    const present = await presentParts(dest, options.signal);
    const byPath = new Map(files.map((f) => [f.path, f]));
    const uploads = planUploads(entries, present);
    let uploadedBytes = 0;
    let next = 0;
    const uploader = async () => {
      while (next < uploads.parts.length) {
        throwIfAborted(options.signal);
        const part = uploads.parts[next++] as PartUpload;
        const file = byPath.get(part.entry.path) as LocalFile;
        const upload = uploads.byFile.get(part.entry.path) as FileUploads;
        if (upload.started++ === 0) {
          options.onEvent?.({ type: 'upload-start', path: part.entry.path, size: part.entry.size });
        }
        await dest.write(
          part.key,
          createReadStream(file.absPath, { start: part.start, end: part.end - 1 }),
          { size: part.end - part.start, signal: options.signal },
        );
        uploadedBytes += part.end - part.start;
        if (++upload.done === upload.total) {
          options.onEvent?.({ type: 'upload-done', path: part.entry.path, size: part.entry.size });
        }
      }
    };
    for (const entry of entries) {
      if (!uploads.byFile.has(entry.path)) {
        options.onEvent?.({ type: 'skipped', path: entry.path, size: entry.size });
      }
    }
    await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 4) }, uploader));
    const manifest: Manifest = createManifest(entries, { layout: 'parts' });
    const versionId = versionIdOf(manifest);
    throwIfAborted(options.signal);
    await dest.writeText(manifestKey(versionId), encodeManifest(manifest), {
      signal: options.signal,
    });
    // A `gc --remote` may have removed a part this publish found present and reused; from
    // now on the manifest protects its parts, so one more look puts back any that vanished.
    const still = await presentParts(dest, options.signal);
    const vanished = planUploads(entries, still);
    if (vanished.parts.length > 0) {
      uploads.parts.push(...vanished.parts);
      for (const [path, file] of vanished.byFile) {
        const known = uploads.byFile.get(path);
        if (known === undefined) uploads.byFile.set(path, file);
        else known.total += file.total;
      }
      await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 4) }, uploader));
    }
    await dest.writeText(refKey(ref), `${versionId}\n`, { signal: options.signal });
    return {
      versionId,
      ref,
      files: entries.length,
      bytes: entries.reduce((n, e) => n + e.size, 0),
      uploadedFiles: uploads.byFile.size,
      uploadedBytes,
      durationMs: Math.round(performance.now() - started),
    };
  } finally {
    if (typeof options.dest === 'string') await dest.close();
  }
}

interface PartUpload {
  entry: Entry;
  key: string;
  start: number;
  end: number;
}

interface FileUploads {
  total: number;
  started: number;
  done: number;
}

/**
 * The parts to upload: every part whose content-addressed key the destination lacks, once
 * (identical parts of several files, or of one file, go up once), in file order.
 */
function planUploads(
  entries: Entry[],
  present: Set<string>,
): { parts: PartUpload[]; byFile: Map<string, FileUploads> } {
  const parts: PartUpload[] = [];
  const byFile = new Map<string, FileUploads>();
  const queued = new Set(present);
  for (const entry of entries) {
    const list = entry.parts;
    if (list === undefined) continue;
    list.digests.forEach((digest, i) => {
      const key = partKey(digest);
      if (queued.has(key)) return;
      queued.add(key);
      const start = i * list.size;
      parts.push({ entry, key, start, end: Math.min(entry.size, start + list.size) });
      const file = byFile.get(entry.path) ?? { total: 0, started: 0, done: 0 };
      file.total++;
      byFile.set(entry.path, file);
    });
  }
  return { parts, byFile };
}

/**
 * The part objects a publish may reuse instead of uploading, from one listing of
 * `.ferry/parts/`: content named by its digest is never rewritten, so a listed part holds
 * its bytes. Reused are the parts some published ref needs (a `gc --remote` keeps them) and
 * the others while younger than half the grace period (so a gc cannot take them before this
 * publish's manifest protects them); older unreferenced ones are uploaded again, fresh. An
 * interrupted publish resumes from here too: a part cut short was written under a temporary
 * name (S3 multipart, the local source's temp file) and is never listed.
 */
async function presentParts(dest: Source, signal?: AbortSignal): Promise<Set<string>> {
  const present = new Set<string>();
  const freshSince = Date.now() - REMOTE_GRACE_MS / 2;
  const listed: ObjectInfo[] = [];
  try {
    for await (const object of dest.list(PARTS_PREFIX, { signal })) listed.push(object);
  } catch (error) {
    // A destination folder that does not exist yet holds nothing; writing creates it.
    if (isFerryError(error, 'FERRY_NOT_FOUND') && dest.uri.startsWith('file:')) return present;
    throw error;
  }
  const old = listed.filter((o) => (o.lastModified?.getTime() ?? Date.now()) < freshSince);
  const referenced = old.length > 0 ? await referencedParts(dest, signal) : new Set<string>();
  for (const object of listed) {
    const fresh = (object.lastModified?.getTime() ?? Date.now()) >= freshSince;
    if (fresh || referenced.has(object.key)) present.add(object.key);
  }
  return present;
}
