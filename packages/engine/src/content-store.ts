import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseSourceUri, type Source } from '@ferry/adapters';
import { type Digest, FerryError, isFerryError, type Manifest, parseDigest } from '@ferry/manifest';
import { META_PREFIX, partKey } from './remote-version.js';

/**
 * A store is a folder (an S3 bucket by default) whose `.ferry/store/` keeps the parts of
 * every prefix published to it, each once:
 *
 * ```
 * <store>/.ferry/store/info.json            marks the folder as a store
 * <store>/.ferry/store/parts/<alg>/<hex>   one object per distinct part, named by its digest
 * <store>/.ferry/store/prefixes/<rel>      one per prefix published here (rel URI-encoded):
 *                                          where `gc --remote` looks for the versions that
 *                                          need these parts
 * <store>/<rel>/.ferry/manifests|refs|dropped/…   each prefix's own versions
 * ```
 *
 * A manifest names its store relative to its own prefix (`"store": "../"`), so a puller of
 * `s3://models/llama-a`, `https://host/models/llama-a/` or `/srv/models/llama-a` finds the
 * parts at `…/models/.ferry/store/parts/` with no other setting.
 */
export const STORE_PREFIX = `${META_PREFIX}store/`;
export const STORE_INFO_KEY = `${STORE_PREFIX}info.json`;
export const STORE_PARTS_PREFIX = `${STORE_PREFIX}parts/`;
export const STORE_PREFIXES_PREFIX = `${STORE_PREFIX}prefixes/`;

/** Where a part lives in a store: named by its digest, never overwritten. */
export function storePartKey(digest: Digest): string {
  const { algorithm, hex } = parseDigest(digest);
  return `${STORE_PARTS_PREFIX}${algorithm}/${hex}`;
}

/** The registry entry of the prefix `rel` (below the store root) in its store. */
export function prefixEntryKey(rel: string): string {
  return `${STORE_PREFIXES_PREFIX}${encodeURIComponent(rel)}`;
}

/** How many folders up a manifest's `store` points: `./` → 0, `../../` → 2. */
export function storeLevels(store: string): number {
  return store === './' ? 0 : store.length / 3;
}

/** The manifest's `store` for a store `levels` folders above the prefix. */
export function storeField(levels: number): string {
  return levels === 0 ? './' : '../'.repeat(levels);
}

/** The folders of a source URI from its top (bucket, host, file system root) down. */
export function segments(uri: string): {
  top: string;
  folders: string[];
  kind: 's3' | 'http' | 'local';
} {
  const parsed = parseSourceUri(uri);
  switch (parsed.kind) {
    case 's3':
      return {
        kind: 's3',
        top: `s3://${parsed.bucket}`,
        folders: parsed.prefix === '' ? [] : parsed.prefix.split('/'),
      };
    case 'http': {
      const url = new URL(parsed.url ?? parsed.uri);
      return {
        kind: 'http',
        top: `${url.protocol}//${url.host}/`,
        folders: parsed.prefix === '' ? [] : parsed.prefix.split('/'),
      };
    }
    case 'local':
      return {
        kind: 'local',
        top: pathToFileURL('/').href,
        folders: (parsed.path ?? '/').split('/').filter((s) => s !== ''),
      };
  }
}

/** `rel` (a clean relative path, `''` for itself) below the source URI `uri`. */
export function childUri(uri: string, rel: string): string {
  if (rel === '') return uri;
  const { kind } = segments(uri);
  switch (kind) {
    case 's3':
      return `${uri}/${rel}`;
    case 'http':
      return `${uri}${rel.split('/').map(encodeURIComponent).join('/')}/`;
    case 'local':
      return pathToFileURL(join(fileURLToPath(uri), rel)).href;
  }
}

/** The URI `levels` folders above `uri`; undefined above its bucket, host or root. */
export function ancestorUri(uri: string, levels: number): string | undefined {
  if (levels === 0) return uri;
  const { top, folders } = segments(uri);
  if (levels > folders.length) return undefined;
  return childUri(top, folders.slice(0, folders.length - levels).join('/'));
}

/** `uri` as a path below `base` (`''` when they are the same); undefined when it is not. */
export function relativeTo(base: string, uri: string): string | undefined {
  const a = segments(base);
  const b = segments(uri);
  if (a.top !== b.top || a.folders.length > b.folders.length) return undefined;
  if (a.folders.some((folder, i) => b.folders[i] !== folder)) return undefined;
  return b.folders.slice(a.folders.length).join('/');
}

/** Where the parts of a version are: the source that holds them and each part's key there. */
export interface ContentPlace {
  uri: string;
  key(digest: Digest): string;
}

/**
 * Where the parts of `manifest`, read from the prefix `uri`, are: its store (the `store`
 * field resolved against `uri`), or the prefix's own `.ferry/parts/` for a version published
 * before stores. Undefined for a version whose files are at their paths.
 *
 * @throws FerryError `FERRY_NOT_FOUND` when the store is above what `uri` can reach (an
 * HTTP origin that serves only the prefix, not the store around it).
 */
export function contentPlace(
  uri: string,
  manifest: Manifest | undefined,
): ContentPlace | undefined {
  if (manifest?.layout !== 'parts') return undefined;
  if (manifest.store === undefined) return { uri, key: partKey };
  const levels = storeLevels(manifest.store);
  const store = ancestorUri(uri, levels);
  if (store === undefined) {
    throw new FerryError(
      'FERRY_NOT_FOUND',
      `this version keeps its content in a store ${levels} ${levels === 1 ? 'folder' : 'folders'} above ${uri}, which has no such parent`,
      {
        key: manifest.store,
        hint: 'Pull through a URI that includes the store around the prefix (serve the bucket or store folder, not only the prefix).',
      },
    );
  }
  return { uri: store, key: storePartKey };
}

