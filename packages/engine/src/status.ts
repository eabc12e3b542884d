import { join } from 'node:path';
import { type PathFilter, partCount, partLength, type VersionId } from '@ferry/manifest';
import { rootRelative } from './cache-layout.js';
import { folderGone } from './gc.js';
import { openExistingStore } from './open-store.js';
import { readCuts } from './part-cuts.js';
import { heldEntries } from './path-filter.js';
import { TransferState } from './transfer-state.js';

export interface CacheStatus {
  root: string;
  /** Trees materialised in the cache, each at one version. */
  trees: Array<{
    dir: string;
    source: string;
    ref?: string;
    versionId: VersionId;
    /** The globs the folder was pulled with, when it holds a subset of the version. */
    filter?: PathFilter;
    /** The folder was deleted by hand: `removeFolder` (`ferry rm`) or `gc` forgets it. */
    missing?: true;
    /** The version the folder showed before its last switch, still on disk (instant rollback). */
    previous?: VersionId;
    /** Files and bytes the folder holds (the filter's selection). */
    files: number;
    bytes: number;
    updatedAt: string;
  }>;
  /** Files whose transfer was interrupted, with how much of each is on disk. */
  partials: Array<{
    path: string;
    source: string;
    size: number;
    doneBytes: number;
    parts: number;
    doneParts: number;
  }>;
  /** Pulls that started and never finished: `ferry resume` completes them. */
  interrupted: Array<{
    dir: string;
    source: string;
    ref?: string;
    versionId?: VersionId;
    startedAt: string;
  }>;
}

/** What a cache root holds: versions present, files and bytes, interrupted transfers. */
export async function status(options: {
  root: string;
  signal?: AbortSignal;
}): Promise<CacheStatus> {
  const opened = await openExistingStore(options.root, { readOnlyCopy: true });
  const store = opened.store;
  try {
    const trees: CacheStatus['trees'] = [];
    for (const tree of await store.listTrees()) {
      const manifest = await store.getManifest(tree.versionId);
      const held = heldEntries(manifest?.entries ?? [], tree.filter);
      trees.push({
        dir: tree.dir,
        source: tree.source,
        ...(tree.ref === undefined ? {} : { ref: tree.ref }),
        versionId: tree.versionId,
        files: held.length,
        bytes: held.reduce((n, e) => n + e.size, 0),
        ...(tree.filter === undefined ? {} : { filter: tree.filter }),
        ...(tree.previous === undefined ? {} : { previous: tree.previous.versionId }),
        ...(tree.dir !== '' && (await folderGone(join(options.root, tree.dir)))
          ? { missing: true as const }
          : {}),
        updatedAt: tree.updatedAt,
      });
    }
    const transfers = TransferState.of(store);
    const pending = await transfers.listPendingPulls();
    // A version being built beside the one shown: its files named as the folder will show them.
    const building = pending.flatMap((p) =>
      p.versionDir === undefined ? [] : [{ from: `${p.versionDir}/`, to: rootRelative(p.dir, '') }],
    );
    const shownPath = (relPath: string) => {
      const b = building.find((x) => relPath.startsWith(x.from));
      return b === undefined ? relPath : b.to + relPath.slice(b.from.length);
    };
    const partials: CacheStatus['partials'] = [];
    for (const j of await transfers.listJournals()) {
      const parts = partCount(j.size, j.partSize);
      const done = Object.keys(j.done).map(Number);
      const length = (i: number) => partLength(j.size, j.partSize, i);
      let doneBytes = done.reduce((n, i) => n + length(i), 0);
      // Parts cut short keep what their cuts sidecar recorded.
      for (const [i, bytes] of Object.entries(await readCuts(j.tmpPath))) {
        if (j.done[Number(i)] === undefined) doneBytes += Math.min(bytes, length(Number(i)));
      }
      partials.push({
        path: shownPath(j.path),
        source: j.source,
        size: j.size,
        doneBytes,
        parts,
        doneParts: done.length,
      });
    }
    const interrupted = pending.map((p) => ({
      dir: p.dir,
      source: p.source,
      ...(p.ref === undefined ? {} : { ref: p.ref }),
      ...(p.versionId === undefined ? {} : { versionId: p.versionId }),
      startedAt: p.startedAt,
    }));
    return { root: options.root, trees, partials, interrupted };
  } finally {
    await opened.close();
  }
}
