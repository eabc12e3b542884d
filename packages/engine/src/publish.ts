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
  createManifest,
  DEFAULT_ALGORITHM,
  DEFAULT_PART_SIZE,
  type Entry,
  encodeManifest,
  FerryError,
  isFerryError,
  type Manifest,
  parseManifest,
  throwIfAborted,
  type VersionId,
  validateRef,
  versionIdOf,
} from '@ferry/manifest';
import { hashLocalFile } from './local-hash.js';
import { PartPool } from './part-pool.js';
import { META_PREFIX, manifestKey, refKey, resolveRemote } from './remote-version.js';
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
  | { type: 'skipped'; path: string; size: number };

export interface PublishResult {
  versionId: VersionId;
  ref: string;
  files: number;
  bytes: number;
  uploadedFiles: number;
  uploadedBytes: number;
  durationMs: number;
}

/**
 * Publishes a folder as a version: hashes it in parallel, uploads the files the
 * destination's current version of `ref` does not already hold at the same path and
 * digest, then writes the manifest and moves the ref last, so a reader following the ref
 * never sees a version whose files are not all there.
 */
export async function publish(options: PublishOptions): Promise<PublishResult> {
  throwIfAborted(options.signal);
  const started = performance.now();
  const ref = validateRef(options.ref);
  const partSize = options.partSize ?? DEFAULT_PART_SIZE;
  const dest =
    typeof options.dest === 'string'
      ? withRetry(openSource(options.dest, options.sourceOptions))
      : options.dest;
  try {
    if (!dest.capabilities.write) {
      throw new FerryError('FERRY_UNSUPPORTED', `cannot publish to ${dest.uri}: it is read-only`, {
        hint: 'Publish to an s3:// prefix or a local directory.',
      });
    }
    const files = await walkFiles(resolve(options.dir));
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

    const present = await presentObjects(dest, ref, options.signal);
    const byPath = new Map(files.map((f) => [f.path, f]));
    const staging = new StagingRecord(dest, ref);
    let uploadedFiles = 0;
    let uploadedBytes = 0;
    let next = 0;
    const uploader = async () => {
      while (next < entries.length) {
        throwIfAborted(options.signal);
        const entry = entries[next++] as Entry;
        const etag = present(entry);
        if (etag !== undefined) {
          entry.etag = etag;
          options.onEvent?.({ type: 'skipped', path: entry.path, size: entry.size });
          continue;
        }
        const file = byPath.get(entry.path) as LocalFile;
        options.onEvent?.({ type: 'upload-start', path: entry.path, size: entry.size });
        const written = await dest.write(entry.path, createReadStream(file.absPath), {
          size: entry.size,
          signal: options.signal,
        });
        const uploadedEtag =
          written.etag ?? (await dest.stat(entry.path, { signal: options.signal })).etag;
        if (uploadedEtag !== undefined) entry.etag = uploadedEtag;
        uploadedFiles++;
        uploadedBytes += entry.size;
        options.onEvent?.({ type: 'upload-done', path: entry.path, size: entry.size });
        await staging.add(entry);
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 4) }, uploader));
    } catch (error) {
      // What did get uploaded is recorded, so publishing again skips it.
      await staging.flush().catch(() => undefined);
      throw error;
    }
    const manifest: Manifest = createManifest(entries);
    const versionId = versionIdOf(manifest);
    throwIfAborted(options.signal);
    await dest.writeText(manifestKey(versionId), encodeManifest(manifest), {
      signal: options.signal,
    });
    await dest.writeText(refKey(ref), `${versionId}\n`, { signal: options.signal });
    return {
      versionId,
      ref,
      files: entries.length,
      bytes: entries.reduce((n, e) => n + e.size, 0),
      uploadedFiles,
      uploadedBytes,
      durationMs: Math.round(performance.now() - started),
    };
  } finally {
    if (typeof options.dest === 'string') await dest.close();
  }
}

