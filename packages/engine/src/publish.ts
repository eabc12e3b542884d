import { createReadStream } from 'node:fs';
import { resolve } from 'node:path';
import {
  type ObjectInfo,
  openSource,
  parseSourceUri,
  type Source,
  type SourceOptions,
  withRetry,
} from '@ferry/adapters';
import {
  checkCaseCollisions,
  createManifest,
  DEFAULT_ALGORITHM,
  DEFAULT_PART_SIZE,
  type Digest,
  type Entry,
  encodeManifest,
  FerryError,
  isFerryError,
  isVersionId,
  type Manifest,
  partRange,
  throwIfAborted,
  type VersionId,
  validateRef,
  versionIdOf,
} from '@ferry/manifest';
import {
  ancestorUri,
  locateStore,
  prefixEntryKey,
  STORE_INFO_KEY,
  STORE_PARTS_PREFIX,
  segments,
  storeField,
  storePartKey,
} from './content-store.js';
import { hashLocalFile } from './local-hash.js';
import { hashingWorkers, PartPool } from './part-pool.js';
import { prefixView } from './prefix-view.js';
import { PartTally, PROGRESS_INTERVAL_MS, ProgressMeter } from './progress-meter.js';
import { referencedParts, storeUsers } from './remote-admin.js';
import {
  droppedKey,
  manifestKey,
  PARTS_PREFIX,
  partKey,
  REMOTE_GRACE_MS,
  refKey,
} from './remote-version.js';
import type { ProgressEvent } from './types.js';
import { type LocalFile, walkFiles } from './walk-files.js';

