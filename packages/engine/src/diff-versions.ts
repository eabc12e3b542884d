import { openSource, type SourceOptions, withRetry } from '@ferry/adapters';
import { diff, FerryError, type ManifestDiff, type VersionId } from '@ferry/manifest';
import { heldEntries, normalizeFilter } from './path-filter.js';
import { resolveRemote } from './remote-version.js';

export interface DiffVersionsOptions {
  source: string;
  sourceOptions?: SourceOptions;
  /** Ref or version id of the older version. */
  from: string;
  /** Ref or version id of the newer version. */
  to: string;
  /** Compare only the files these globs select, as a pull with them would (see `PullOptions`). */
  include?: string[];
  exclude?: string[];
  signal?: AbortSignal;
}

export interface VersionDiff extends ManifestDiff {
  from: VersionId;
  to: VersionId;
  /** Bytes a pull from `from` to `to` fetches: added files, changed parts (or files), nothing for renames. */
  transferBytes: number;
}

/** What changed between two published versions of a source, files and bytes. */
export async function diffVersions(options: DiffVersionsOptions): Promise<VersionDiff> {
  const source = withRetry(openSource(options.source, options.sourceOptions));
  try {
    const [a, b] = await Promise.all([
      resolveRemote(source, options.from, options.signal),
      resolveRemote(source, options.to, options.signal),
    ]);
    if (!a.manifest || !a.versionId || !b.manifest || !b.versionId) {
      throw new FerryError(
        'FERRY_NOT_FOUND',
        `${options.source} is not published: there are no versions to compare`,
        {
          hint: 'Publish versions with `ferry publish <dir> <dest> --ref <name>`.',
        },
      );
    }
    const filter = normalizeFilter(options);
    const d = diff(
      { ...a.manifest, entries: [...heldEntries(a.manifest.entries, filter)] },
      { ...b.manifest, entries: [...heldEntries(b.manifest.entries, filter)] },
    );
    let transferBytes = d.added.reduce((n, e) => n + e.size, 0);
    for (const c of d.changed) {
      if (c.changedParts && c.to.parts) {
        const { size } = c.to.parts;
        transferBytes += c.changedParts.reduce(
          (n, i) => n + Math.min(size, c.to.size - i * size),
          0,
        );
      } else {
        transferBytes += c.to.size;
      }
    }
    return { ...d, from: a.versionId, to: b.versionId, transferBytes };
  } finally {
    await source.close();
  }
}
