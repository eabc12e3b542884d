import { openSource, type Source, type SourceOptions, withRetry } from '@ferry/adapters';
import {
  FerryError,
  isFerryError,
  type Manifest,
  throwIfAborted,
  type VersionId,
  validateRef,
} from '@ferry/manifest';
import {
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
  /** `parts`: content-addressed, immutable; `paths`: files at their paths (older publishes). */
  layout: 'parts' | 'paths';
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
      refs.push({
        ref: name,
        versionId: remote.versionId as VersionId,
        ...(info?.lastModified === undefined
          ? {}
          : { publishedAt: info.lastModified.toISOString() }),
        files: manifest.entries.length,
        bytes: manifest.entries.reduce((n, e) => n + e.size, 0),
        layout: manifest.layout ?? 'paths',
      });
    }
    return refs;
  });
}

/**
 * Removes a ref: its version stays stored (other refs may share its content) until
 * `gcRemote` finds nothing needs it. @throws FerryError `FERRY_NOT_FOUND` for an unknown ref.
 */
export async function unpublish(options: RemoteOptions & { ref: string }): Promise<VersionId> {
  const name = validateRef(options.ref);
  return withSource(options, async (source) => {
    const remote = await resolveRemote(source, name, options.signal);
    await source.delete(refKey(name), { signal: options.signal });
    return remote.versionId as VersionId;
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
  refs: number;
  keptParts: number;
  removedParts: number;
  removedBytes: number;
  removedManifests: number;
  /** Unreferenced objects kept because they are younger than the grace period. */
  youngKept: number;
}

/**
 * Removes the stored content no ref needs: part objects and manifests that no ref's
 * version uses and that are older than `graceMs` (checked again right before each
 * removal). The rule that makes it safe next to a publish: a publish reuses a stored part
 * only if a ref needs it or it is younger than half the grace period, uploads the rest
 * fresh, writes its manifest, looks once more for vanished parts, and moves its ref last;
 * gc keeps what refs need and everything younger than the grace period, including every
 * part of a manifest that young. So a publish that finishes within half the grace period
 * (12 h by default) never points a ref at a part gc removed. Unpublishing a ref while a
 * publish reuses its parts is outside that rule. Files at their paths (older publishes)
 * are never touched.
 */
export async function gcRemote(options: RemoteGcOptions): Promise<RemoteGcResult> {
  const graceMs = options.graceMs ?? REMOTE_GRACE_MS;
  const signal = options.signal;
  return withSource(options, async (source) => {
    const cutoff = Date.now() - graceMs;
    const names = await refNames(source, signal);
    const live = new Set<VersionId>();
    for (const name of names) {
      const remote = await resolveRemote(source, name, signal);
      live.add(remote.versionId as VersionId);
    }
    const needed = new Set<string>();
    const staleManifests: string[] = [];
    let youngKept = 0;
    for await (const object of source.list(MANIFESTS_PREFIX, { signal })) {
      const id = object.key.slice(MANIFESTS_PREFIX.length).replace(/\.json$/, '') as VersionId;
      const young = (object.lastModified?.getTime() ?? Date.now()) > cutoff;
      if (!live.has(id) && !young) {
        staleManifests.push(object.key);
        continue;
      }
      if (!live.has(id)) youngKept++;
      const remote = await resolveRemote(source, id, signal);
      for (const entry of remote.entries) {
        for (const digest of entry.parts?.digests ?? []) needed.add(partKey(digest));
      }
    }
    const result: RemoteGcResult = {
      refs: names.length,
      keptParts: 0,
      removedParts: 0,
      removedBytes: 0,
      removedManifests: 0,
      youngKept,
    };
    for await (const object of source.list(PARTS_PREFIX, { signal })) {
      throwIfAborted(signal);
      if (needed.has(object.key)) {
        result.keptParts++;
        continue;
      }
      if ((object.lastModified?.getTime() ?? Date.now()) > cutoff) {
        result.youngKept++;
        continue;
      }
      if (!options.dryRun && !(await removeIfOld(source, object.key, cutoff, signal))) continue;
      result.removedParts++;
      result.removedBytes += object.size;
    }
    for (const key of staleManifests) {
      if (!options.dryRun && !(await removeIfOld(source, key, cutoff, signal))) continue;
      result.removedManifests++;
    }
    return result;
  });
}

/** The part keys the versions of every published ref need. */
export async function referencedParts(
  source: Source,
  signal: AbortSignal | undefined,
): Promise<Set<string>> {
  const needed = new Set<string>();
  for (const name of await refNames(source, signal)) {
    const remote = await resolveRemote(source, name, signal);
    for (const entry of remote.entries) {
      for (const digest of entry.parts?.digests ?? []) needed.add(partKey(digest));
    }
  }
  return needed;
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

async function refNames(source: Source, signal: AbortSignal | undefined): Promise<string[]> {
  if (!source.capabilities.list) {
    throw new FerryError('FERRY_UNSUPPORTED', `cannot list the refs of ${source.uri}`, {
      hint: 'Refs are listed from the store itself: use its s3:// URI or local folder.',
    });
  }
  const names: string[] = [];
  try {
    for await (const object of source.list(REFS_PREFIX, { signal })) {
      names.push(object.key.slice(REFS_PREFIX.length));
    }
  } catch (error) {
    if (!isFerryError(error, 'FERRY_NOT_FOUND')) throw error;
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