export interface PublishOptions {
  /** The folder whose files make the version. */
  dir: string;
  /** Where to publish: `s3://bucket/prefix` or a local directory (or an opened Source). */
  dest: string | Source;
  sourceOptions?: SourceOptions;
  /** Ref to move to the new version once everything is uploaded. */
  ref: string;
  /**
   * The store that keeps the parts, shared by every prefix published to it: `dest` itself
   * or a folder (or bucket) above it, given as a URI or local path like `dest`. It is
   * marked (`.ferry/store/info.json`), so later publishes below it find it on their own.
   * @default the nearest marked store at or above `dest`; else, for S3, the bucket; else (a
   * local folder) none: the prefix keeps its parts under its own `.ferry/parts/`
   */
  store?: string;
  /** Part size of the part-tree digests. @default 16 MiB */
  partSize?: number;
  /** Uploads in flight at once. @default 4 */
  concurrency?: number;
  /** Worker threads for hashing; 0: the calling thread. @default one per core, one per 256 MiB at most, none for one thread's worth (`hashingWorkers`) */
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
  /** Hashing, then uploading (of the bytes the store lacks), sampled on a timer. */
  | (ProgressEvent & { phase: 'hash' | 'upload' })
  /**
   * Where the parts go: a store shared by the prefixes published to it (`shared`), or the
   * destination's own `.ferry/parts/`.
   */
  | { type: 'store'; uri: string; shared: boolean }
  /** Published anyway, but worth knowing (two paths that differ only by case). */
  | { type: 'warning'; message: string };

export interface PublishResult {
  versionId: VersionId;
  ref: string;
  files: number;
  bytes: number;
  /** Files with at least one part uploaded (or copied into the store). */
  uploadedFiles: number;
  /** Bytes of the parts uploaded: only content the store did not hold. */
  uploadedBytes: number;
  /** Part objects uploaded (one PUT each). */
  uploadedParts: number;
  /**
   * Parts the destination held from before stores, copied into the store on the server
   * side (S3 CopyObject: no byte through this process) instead of uploaded.
   */
  copiedParts: number;
  copiedBytes: number;
  /** The store holding the version's parts (the destination itself when it keeps its own). */
  store: string;
  durationMs: number;
}

/**
 * Publishes a folder as a version: hashes it in parallel, uploads every part its store
 * does not hold yet as an immutable object named by its digest
 * (`<store>/.ferry/store/parts/<algorithm>/<hex>`; see `PublishOptions.store`), then writes
 * the manifest (named by its own digest, naming its store relative to `dest`) and moves
 * the ref last. Nothing a published version needs is ever overwritten or deleted, so every
 * ref stays pullable; identical content is stored once across the versions and prefixes
 * of a store; a reader following the ref never sees a version whose parts are not all there.
 */
export async function publish(options: PublishOptions): Promise<PublishResult> {
  throwIfAborted(options.signal);
  const started = performance.now();
  const signal = options.signal;
  const ref = validateRef(options.ref);
  const partSize = options.partSize ?? DEFAULT_PART_SIZE;
  const sourceOptions: SourceOptions = {
    // A part object goes up in one PUT: it is small, and several go up at once.
    uploadPartSize: Math.max(partSize, 8 * 2 ** 20),
    ...options.sourceOptions,
  };
  const dest =
    typeof options.dest === 'string'
      ? withRetry(openSource(options.dest, sourceOptions))
      : options.dest;
  let top: Source | undefined;
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
    const entries = await hashFiles(files, partSize, options);

    // The bucket or file system root: stores are looked for, and written, through it.
    const folders = segments(dest.uri).folders.length;
    top =
      folders === 0
        ? undefined
        : withRetry(openSource(ancestorUri(dest.uri, folders) as string, sourceOptions));
    const store = await openStore(dest, top ?? dest, options);
    options.onEvent?.({ type: 'store', uri: store.source.uri, shared: store.shared });
    const keyOf = store.shared ? storePartKey : partKey;
    const folder = store.shared ? STORE_PARTS_PREFIX : PARTS_PREFIX;
    const wanted = new Set(entries.flatMap((e) => (e.parts?.digests ?? []).map(keyOf)));
    const present = await presentParts(store.source, folder, store.users, wanted, signal);
    // Parts this prefix kept itself before it had a store are copied into the store on the
    // server, not uploaded again: moving a prefix to a store costs requests, not bytes.
    const ownParts = store.shared
      ? await listedKeys(dest, PARTS_PREFIX, signal)
      : new Set<string>();

    const byPath = new Map(files.map((f) => [f.path, f]));
    const uploads = planUploads(entries, present, keyOf);
    const counts = { uploadedBytes: 0, uploadedParts: 0, copiedParts: 0, copiedBytes: 0 };
    const tally = new PartTally();
    const meter = new ProgressMeter(
      uploads.parts.reduce((n, p) => n + (p.end - p.start), 0),
      () => tally.sample(),
      (event) => options.onEvent?.({ ...event, phase: 'upload' }),
    );
    let next = 0;
    const uploader = async () => {
      while (next < uploads.parts.length) {
        throwIfAborted(signal);
        const part = uploads.parts[next++] as PartUpload;
        const file = byPath.get(part.entry.path) as LocalFile;
        const upload = uploads.byFile.get(part.entry.path) as FileUploads;
        if (upload.started++ === 0) {
          options.onEvent?.({ type: 'upload-start', path: part.entry.path, size: part.entry.size });
        }
        const own = partKey(part.digest);
        const copied =
          ownParts.has(own) &&
          (await store.source
            .copy(store.rel === '' ? own : `${store.rel}/${own}`, part.key, { signal })
            .then(
              () => true,
              (error: unknown) => {
                // Gone since the listing (a gc), or a store without copies: upload it.
                if (isFerryError(error, 'FERRY_NOT_FOUND')) return false;
                if (isFerryError(error, 'FERRY_UNSUPPORTED')) return false;
                throw error;
              },
            ));
        if (copied) {
          counts.copiedParts++;
          counts.copiedBytes += part.end - part.start;
        } else {
          await store.source.write(
            part.key,
            createReadStream(file.absPath, { start: part.start, end: part.end - 1 }),
            { size: part.end - part.start, signal },
          );
          counts.uploadedParts++;
          counts.uploadedBytes += part.end - part.start;
        }
        tally.add(part.entry.path, upload.bytes, part.end - part.start);
        if (++upload.done === upload.total) {
          options.onEvent?.({ type: 'upload-done', path: part.entry.path, size: part.entry.size });
        }
      }
    };
    const concurrency = Math.max(1, options.concurrency ?? 4);
    for (const entry of entries) {
      if (!uploads.byFile.has(entry.path)) {
        options.onEvent?.({ type: 'skipped', path: entry.path, size: entry.size });
      }
    }
    meter.start(PROGRESS_INTERVAL_MS);
    try {
      await Promise.all(Array.from({ length: concurrency }, uploader));
    } finally {
      meter.stop();
    }
    meter.finish();
    const manifest: Manifest = createManifest(entries, {
      layout: 'parts',
      ...(store.shared ? { store: storeField(store.levels) } : {}),
    });
    const versionId = versionIdOf(manifest);
    throwIfAborted(signal);
    await dest.writeText(manifestKey(versionId), encodeManifest(manifest), { signal });
    // From now on the manifest protects its parts from a gc; one more look puts back any
    // that vanished before (a reused part whose only ref was dropped meanwhile is still
    // protected by its drop record, so this is a second line, not the rule).
    const listed = await listedKeys(store.source, folder, signal);
    const vanished = planUploads(entries, listed, keyOf);
    if (vanished.parts.length > 0) {
      uploads.parts.push(...vanished.parts);
      for (const [path, file] of vanished.byFile) {
        const known = uploads.byFile.get(path);
        if (known === undefined) uploads.byFile.set(path, file);
        else {
          known.total += file.total;
          known.bytes += file.bytes;
        }
      }
      await Promise.all(Array.from({ length: concurrency }, uploader));
    }
    await moveRef(dest, ref, versionId, signal);
    return {
      versionId,
      ref,
      files: entries.length,
      bytes: entries.reduce((n, e) => n + e.size, 0),
      uploadedFiles: uploads.byFile.size,
      ...counts,
      store: store.source.uri,
      durationMs: Math.round(performance.now() - started),
    };
  } finally {
    await top?.close();
    if (typeof options.dest === 'string') await dest.close();
  }
}

