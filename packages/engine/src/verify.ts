import { lstatSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_ALGORITHM, DEFAULT_PART_SIZE, parseDigest, throwIfAborted } from '@ferry/manifest';
import { rootRelative } from './cache-layout.js';
import { folderGone } from './gc.js';
import { hashLocalFile } from './local-hash.js';
import { mapLimit } from './map-limit.js';
import { openExistingStore } from './open-store.js';
import { hashingWorkers, PartPool } from './part-pool.js';
import { compileFilter, heldEntries, normalizeFilter } from './path-filter.js';
import { PartTally, PROGRESS_INTERVAL_MS, ProgressMeter } from './progress-meter.js';
import { statVouches } from './stat-vouches.js';
import type { ProgressEvent } from './types.js';
import { showsVersion, versionDirOf } from './version-dirs.js';

export interface VerifyOptions {
  root: string;
  /** Re-hash every file (parallel, at disk speed) instead of comparing stat data. @default false */
  deep?: boolean;
  /**
   * Worker threads that hash for `deep`; 0: the calling thread. @default one per core, one
   * per 256 MiB of the folders checked at most, none for one thread's worth (`hashingWorkers`)
   */
  workers?: number;
  /**
   * Check only the files these globs select (paths within each folder, as `PullOptions`
   * reads them), among those the folder holds. @default every file
   */
  include?: string[];
  exclude?: string[];
  signal?: AbortSignal;
  onEvent?: (event: VerifyEvent) => void;
}

export type VerifyEvent =
  | { type: 'file-checked'; path: string; size: number; ok: boolean }
  /**
   * Bytes checked (re-hashed, with `deep`), sampled on a timer. `totalBytes` counts the
   * folders started so far: exact for a root of one folder, growing by folder otherwise.
   */
  | ProgressEvent;

export type VerifyProblemKind = 'missing' | 'folder-missing' | 'size' | 'modified' | 'corrupt';

export interface VerifyReport {
  files: number;
  bytes: number;
  /** Empty when every file of every recorded version is as ferry left it. */
  problems: Array<{ path: string; problem: VerifyProblemKind; detail: string }>;
}

/** Files checked as one chunk (one batched read of their stat records). */
const VERIFY_CHUNK = 1024;
/** Files hashed or checked at once within a chunk: the pool queues the rest anyway. */
const VERIFY_CONCURRENCY = 64;

/** A direct lstat, as the planner's (see plan.ts): a stat check is little else. */
function statOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path, { throwIfNoEntry: false });
  } catch {
    return undefined;
  }
}

/**
 * Checks every file of every tree against its recorded version: size and mtime against
 * the stat index, or with `deep` the content hash against the manifest.
 */
export async function verify(options: VerifyOptions): Promise<VerifyReport> {
  throwIfAborted(options.signal);
  const opened = await openExistingStore(options.root, { readOnlyCopy: true });
  const store = opened.store;
  let pool: PartPool | undefined;
  const report: VerifyReport = { files: 0, bytes: 0, problems: [] };
  const asked = compileFilter(normalizeFilter(options));
  const tally = new PartTally();
  const meter = new ProgressMeter(
    0,
    () => tally.sample(),
    (event) => options.onEvent?.(event),
  );
  meter.start(PROGRESS_INTERVAL_MS);
  try {
    for (const tree of await store.listTrees()) {
      const manifest = await store.getManifest(tree.versionId);
      if (!manifest) continue;
      if (tree.dir !== '' && (await folderGone(join(options.root, tree.dir)))) {
        report.problems.push({
          path: tree.dir,
          problem: 'folder-missing',
          detail: 'the folder was deleted: `ferry rm <root> <folder>` (or `ferry gc`) forgets it',
        });
        continue;
      }
      if (tree.versionDir !== undefined && !(await showsVersion(options.root, tree.dir, tree))) {
        report.problems.push({
          path: tree.dir,
          problem: 'modified',
          detail: `the folder does not lead to the version ferry pulled (${tree.versionDir}); \`ferry pull\` mends it`,
        });
      }
      const entries = heldEntries(manifest.entries, tree.filter).filter((e) => asked(e.path));
      meter.totalBytes += entries.reduce((n, e) => n + e.size, 0);
      const dir = versionDirOf(tree.dir, tree);
      // A chunk at a time: its stat records in one batched read, its files checked with a
      // bounded number in flight, so memory does not grow with the version.
      for (let start = 0; start < entries.length; start += VERIFY_CHUNK) {
        throwIfAborted(options.signal);
        const chunk = entries.slice(start, start + VERIFY_CHUNK);
        const storedAt = chunk.map((e) => rootRelative(dir, e.path));
        const records = options.deep ? undefined : await store.getStatsOf(storedAt);
        await mapLimit(chunk, VERIFY_CONCURRENCY, async (entry, i) => {
          // Reported by the folder users read; looked up where the version's files are.
          const relPath = rootRelative(tree.dir, entry.path);
          const path = join(options.root, storedAt[i] as string);
          const st = statOrUndefined(path);
          report.files++;
          report.bytes += entry.size;
          let checked = 0;
          const problem = (kind: VerifyProblemKind, detail: string) => {
            tally.add(relPath, entry.size, entry.size - checked);
            report.problems.push({ path: relPath, problem: kind, detail });
            options.onEvent?.({ type: 'file-checked', path: relPath, size: entry.size, ok: false });
          };
          if (!st?.isFile()) return problem('missing', `${path} is missing`);
          if (st.size !== entry.size)
            return problem('size', `${st.size} bytes, expected ${entry.size}`);
          if (options.deep) {
            // Sized by the bytes of the trees seen so far: a small cache is hashed on this
            // thread, a large one on every core.
            pool ??= new PartPool({
              workers: options.workers ?? hashingWorkers(meter.totalBytes),
              concurrency: 1,
            });
            const partSize = entry.parts?.size ?? DEFAULT_PART_SIZE;
            const algorithm = entry.digest
              ? parseDigest(entry.digest).algorithm
              : DEFAULT_ALGORITHM;
            const { digest } = await hashLocalFile(
              pool,
              path,
              st.size,
              partSize,
              algorithm,
              (bytes) => {
                checked += bytes;
                tally.add(relPath, entry.size, bytes);
              },
            );
            if (digest !== entry.digest)
              return problem('corrupt', `content hashes to ${digest}, expected ${entry.digest}`);
          } else {
            const record = records?.[i];
            if (!record || !statVouches(record, st) || record.digest !== entry.digest) {
              return problem(
                'modified',
                'changed since ferry wrote it (mtime differs); `ferry verify --deep` checks the content',
              );
            }
          }
          tally.add(relPath, entry.size, entry.size - checked);
          options.onEvent?.({ type: 'file-checked', path: relPath, size: entry.size, ok: true });
        });
      }
    }
    report.problems.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    meter.finish();
    return report;
  } finally {
    meter.stop();
    await pool?.destroy();
    await opened.close();
  }
}
