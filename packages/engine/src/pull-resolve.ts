// A pull's first phase: which version the folder is brought to, asked of the source or
// taken from the cache, and which of its files the folder holds.
import {
  FerryError,
  isFerryError,
  isVersionId,
  type Manifest,
  type PathFilter,
} from '@ferry/manifest';
import type { TreeState } from '@ferry/manifest/store';
import { compileFilter } from './path-filter.js';
import type { PullRun } from './pull-run.js';
import { type RemoteVersion, resolveLocal, resolveRemote } from './remote-version.js';

/** The version a pull brings the folder to, and what the folder holds now. */
export interface Target {
  /** The version as resolved (its ref named as the caller asked). */
  remote: RemoteVersion;
  /** The same, with only the entries the filter selects: what the folder will hold. */
  wanted: RemoteVersion;
  /** Resolved from the cache alone: the source was not asked, or could not be reached. */
  servedLocally: boolean;
  tree: TreeState | undefined;
  /** The manifest of the version the folder is at now. */
  previous: Manifest | undefined;
}

export async function resolveTarget(run: PullRun): Promise<Target> {
  const { store, uri, options, filter, emit } = run;
  const tree = await store.getTree(run.subdir);
  const { version, servedLocally } = await resolveVersion(run);
  const remote =
    version.ref === undefined && options.refName !== undefined
      ? { ...version, ref: options.refName }
      : version;
  emit({
    type: 'resolved',
    source: uri,
    ...(remote.ref === undefined ? {} : { ref: remote.ref }),
    ...(remote.versionId === undefined ? {} : { versionId: remote.versionId }),
    published: remote.published,
    files: remote.entries.length,
    bytes: remote.entries.reduce((n, e) => n + e.size, 0),
  });
  if (remote.entries.length === 0 && options.allowEmpty !== true) {
    // A typo in a prefix lists nothing, and "pulled 0 files" would look like success.
    throw new FerryError('FERRY_NOT_FOUND', `${uri} holds no files`, {
      key: uri,
      hint: 'Check the bucket and prefix (ferry refs <source> lists published versions); allowEmpty (--allow-empty) accepts an empty source.',
    });
  }
  // The folder holds the files the filter selects; the manifest still describes them all.
  checkOnlyPresent(remote, filter, uri);
  const selects = compileFilter(filter);
  const wanted =
    filter === undefined
      ? remote
      : { ...remote, entries: remote.entries.filter((e) => selects(e.path)) };
  if (wanted.entries.length === 0 && remote.entries.length > 0 && options.allowEmpty !== true) {
    throw new FerryError(
      'FERRY_NOT_FOUND',
      `the filters select none of the ${remote.entries.length} files of ${uri}`,
      {
        key: uri,
        hint: 'Check --include / --exclude: a glob without "/" matches file names in any folder.',
      },
    );
  }
  // At the version it already has (a warm start), the remote manifest is the previous one.
  const previous =
    tree === undefined
      ? undefined
      : tree.versionId === remote.versionId && remote.manifest !== undefined
        ? remote.manifest
        : await store.getManifest(tree.versionId);
  return { remote, wanted, servedLocally, tree, previous };
}

/**
 * The version asked for: from the cache when a version id it holds is asked for or the
 * pull is offline, else from the source (the manifest itself from the cache when the
 * cache holds the version the ref names), else, when the source cannot be reached, from
 * the cache.
 */
async function resolveVersion(
  run: PullRun,
): Promise<{ version: RemoteVersion; servedLocally: boolean }> {
  const { store, uri, options, emit } = run;
  const local = (): Promise<RemoteVersion | undefined> =>
    resolveLocal(store, uri, options.ref, run.subdir);
  // A version id the cache holds is content-addressed: no need to ask the source.
  const held = isVersionId(options.ref) ? await local() : undefined;
  if (held !== undefined) return { version: held, servedLocally: false };
  if (options.offline === true) {
    const found = await local();
    if (found === undefined) throw offlineMissing(uri, options.ref);
    return { version: found, servedLocally: true };
  }
  try {
    const version = await resolveRemote(run.source, options.ref, run.signal, (id) =>
      store.getManifest(id),
    );
    return { version, servedLocally: false };
  } catch (error) {
    const found = options.fallback !== false && unreachable(error) ? await local() : undefined;
    if (found === undefined) throw error;
    emit({
      type: 'warning',
      message: `${uri} cannot be reached (${(error as Error).message}); serving the version this cache holds for ${options.ref ?? 'it'}, ${found.versionId}`,
    });
    return { version: found, servedLocally: true };
  }
}

/** Refuses an `only` filter naming a file the version does not have. */
function checkOnlyPresent(remote: RemoteVersion, filter: PathFilter | undefined, uri: string) {
  if (filter?.only === undefined) return;
  const paths = new Set(remote.entries.map((e) => e.path));
  const absent = filter.only.filter((p) => !paths.has(p));
  if (absent.length === 0) return;
  const names = new Set(absent.map((p) => p.slice(p.lastIndexOf('/') + 1)));
  const near = remote.entries
    .map((e) => e.path)
    .filter((p) => names.has(p.slice(p.lastIndexOf('/') + 1)));
  throw new FerryError('FERRY_NOT_FOUND', `${uri} has no file ${absent.join(', ')}`, {
    key: absent[0] as string,
    hint:
      near.length > 0
        ? `Did you mean ${near.slice(0, 3).join(', ')}? Paths are relative to the folder.`
        : 'Paths are relative to the folder and match exactly; --include takes globs.',
  });
}

/** Failures that mean the source is out of reach (after retries), not that it said no. */
function unreachable(error: unknown): boolean {
  return isFerryError(error, 'FERRY_TRANSIENT') || isFerryError(error, 'FERRY_THROTTLED');
}

function offlineMissing(uri: string, ref: string | undefined): FerryError {
  return new FerryError(
    'FERRY_NOT_FOUND',
    `offline: this cache holds no version of ${uri}${ref === undefined ? '' : ` for ${ref}`}`,
    {
      key: ref,
      hint: 'Pull it once with the network, or name a version id the cache holds (ferry status).',
    },
  );
}