/**
 * What the destination already holds: a test telling, for an entry, the ETag of an object
 * at its path that a published version recorded with the same digest — so it is known to
 * hold those bytes — or undefined when the entry must be uploaded. Reads every published
 * ref's manifest, the staging record of an interrupted publish of `ref`, and one listing
 * of the prefix; a destination that cannot list gets everything uploaded.
 */
async function presentObjects(
  dest: Source,
  ref: string,
  signal?: AbortSignal,
): Promise<(entry: Entry) => string | undefined> {
  if (!dest.capabilities.list) return () => undefined;
  const refs = new Set([ref]);
  try {
    for await (const object of dest.list(`${META_PREFIX}refs/`, { signal })) {
      refs.add(object.key.slice(`${META_PREFIX}refs/`.length));
    }
  } catch (error) {
    // A destination folder that does not exist yet holds nothing; writing creates it.
    if (isFerryError(error, 'FERRY_NOT_FOUND') && dest.uri.startsWith('file:'))
      return () => undefined;
    throw error;
  }
  const recorded = new Map<string, Set<string>>();
  const known: Entry[] = await StagingRecord.read(dest, ref, signal);
  for (const name of refs) {
    const remote = await resolveRemote(dest, name, signal).catch((error: unknown) => {
      if (isFerryError(error, 'FERRY_NOT_FOUND')) return undefined;
      throw error;
    });
    known.push(...(remote?.manifest?.entries ?? []));
  }
  for (const e of known) {
    if (e.etag === undefined) continue;
    const key = `${e.path}\0${e.digest}`;
    recorded.set(key, (recorded.get(key) ?? new Set()).add(e.etag));
  }
  if (recorded.size === 0) return () => undefined;
  const current = new Map<string, ObjectInfo>();
  for await (const object of dest.list('', { signal })) current.set(object.key, object);
  return (entry) => {
    const etags = recorded.get(`${entry.path}\0${entry.digest}`);
    const object = current.get(entry.path);
    const etag = object?.size === entry.size ? object.etag : undefined;
    return etag !== undefined && etags?.has(etag) ? etag : undefined;
  };
}

/** How often, at most, an ongoing publish rewrites its staging record. */
const STAGING_INTERVAL_MS = 5_000;

/**
 * `.ferry/staging/<ref>.json` at the destination: the entries (with their new ETags) a
 * publish has uploaded so far, rewritten every few seconds and when it fails, so an
 * interrupted publish resumes instead of uploading everything again.
 */
class StagingRecord {
  readonly #entries: Entry[] = [];
  #written = performance.now();
  #writing: Promise<void> = Promise.resolve();

  constructor(
    readonly dest: Source,
    readonly ref: string,
  ) {}

  static key(ref: string): string {
    return `${META_PREFIX}staging/${ref}.json`;
  }

  /** Entries a previous, interrupted publish of `ref` recorded; none when there is no record. */
  static async read(dest: Source, ref: string, signal?: AbortSignal): Promise<Entry[]> {
    try {
      const text = await dest.readText(StagingRecord.key(ref), { signal });
      return parseManifest(text, `${dest.uri}/${StagingRecord.key(ref)}`).entries;
    } catch (error) {
      // Missing, or unreadable: it is only a hint, everything is uploaded as usual then.
      if (isFerryError(error, 'FERRY_NOT_FOUND') || isFerryError(error, 'FERRY_MANIFEST_INVALID')) {
        return [];
      }
      throw error;
    }
  }

  async add(entry: Entry): Promise<void> {
    this.#entries.push(entry);
    if (performance.now() - this.#written >= STAGING_INTERVAL_MS) await this.flush();
  }

  flush(): Promise<void> {
    this.#written = performance.now();
    const text = encodeManifest(createManifest([...this.#entries]));
    this.#writing = this.#writing.then(() =>
      this.dest.writeText(StagingRecord.key(this.ref), text),
    );
    return this.#writing;
  }
}