/**
 * The mirror base URLs for a version's parts: each mirror names the prefix as seen through
 * a cache, so its store is as many folders up as the origin's. A mirror that cannot reach
 * that far is left out, with `warn`: the parts come from the next mirror or the origin.
 */
export function contentMirrors(
  mirrors: string[],
  manifest: Manifest | undefined,
  warn: (message: string) => void,
): string[] {
  if (manifest?.store === undefined || mirrors.length === 0) return mirrors;
  const levels = storeLevels(manifest.store);
  const resolved: string[] = [];
  for (const mirror of mirrors) {
    const base = ancestorUri(mirror, levels);
    if (base === undefined) {
      warn(
        `mirror ${mirror} has no folder ${levels} ${levels === 1 ? 'level' : 'levels'} up, where this version's store is; reading its parts from the origin`,
      );
    } else resolved.push(base);
  }
  return resolved;
}

/**
 * Where a pull reads a version's content (for `TransferContext`): the paths or the parts
 * layout, where the parts are, and the mirrors in front of them.
 */
export function contentOf(
  uri: string,
  manifest: Manifest | undefined,
  mirrors: string[],
  emit: (event: { type: 'warning'; message: string }) => void,
): { storage: 'paths' | 'parts'; parts?: ContentPlace; mirrors: string[] } {
  const parts = contentPlace(uri, manifest);
  return {
    storage: parts === undefined ? 'paths' : 'parts',
    ...(parts === undefined ? {} : { parts }),
    mirrors: contentMirrors(mirrors, manifest, (message) => emit({ type: 'warning', message })),
  };
}

/** What decides where a publish keeps its parts. */
export interface StoreFacts {
  /** The destination's scheme. */
  kind: 's3' | 'http' | 'local';
  /** Folders between the top (bucket, file system root) and the destination. */
  depth: number;
  /** Folders above the destination of a store the publisher named, when one was. */
  explicit?: number;
  /** Folders above the destination (0: itself) that are marked as stores, nearest first. */
  marked: number[];
}

/** Where a publish keeps its parts: a store `levels` folders up, and why there. */
export interface StoreChoice {
  levels: number;
  why: 'explicit' | 'marked' | 'bucket';
}

/**
 * The store a publish uses: the one named, else the nearest marked store at or above the
 * destination, else (S3) the bucket: a bucket is one namespace with one owner and one
 * lifecycle. A local folder has no such boundary (its parent may be a home folder or a
 * cache root), so without a marked store a local publish keeps its parts in its own
 * prefix, as before stores (`undefined`).
 */
export function decideStore(facts: StoreFacts): StoreChoice | undefined {
  if (facts.explicit !== undefined) return { levels: facts.explicit, why: 'explicit' };
  const nearest = facts.marked[0];
  if (nearest !== undefined) return { levels: nearest, why: 'marked' };
  if (facts.kind === 's3') return { levels: facts.depth, why: 'bucket' };
  return undefined;
}

/**
 * Finds the nearest marked store at or above `dest` (one small read per folder, from `top`,
 * a source opened on the bucket or file system root) and decides where the parts go, with
 * the destination's path below that store (`rel`) and whether it is marked already;
 * undefined for a prefix that keeps its own parts. Checks that an explicit store is the
 * destination or a folder above it.
 */
export async function locateStore(
  destUri: string,
  explicit: string | undefined,
  top: Source,
  signal?: AbortSignal,
): Promise<(StoreChoice & { marked: boolean; rel: string }) | undefined> {
  const dest = segments(destUri);
  let explicitLevels: number | undefined;
  if (explicit !== undefined) {
    const rel = relativeTo(explicit, destUri);
    if (rel === undefined) {
      throw new FerryError(
        'FERRY_USAGE',
        `the store ${explicit} is not ${destUri} or a folder above it`,
        {
          key: explicit,
          hint: 'A store holds the prefixes published to it: give the destination itself or a folder (or bucket) above it.',
        },
      );
    }
    explicitLevels = rel === '' ? 0 : rel.split('/').length;
  }
  const marked: number[] = [];
  for (let levels = 0; levels <= dest.folders.length; levels++) {
    if (explicitLevels !== undefined && levels !== explicitLevels) continue;
    const key = [...dest.folders.slice(0, dest.folders.length - levels), STORE_INFO_KEY].join('/');
    const found = await top.stat(key, { signal }).then(
      () => true,
      (error: unknown) => {
        // A folder one may not read (an IAM policy scoped to a prefix) is not a store to use.
        if (isFerryError(error, 'FERRY_NOT_FOUND') || isFerryError(error, 'FERRY_ACCESS_DENIED')) {
          return false;
        }
        throw error;
      },
    );
    if (found) marked.push(levels);
    // The nearest marked store wins: no need to look further up.
    if (found && explicitLevels === undefined) break;
  }
  const choice = decideStore({
    kind: dest.kind,
    depth: dest.folders.length,
    ...(explicitLevels === undefined ? {} : { explicit: explicitLevels }),
    marked,
  });
  if (choice === undefined) return undefined;
  return {
    ...choice,
    marked: marked.includes(choice.levels),
    rel: dest.folders.slice(dest.folders.length - choice.levels).join('/'),
  };
}
