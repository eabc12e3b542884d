import {
  type ObjectInfo,
  openSource,
  type Source,
  type SourceOptions,
  withRetry,
} from '@ferry/adapters';
import {
  FerryError,
  isFerryError,
  isVersionId,
  type Manifest,
  throwIfAborted,
  type VersionId,
  validateRef,
} from '@ferry/manifest';
import {
  ancestorUri,
  childUri,
  contentPlace,
  relativeTo,
  STORE_INFO_KEY,
  STORE_PARTS_PREFIX,
  STORE_PREFIXES_PREFIX,
  segments,
  storeLevels,
  storePartKey,
} from './content-store.js';
import { prefixView } from './prefix-view.js';
import {
  DROPPED_PREFIX,
  droppedKey,
  MANIFESTS_PREFIX,
  manifestKey,
  PARTS_PREFIX,
  partKey,
  REFS_PREFIX,
  REMOTE_GRACE_MS,
  refKey,
  resolveRemote,
} from './remote-version.js';

export interface RemoteOptions {
  /** A published prefix: `s3://bucket/prefix` or a local folder (or an opened Source). */
  source: string | Source;
  sourceOptions?: SourceOptions;
  signal?: AbortSignal;
}

/** One published ref, as `listRefs` reports it. */
export interface PublishedRef {
  ref: string;
  versionId: VersionId;
  /** When the manifest was written, from the store's own clock, when it says. */
  publishedAt?: string;
  files: number;
  bytes: number;
  /**
   * `store`: content-addressed parts in a store shared by the prefixes published to it;
   * `parts`: content-addressed parts under the prefix itself (published before stores);
   * `paths`: files at their paths (published before content addressing).
   */
  layout: 'store' | 'parts' | 'paths';
  /** The store holding the parts, for the `store` layout. */
  store?: string;
}

/** Every ref published at a prefix, by name, with the version it points at. */
export async function listRefs(options: RemoteOptions): Promise<PublishedRef[]> {
  return withSource(options, async (source) => {
    const refs: PublishedRef[] = [];
    for (const name of await refNames(source, options.signal)) {
      const remote = await resolveRemote(source, name, options.signal);
      const manifest = remote.manifest as Manifest;
      const info = await source
        .stat(manifestKey(remote.versionId as VersionId), { signal: options.signal })
        .catch(() => undefined);
      const store = manifest.store === undefined ? undefined : contentPlace(source.uri, manifest);
      refs.push({
        ref: name,
        versionId: remote.versionId as VersionId,
        ...(info?.lastModified === undefined
          ? {}
          : { publishedAt: info.lastModified.toISOString() }),
        files: manifest.entries.length,
        bytes: manifest.entries.reduce((n, e) => n + e.size, 0),
        layout: store !== undefined ? 'store' : (manifest.layout ?? 'paths'),
        ...(store === undefined ? {} : { store: store.uri }),
      });
    }
    return refs;
  });
}

/**
 * Removes a ref. Its version stays stored (other refs, of this prefix or of others in the
 * same store, may share its content) until `gcRemote` finds nothing needs it, which is not
 * before the grace period has passed since this call: a drop record
 * (`.ferry/dropped/<version-id>`) is written before the ref goes.
 * @throws FerryError `FERRY_NOT_FOUND` for an unknown ref.
 */
export async function unpublish(options: RemoteOptions & { ref: string }): Promise<VersionId> {
  const name = validateRef(options.ref);
  return withSource(options, async (source) => {
    const remote = await resolveRemote(source, name, options.signal);
    const id = remote.versionId as VersionId;
    await source.writeText(droppedKey(id), `${name}\n`, { signal: options.signal });
    await source.delete(refKey(name), { signal: options.signal });
    return id;
  });
}

export interface RemoteGcOptions extends RemoteOptions {
  /**
   * Objects younger than this are kept even when nothing refers to them: a publish running
   * at the same time may be about to. @default 24 hours
   */
  graceMs?: number;
  /** Report what would be removed, remove nothing. @default false */
  dryRun?: boolean;
}

export interface RemoteGcResult {
  /** Refs of every prefix accounted for. */
  refs: number;
  /** Prefixes with versions accounted for: the source and every prefix of its stores. */
  prefixes: number;
  /** Where parts were collected: the source itself and each store at or above it. */
  stores: string[];
  keptParts: number;
  removedParts: number;
  removedBytes: number;
  removedManifests: number;
  /**
   * Objects no ref needs, kept because they are younger than the grace period: parts, and
   * manifests written or dropped (unpublished, or their ref moved) within it.
   */
  youngKept: number;
}