async function hashFiles(
  files: LocalFile[],
  partSize: number,
  options: PublishOptions,
): Promise<Entry[]> {
  const pool = new PartPool({
    workers: options.workers ?? hashingWorkers(files.reduce((n, f) => n + f.size, 0)),
    concurrency: 1,
  });
  options.onEvent?.({
    type: 'hash-start',
    files: files.length,
    bytes: files.reduce((n, f) => n + f.size, 0),
  });
  const tally = new PartTally();
  const meter = new ProgressMeter(
    files.reduce((n, f) => n + f.size, 0),
    () => tally.sample(),
    (event) => options.onEvent?.({ ...event, phase: 'hash' }),
  );
  meter.start(PROGRESS_INTERVAL_MS);
  let entries: Entry[];
  try {
    entries = await Promise.all(
      files.map(async (f) => {
        const { digest, parts } = await hashLocalFile(
          pool,
          f.absPath,
          f.size,
          partSize,
          DEFAULT_ALGORITHM,
          (bytes) => tally.add(f.path, f.size, bytes),
        );
        options.onEvent?.({ type: 'file-hashed', path: f.path, size: f.size });
        return { path: f.path, size: f.size, digest, parts };
      }),
    );
  } finally {
    meter.stop();
    await pool.destroy();
  }
  meter.finish();
  options.onEvent?.({
    type: 'hashed',
    files: entries.length,
    bytes: entries.reduce((n, e) => n + e.size, 0),
  });
  return entries;
}

/** Where a publish keeps its parts. */
interface PublishStore {
  /** The store root, or the destination itself when it keeps its own parts. */
  source: Source;
  /** Whether it is a store (`.ferry/store/`) rather than the prefix's own `.ferry/parts/`. */
  shared: boolean;
  /** Folders from the store down to the destination. */
  levels: number;
  /** The destination below the store (`''`: the store itself). */
  rel: string;
  /** The prefixes whose refs may need its parts, the destination's first. */
  users: string[];
}

/**
 * Finds the store (see `PublishOptions.store`), marks it and registers the destination in
 * it before any part goes up, so a `gc --remote` of any prefix of the store reads this
 * prefix's versions. Where the store cannot be written (an IAM policy scoped to the
 * prefix) and none was named, the prefix keeps its own parts, with a warning.
 */
async function openStore(
  dest: Source,
  top: Source,
  options: PublishOptions,
): Promise<PublishStore> {
  const signal = options.signal;
  const own: PublishStore = { source: dest, shared: false, levels: 0, rel: '', users: [''] };
  const explicit = options.store === undefined ? undefined : parseSourceUri(options.store).uri;
  const located = await locateStore(dest.uri, explicit, top, signal);
  if (located === undefined) return own;
  const folders = segments(dest.uri).folders;
  const source = prefixView(top, folders.slice(0, folders.length - located.levels).join('/'));
  try {
    if (!located.marked) {
      await source.writeText(
        STORE_INFO_KEY,
        `${JSON.stringify({ ferry: 'store', version: 1 })}\n`,
        {
          signal,
        },
      );
    }
    if (located.rel !== '') {
      await source.writeText(prefixEntryKey(located.rel), `${located.rel}\n`, { signal });
    }
  } catch (error) {
    if (located.why === 'explicit' || !isFerryError(error, 'FERRY_ACCESS_DENIED')) throw error;
    options.onEvent?.({
      type: 'warning',
      message: `cannot write the store ${source.uri} (${error.message}); the parts stay under ${dest.uri}, shared with no other prefix (name a store you may write with --store)`,
    });
    return own;
  }
  return {
    source,
    shared: true,
    levels: located.levels,
    rel: located.rel,
    users: await storeUsers(source, located.rel, signal),
  };
}

