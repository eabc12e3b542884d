import { createHash } from 'node:crypto';
import type { Source } from '@ferry/adapters';
import {
  type Digest,
  FerryError,
  isFerryError,
  isReservedPath,
  isVersionId,
  MAX_FILE_SIZE,
  type Manifest,
  normalizePath,
  type PartList,
  parseDigest,
  parseManifest,
  type VersionId,
  validateRef,
  versionIdOf,
} from '@ferry/manifest';
import type { CacheIndex } from '@ferry/manifest/store';

/** Where a published prefix keeps its metadata, relative to the source root. */
export const META_PREFIX = '.ferry/';
export const REFS_PREFIX = `${META_PREFIX}refs/`;
export const MANIFESTS_PREFIX = `${META_PREFIX}manifests/`;
export const refKey = (name: string) => `${REFS_PREFIX}${name}`;
export const manifestKey = (id: VersionId) => `${MANIFESTS_PREFIX}${id}.json`;
/**
 * When a ref last stopped pointing at a version (`unpublish`, or a publish moving the ref):
 * the record's own age. Its content is kept for the grace period after that, like a young
 * manifest's, so a publish that reused it while the ref still held it never loses it.
 */
export const DROPPED_PREFIX = `${META_PREFIX}dropped/`;
export const droppedKey = (id: VersionId) => `${DROPPED_PREFIX}${id}`;
/**
 * How long stored content nothing refers to is kept by `gc --remote`: a publish running
 * meanwhile may be about to refer to it. A publish reuses an unreferenced part only while
 * it is younger than half of this, so a publish must finish within that half (12 h).
 */
export const REMOTE_GRACE_MS = 24 * 60 * 60 * 1000;

/** Where a part lives in the `parts` layout: named by its digest, never overwritten. */
export const PARTS_PREFIX = `${META_PREFIX}parts/`;
export function partKey(digest: Digest): string {
  const { algorithm, hex } = parseDigest(digest);
  return `${PARTS_PREFIX}${algorithm}/${hex}`;
}

/** A file as the remote side describes it; `digest` is unknown for a plain listing. */
export interface RemoteEntry {
  path: string;
  size: number;
  digest?: Digest;
  parts?: PartList;
  etag?: string;
  mtime?: number;
}

export interface RemoteVersion {
  /** True when the entries come from a published manifest, false for a plain listing. */
  published: boolean;
  ref?: string;
  versionId?: VersionId;
  manifest?: Manifest;
  entries: RemoteEntry[];
}

const DEFAULT_REF = 'latest';

/**
 * The version the cache itself holds for `ref` of `uri`, without asking the source: a
 * version id whose manifest the store keeps, the version a ref name pointed at when it was
 * last pulled, or (no ref) the version the folder is at. Undefined when the cache has none.
 */
export async function resolveLocal(
  store: CacheIndex,
  uri: string,
  ref: string | undefined,
  subdir: string,
): Promise<RemoteVersion | undefined> {
  let id: VersionId | undefined;
  if (isVersionId(ref)) id = ref;
  else if (ref !== undefined) id = await store.getRef(uri, validateRef(ref));
  else {
    const tree = await store.getTree(subdir);
    id = tree?.source === uri ? tree.versionId : await store.getRef(uri, DEFAULT_REF);
  }
  const manifest = id === undefined ? undefined : await store.getManifest(id);
  if (id === undefined || manifest === undefined) return undefined;
  return {
    published: true,
    ...(ref === undefined || isVersionId(ref) ? {} : { ref }),
    versionId: id,
    manifest,
    entries: manifest.entries,
  };
}