/** What one prefix says about its versions, as a gc reads it. */
export interface PrefixFacts {
  /** Version id of each ref. */
  refs: VersionId[];
  /** Drop records: the version, and when a ref last stopped pointing at it (ms). */
  dropped: Array<{ id: VersionId; at: number }>;
  /** Stored manifests: the version and when it was written (ms). */
  manifests: Array<{ id: VersionId; at: number }>;
}

/**
 * The versions of a prefix whose content must stay (pure): those a ref points at, those
 * a ref stopped pointing at less than the grace period ago, and those whose manifest was
 * written less than the grace period ago (a publish may be about to move a ref to it).
 * The other manifests are stale.
 */
export function liveVersions(
  facts: PrefixFacts,
  cutoff: number,
): { live: Set<VersionId>; stale: VersionId[]; young: number } {
  const referenced = new Set<VersionId>(facts.refs);
  const live = new Set<VersionId>(referenced);
  for (const d of facts.dropped) if (d.at > cutoff) live.add(d.id);
  const stale: VersionId[] = [];
  let young = 0;
  for (const m of facts.manifests) {
    if (referenced.has(m.id)) continue;
    if (live.has(m.id) || m.at > cutoff) {
      live.add(m.id);
      young++;
    } else stale.push(m.id);
  }
  return { live, stale, young };
}

/**
 * The keys, relative to the store root, of the parts a manifest read at `rel` below that
 * root keeps there: in the store's `.ferry/store/parts/` when its `store` points at this
 * root, in `.ferry/parts/` when it is the root's own version from before stores.
 */
export function partKeysInStore(manifest: Manifest, rel: string): string[] {
  if (manifest.layout !== 'parts') return [];
  const depth = rel === '' ? 0 : rel.split('/').length;
  const keyOf =
    manifest.store === undefined
      ? rel === ''
        ? partKey
        : undefined
      : storeLevels(manifest.store) === depth
        ? storePartKey
        : undefined;
  if (keyOf === undefined) return [];
  return manifest.entries.flatMap((e) => (e.parts?.digests ?? []).map(keyOf));
}

/**
 * Removes the stored content no version needs: parts, stale manifests and old drop records,
 * in the source itself and in every store at or above it, older than `graceMs` (each
 * checked again right before its removal).
 *
 * A store is shared: parts are kept when any prefix published to it needs them, so a gc
 * reads the versions of every prefix the store lists in `.ferry/store/prefixes/` (written
 * by each publish before its first part) as well as the store root's own. A version is
 * needed while a ref points at it, for the grace period after a ref stopped pointing at it
 * (the drop record that `unpublish` and a publish moving a ref write first), and while its
 * manifest is younger than the grace period. Parts younger than the grace period are kept
 * whatever refers to them.
 *
 * Why that is safe next to a publish, of this prefix or any other in the store: a publish
 * reuses a stored part only while a ref needs it or it is younger than half the grace
 * period, uploads the others again, writes its manifest, looks once more for vanished parts
 * and moves its ref last. A part reused because a ref needed it stays needed until the
 * grace period after that ref is dropped; a fresh part, until the grace period after it was
 * written; by then the publish's own manifest (young, then referenced) holds it. So a
 * publish that finishes within half the grace period (12 h by default) never points a ref
 * at a part a gc removed. Files at their paths (the oldest layout) are never touched.
 */
export async function gcRemote(options: RemoteGcOptions): Promise<RemoteGcResult> {
  const graceMs = options.graceMs ?? REMOTE_GRACE_MS;
  const signal = options.signal;
  return withSource(options, async (source) => {
    const cutoff = Date.now() - graceMs;
    const result: RemoteGcResult = {
      refs: 0,
      prefixes: 0,
      stores: [],
      keptParts: 0,
      removedParts: 0,
      removedBytes: 0,
      removedManifests: 0,
      youngKept: 0,
    };
    checkListable(source);
    const read = new PrefixReader(cutoff, signal);
    for (const store of await storesOf(source, options, signal)) {
      const users = new Set(['', ...(await registeredPrefixes(store.source, signal))]);
      users.add(relativeTo(store.source.uri, source.uri) ?? '');
      const needed = new Set<string>();
      for (const rel of users) {
        const prefix = await read.prefix(prefixView(store.source, rel));
        for (const manifest of prefix.live.values()) {
          for (const key of partKeysInStore(manifest, rel)) needed.add(key);
        }
      }
      result.stores.push(store.source.uri);
      for (const folder of [STORE_PARTS_PREFIX, PARTS_PREFIX]) {
        for await (const object of listOrNothing(store.source, folder, signal)) {
          throwIfAborted(signal);
          if (needed.has(object.key)) {
            result.keptParts++;
            continue;
          }
          if ((object.lastModified?.getTime() ?? Date.now()) > cutoff) {
            result.youngKept++;
            continue;
          }
          if (!options.dryRun && !(await removeIfOld(store.source, object.key, cutoff, signal))) {
            continue;
          }
          result.removedParts++;
          result.removedBytes += object.size;
        }
      }
      await store.close();
    }
    for (const prefix of read.all()) {
      if (prefix.versions > 0) result.prefixes++;
      result.refs += prefix.refs;
      result.youngKept += prefix.young;
      for (const key of prefix.staleManifests) {
        if (!options.dryRun && !(await removeIfOld(prefix.source, key, cutoff, signal))) continue;
        result.removedManifests++;
      }
      if (options.dryRun) continue;
      for (const key of prefix.oldDropped) await removeIfOld(prefix.source, key, cutoff, signal);
    }
    return result;
  });
}