/**
 * Points `ref` at `versionId`, last. The version it pointed at before gets a drop record
 * first: a publish elsewhere in the store that reused its parts while the ref held them
 * keeps them for the grace period after this (see `gcRemote`).
 */
async function moveRef(
  dest: Source,
  ref: string,
  versionId: VersionId,
  signal: AbortSignal | undefined,
): Promise<void> {
  const before = await dest
    .readText(refKey(ref), { signal, maxBytes: 4096 })
    .then((text) => text.trim())
    .catch((error: unknown) => {
      if (isFerryError(error, 'FERRY_NOT_FOUND')) return undefined;
      throw error;
    });
  if (before !== undefined && before !== versionId && isVersionId(before)) {
    await dest.writeText(droppedKey(before), `${ref}\n`, { signal });
  }
  await dest.writeText(refKey(ref), `${versionId}\n`, { signal });
}

interface PartUpload {
  entry: Entry;
  digest: Digest;
  key: string;
  start: number;
  end: number;
}

interface FileUploads {
  /** Parts to upload, and their bytes. */
  total: number;
  bytes: number;
  started: number;
  done: number;
}

/**
 * The parts to upload: every part whose content-addressed key the store lacks, once
 * (identical parts of several files, or of one file, go up once), in file order.
 */
function planUploads(
  entries: Entry[],
  present: ReadonlySet<string>,
  keyOf: (digest: Digest) => string,
): { parts: PartUpload[]; byFile: Map<string, FileUploads> } {
  const parts: PartUpload[] = [];
  const byFile = new Map<string, FileUploads>();
  const queued = new Set(present);
  for (const entry of entries) {
    const list = entry.parts;
    if (list === undefined) continue;
    list.digests.forEach((digest, i) => {
      const key = keyOf(digest);
      if (queued.has(key)) return;
      queued.add(key);
      const { start, end } = partRange(entry.size, list.size, i);
      parts.push({ entry, digest, key, start, end });
      const file = byFile.get(entry.path) ?? { total: 0, bytes: 0, started: 0, done: 0 };
      file.total++;
      file.bytes += end - start;
      byFile.set(entry.path, file);
    });
  }
  return { parts, byFile };
}

/** The keys listed under `folder`; a local folder that does not exist yet holds nothing. */
async function listedKeys(
  source: Source,
  folder: string,
  signal: AbortSignal | undefined,
): Promise<Set<string>> {
  const keys = new Set<string>();
  for (const object of await listed(source, folder, signal)) keys.add(object.key);
  return keys;
}

async function listed(
  source: Source,
  folder: string,
  signal: AbortSignal | undefined,
): Promise<ObjectInfo[]> {
  const objects: ObjectInfo[] = [];
  try {
    for await (const object of source.list(folder, { signal })) objects.push(object);
  } catch (error) {
    // Writing creates the folder; a missing bucket is an error the caller must see.
    if (isFerryError(error, 'FERRY_NOT_FOUND') && source.uri.startsWith('file:')) return objects;
    throw error;
  }
  return objects;
}

/**
 * The part objects under `folder` of the store a publish may reuse instead of uploading,
 * from one listing: content named by its digest is never rewritten, so a listed part holds
 * its bytes. Reused are the parts a ref of some prefix of the store needs now (a gc keeps
 * them until the grace period after that ref is dropped) and the others while younger than
 * half the grace period (so a gc cannot take them before this publish's manifest protects
 * them); older unreferenced ones are uploaded again, fresh. An interrupted publish resumes
 * from here too: a part cut short was written under a temporary name (S3 multipart, the
 * local source's temp file) and is never listed.
 */
async function presentParts(
  store: Source,
  folder: string,
  users: string[],
  wanted: ReadonlySet<string>,
  signal: AbortSignal | undefined,
): Promise<Set<string>> {
  const present = new Set<string>();
  const freshSince = Date.now() - REMOTE_GRACE_MS / 2;
  const objects = (await listed(store, folder, signal)).filter((o) => wanted.has(o.key));
  const at = (o: ObjectInfo) => o.lastModified?.getTime() ?? Date.now();
  const old = new Set(objects.filter((o) => at(o) < freshSince).map((o) => o.key));
  const referenced =
    old.size > 0 ? await referencedParts(store, users, old, signal) : new Set<string>();
  for (const object of objects) {
    if (at(object) >= freshSince || referenced.has(object.key)) present.add(object.key);
  }
  return present;
}