async function readManifest(
  source: Source,
  id: VersionId,
  signal?: AbortSignal,
): Promise<Manifest> {
  const key = manifestKey(id);
  const text = await source.readText(key, { signal });
  const manifest = parseManifest(text, `${source.uri}/${key}`);
  // A manifest as publish wrote it is its canonical bytes: hashing them is enough, and much
  // cheaper on a large manifest than encoding it again (only other formatting needs that).
  const actual =
    `sha256:${createHash('sha256').update(text).digest('hex')}` === id ? id : versionIdOf(manifest);
  if (actual !== id) {
    throw new FerryError(
      'FERRY_INTEGRITY',
      `manifest ${key} at ${source.uri} hashes to ${actual}, not ${id}`,
      { key, hint: 'The published manifest was altered or corrupted; publish the version again.' },
    );
  }
  return manifest;
}

/**
 * Finds what the source holds: a published version (`.ferry/refs/<ref>` →
 * `.ferry/manifests/<id>.json`, two small reads whatever the number of files; one when
 * `held` has the manifest), or, when the prefix is not published and no ref was asked for,
 * the files a listing shows.
 */
export async function resolveRemote(
  source: Source,
  ref: string | undefined,
  signal?: AbortSignal,
  held?: (id: VersionId) => Promise<Manifest | undefined>,
): Promise<RemoteVersion> {
  // A version id names its content: a copy the cache holds is the one the source has.
  const manifestOf = async (id: VersionId) =>
    (await held?.(id)) ?? (await readManifest(source, id, signal));
  if (ref !== undefined && isVersionId(ref)) {
    const manifest = await manifestOf(ref);
    return { published: true, versionId: ref, manifest, entries: manifest.entries };
  }
  const name = validateRef(ref ?? DEFAULT_REF);
  let id: string;
  try {
    // A ref holds a version id: anything longer is not a ref.
    id = (await source.readText(refKey(name), { signal, maxBytes: 4096 })).trim();
  } catch (error) {
    // A missing bucket or source folder is not a missing ref: say which it is.
    if (
      !isFerryError(error, 'FERRY_NOT_FOUND') ||
      error.remoteCode === 'NoSuchBucket' ||
      error.remoteCode === 'NoSuchDirectory'
    ) {
      throw error;
    }
    if (ref !== undefined) {
      throw new FerryError('FERRY_NOT_FOUND', `ref "${name}" is not published at ${source.uri}`, {
        key: refKey(name),
        cause: error,
        hint: 'Check the name after "@", or publish it with `ferry publish <dir> <dest> --ref <name>`.',
      });
    }
    if (!source.capabilities.list) {
      throw new FerryError(
        'FERRY_NOT_FOUND',
        `${source.uri} has no published version (${refKey(name)}) and cannot be listed`,
        {
          key: refKey(name),
          cause: error,
          hint: 'An HTTP origin needs a prefix published with `ferry publish`; or pull from S3 or a directory.',
        },
      );
    }
    return { published: false, entries: await listEntries(source, signal) };
  }
  if (!isVersionId(id)) {
    throw new FerryError(
      'FERRY_MANIFEST_INVALID',
      `ref ${refKey(name)} at ${source.uri} does not hold a version id`,
      {
        key: refKey(name),
        hint: 'Publish the ref again with `ferry publish`.',
      },
    );
  }
  const manifest = await manifestOf(id);
  return { published: true, ref: name, versionId: id, manifest, entries: manifest.entries };
}

async function listEntries(source: Source, signal?: AbortSignal): Promise<RemoteEntry[]> {
  const entries: RemoteEntry[] = [];
  for await (const object of source.list('', { signal })) {
    // Ferry's own metadata, in any case: never a file of the version (see isReservedPath).
    if (isReservedPath(object.key)) continue;
    const path = normalizePath(object.key);
    if (object.size > MAX_FILE_SIZE) {
      throw new FerryError(
        'FERRY_BAD_RESPONSE',
        `the listing of ${source.uri} says ${path} has ${object.size} bytes, more than any store holds (5 TiB)`,
        {
          key: path,
          hint: 'The listing is broken or hostile: check the endpoint and any proxy in front of it.',
        },
      );
    }
    entries.push({
      path,
      size: object.size,
      ...(object.etag === undefined ? {} : { etag: object.etag }),
      ...(object.lastModified === undefined ? {} : { mtime: object.lastModified.getTime() }),
    });
  }
  return entries;
}