interface PrefixState {
  source: Source;
  refs: number;
  /** Manifests stored. */
  versions: number;
  young: number;
  /** The manifests of the versions that must stay, by id. */
  live: Map<VersionId, Manifest>;
  staleManifests: string[];
  oldDropped: string[];
}

/** Reads each prefix once, however many stores it is counted in. */
class PrefixReader {
  readonly #cutoff: number;
  readonly #signal: AbortSignal | undefined;
  readonly #read = new Map<string, Promise<PrefixState>>();
  readonly #states: PrefixState[] = [];

  constructor(cutoff: number, signal: AbortSignal | undefined) {
    this.#cutoff = cutoff;
    this.#signal = signal;
  }

  prefix(source: Source): Promise<PrefixState> {
    let state = this.#read.get(source.uri);
    if (state === undefined) {
      state = this.#load(source);
      this.#read.set(source.uri, state);
    }
    return state;
  }

  /** Every prefix read so far (each was awaited where it was asked for). */
  all(): PrefixState[] {
    return [...this.#states];
  }

  async #load(source: Source): Promise<PrefixState> {
    const signal = this.#signal;
    // Refs first, then drop records: a ref deleted after it was listed left a drop record
    // before it went, which the listing after it sees.
    const refs: VersionId[] = [];
    for (const name of await refNames(source, signal)) {
      const id = await source
        .readText(refKey(name), { signal, maxBytes: 4096 })
        .then((text) => text.trim())
        .catch((error: unknown) => {
          if (isFerryError(error, 'FERRY_NOT_FOUND')) return undefined;
          throw error;
        });
      if (id !== undefined && isVersionId(id)) refs.push(id);
    }
    const dropped: Array<{ id: VersionId; at: number; key: string }> = [];
    for await (const object of listOrNothing(source, DROPPED_PREFIX, signal)) {
      const id = object.key.slice(DROPPED_PREFIX.length);
      if (isVersionId(id)) {
        dropped.push({ id, at: object.lastModified?.getTime() ?? Date.now(), key: object.key });
      }
    }
    const manifests: Array<{ id: VersionId; at: number }> = [];
    for await (const object of listOrNothing(source, MANIFESTS_PREFIX, signal)) {
      const id = object.key.slice(MANIFESTS_PREFIX.length).replace(/\.json$/, '');
      if (isVersionId(id)) {
        manifests.push({ id, at: object.lastModified?.getTime() ?? Date.now() });
      }
    }
    const decided = liveVersions({ refs, dropped, manifests }, this.#cutoff);
    const stored = new Set(manifests.map((m) => m.id));
    const live = new Map<VersionId, Manifest>();
    for (const id of decided.live) {
      // A ref or drop record whose manifest is gone protects nothing.
      if (!stored.has(id)) continue;
      const remote = await resolveRemote(source, id, signal);
      live.set(id, remote.manifest as Manifest);
    }
    const state: PrefixState = {
      source,
      refs: refs.length,
      versions: manifests.length,
      young: decided.young,
      live,
      staleManifests: decided.stale.map(manifestKey),
      oldDropped: dropped.filter((d) => d.at <= this.#cutoff).map((d) => d.key),
    };
    this.#states.push(state);
    return state;
  }
}

/**
 * The places a gc of `source` collects parts in: the source itself (its own parts from
 * before stores, and its store if it is one) and every marked store above it, each opened
 * on its own root.
 */
async function storesOf(
  source: Source,
  options: RemoteOptions,
  signal: AbortSignal | undefined,
): Promise<Array<{ source: Source; close(): Promise<void> }>> {
  const stores: Array<{ source: Source; close(): Promise<void> }> = [
    { source, close: async () => {} },
  ];
  const { folders } = segments(source.uri);
  if (folders.length === 0) return stores;
  const top = withRetry(
    openSource(ancestorUri(source.uri, folders.length) as string, options.sourceOptions),
  );
  let shared = false;
  for (let levels = 1; levels <= folders.length; levels++) {
    const rel = folders.slice(0, folders.length - levels).join('/');
    const marked = await top
      .stat(rel === '' ? STORE_INFO_KEY : `${rel}/${STORE_INFO_KEY}`, { signal })
      .then(
        () => true,
        (error: unknown) => {
          // A folder this caller may not read (a policy scoped to a prefix) is left alone:
          // collecting less is always safe.
          if (isFerryError(error, 'FERRY_NOT_FOUND')) return false;
          if (isFerryError(error, 'FERRY_ACCESS_DENIED')) return false;
          throw error;
        },
      );
    if (!marked) continue;
    shared = true;
    stores.push({ source: prefixView(top, rel), close: async () => {} });
  }
  // The last store closes the root they are all views of.
  const last = stores[stores.length - 1];
  if (shared && last !== undefined) last.close = () => top.close();
  else await top.close();
  return stores;
}

/** The prefixes registered in a store, relative to its root. */
async function registeredPrefixes(
  store: Source,
  signal: AbortSignal | undefined,
): Promise<string[]> {
  const rels: string[] = [];
  for await (const object of listOrNothing(store, STORE_PREFIXES_PREFIX, signal)) {
    let rel: string;
    try {
      rel = decodeURIComponent(object.key.slice(STORE_PREFIXES_PREFIX.length));
      // A hostile or hand-made entry must still name a folder below the store.
      if (relativeTo(store.uri, childUri(store.uri, rel)) !== rel) continue;
    } catch {
      continue;
    }
    rels.push(rel);
  }
  return rels;
}

/**
 * The part keys (relative to `store`) that a ref of a prefix using the store needs now,
 * looking at `users` (prefixes relative to the store) in order; stops as soon as every key
 * of `wanted` is found, so a publish reusing its own prefix's parts reads only that prefix.
 */
export async function referencedParts(
  store: Source,
  users: string[],
  wanted: ReadonlySet<string>,
  signal: AbortSignal | undefined,
): Promise<Set<string>> {
  const found = new Set<string>();
  for (const rel of users) {
    const prefix = prefixView(store, rel);
    for (const name of await refNames(prefix, signal)) {
      let manifest: Manifest;
      try {
        manifest = (await resolveRemote(prefix, name, signal)).manifest as Manifest;
      } catch (error) {
        // A ref removed since it was listed needs nothing.
        if (isFerryError(error, 'FERRY_NOT_FOUND')) continue;
        throw error;
      }
      for (const key of partKeysInStore(manifest, rel)) if (wanted.has(key)) found.add(key);
      if (found.size === wanted.size) return found;
    }
  }
  return found;
}

/** Every prefix whose versions may keep parts in `store`, its own first when it has one. */
export async function storeUsers(
  store: Source,
  first: string,
  signal: AbortSignal | undefined,
): Promise<string[]> {
  const users = new Set([first, '', ...(await registeredPrefixes(store, signal))]);
  return [...users];
}

async function* listOrNothing(
  source: Source,
  prefix: string,
  signal: AbortSignal | undefined,
): AsyncIterable<ObjectInfo> {
  try {
    yield* source.list(prefix, { signal });
  } catch (error) {
    // A folder that does not exist (a local source) holds nothing.
    if (!isFerryError(error, 'FERRY_NOT_FOUND')) throw error;
  }
}

/**
 * Removes `key` unless it was written since `cutoff`: a publish may have written it again
 * (a manifest of the same content) since the listing said it was old.
 */
async function removeIfOld(
  source: Source,
  key: string,
  cutoff: number,
  signal: AbortSignal | undefined,
): Promise<boolean> {
  const info = await source.stat(key, { signal }).catch((error: unknown) => {
    if (isFerryError(error, 'FERRY_NOT_FOUND')) return undefined;
    throw error;
  });
  if (info === undefined || (info.lastModified?.getTime() ?? Date.now()) > cutoff) return false;
  await source.delete(key, { signal });
  return true;
}

function checkListable(source: Source): void {
  if (!source.capabilities.list) {
    throw new FerryError('FERRY_UNSUPPORTED', `cannot list the refs of ${source.uri}`, {
      hint: 'Refs are listed from the store itself: use its s3:// URI or local folder.',
    });
  }
}

async function refNames(source: Source, signal: AbortSignal | undefined): Promise<string[]> {
  checkListable(source);
  const names: string[] = [];
  for await (const object of listOrNothing(source, REFS_PREFIX, signal)) {
    names.push(object.key.slice(REFS_PREFIX.length));
  }
  return names;
}

async function withSource<T>(
  options: RemoteOptions,
  run: (source: Source) => Promise<T>,
): Promise<T> {
  throwIfAborted(options.signal);
  const source =
    typeof options.source === 'string'
      ? withRetry(openSource(options.source, options.sourceOptions))
      : options.source;
  try {
    return await run(source);
  } finally {
    if (typeof options.source === 'string') await source.close();
  }
}
