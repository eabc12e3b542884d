import { lstatSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import {
  type Digest,
  type DigestAlgorithm,
  type Entry,
  FerryError,
  type Manifest,
  type PartList,
  partLength,
} from '@ferry/manifest';
import type { CacheIndex, StatRecord } from '@ferry/manifest/store';
import { type CacheLayout, rootRelative } from './cache-layout.js';
import { hashLocalFile, md5FromEtag } from './local-hash.js';
import { mapLimit } from './map-limit.js';
import { readCuts } from './part-cuts.js';
import type { PartPool } from './part-pool.js';
import { decide, type FileFacts } from './plan-rules.js';
import type { RemoteEntry, RemoteVersion } from './remote-version.js';
import { statVouches } from './stat-vouches.js';
import { type PartJournal, TransferState } from './transfer-state.js';
import type { PlanSummary, VerifyMode } from './types.js';

/** What to do about one remote file. */
export type FileAction =
  /**
   * Present and right; `known` is its digest for the new manifest, `record` what the stat
   * index holds for it — `fresh` when the index did not vouch for it yet (it was hashed,
   * or taken on the manifest's word under `verify: 'size'`) and must be written.
   */
  | {
      kind: 'skip';
      known: { digest: Digest; parts?: PartList };
      record: StatRecord;
      fresh: boolean;
      /**
       * The right file is the current version's, at this path (absolute): it is hard-linked
       * into the version being built (`fresh` then, as its record goes under the new path).
       */
      linkFrom?: string;
    }
  /**
   * Fetch it; `reuse` names a local file whose parts with the same digest are copied
   * instead of fetched, `resume` the journal of an interrupted transfer of it.
   */
  | {
      kind: 'fetch';
      reuse?: { fromPath: string; digests: Digest[] };
      /** The journal and, per part cut short, the bytes its cuts sidecar kept. */
      resume?: PartJournal & { partial: Record<number, number> };
    }
  /** The same content is elsewhere in the cache (`fromRelPath`, root-relative): copy it. */
  | { kind: 'copy'; fromPath: string; fromRelPath: string; record: StatRecord };

export interface FilePlan {
  entry: RemoteEntry;
  /** Root-relative path (`<subdir>/<path>`), the stat index and journal key. */
  relPath: string;
  finalPath: string;
  partSize: number;
  action: FileAction;
  /** The file on disk was read and hashed to decide (no stat record vouched for it). */
  hashed?: boolean;
  /**
   * The file at the path was changed since ferry wrote it (its stat no longer matches the
   * record) and the pull replaces it: the user should hear about it.
   */
  overwritesEdit?: boolean;
}

export interface PlanInput {
  remote: RemoteVersion;
  sourceUri: string;
  layout: CacheLayout;
  /** Root-relative folder the version's files go to (the stat index keys them under it). */
  subdir: string;
  /**
   * Root-relative folder of the version the tree shows now, when the pull builds the new one
   * beside it (`subdir`): its files are linked or reused from there, never changed.
   */
  base?: string;
  store: CacheIndex;
  verify: VerifyMode;
  partSize: number;
  algorithm: DigestAlgorithm;
  /** The version the tree is at now, if any. */
  previous: Manifest | undefined;
  /** The pool, created on first use: a warm start never starts worker threads. */
  pool: () => PartPool;
}

/**
 * A direct lstat, not one through the thread pool: on a local disk a warm start is little
 * else than one lstat per file, and the pool's hop and promise cost 2.5× the call itself
 * (100k files: 1.5 s against 3.5–4 s here). Planning yields between chunks.
 */
function statOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path, { throwIfNoEntry: false });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw error;
  }
}

/** Files planned at once: enough to keep the disk and the pool busy. */
const PLAN_CONCURRENCY = 64;
/**
 * Entries planned as one chunk: their stat records are read in one batch, and only theirs
 * are held, so a plan's memory beyond its result does not grow with the manifest.
 */
export const PLAN_CHUNK = 1024;

/**
 * Compares the remote version with the cache and decides, per file, what a pull must do.
 * Reads no file content unless the stat index cannot vouch for a file (or `verify` is
 * `hash`): then the file is hashed once, in parallel, and the result decides. The version
 * is planned a chunk at a time, reading only that chunk's stat records.
 */
export async function planPull(input: PlanInput): Promise<FilePlan[]> {
  const { remote, subdir, base, store } = input;
  const journals = new Map((await TransferState.of(store).listJournals()).map((j) => [j.path, j]));
  const facts: PlanFacts = { journals };
  const plans: FilePlan[] = [];
  const chunks = Math.ceil(remote.entries.length / PLAN_CHUNK);
  const readChunk = (index: number) => {
    const chunk = remote.entries.slice(index * PLAN_CHUNK, (index + 1) * PLAN_CHUNK);
    const relPaths = chunk.map((e) => rootRelative(subdir, e.path));
    const records = Promise.all([
      store.getStatsOf(relPaths),
      base === undefined
        ? undefined
        : store.getStatsOf(chunk.map((e) => rootRelative(base, e.path))),
    ]);
    // Settled by the await below; marked handled so a failure while the previous chunk is
    // planned is not reported as unhandled first.
    records.catch(() => {});
    return { chunk, relPaths, records };
  };
  // The next chunk's records are read (off the main thread) while this one's files are
  // stat-ed: a warm start then never waits for the store.
  let next = chunks > 0 ? readChunk(0) : undefined;
  for (let index = 0; next !== undefined; index++) {
    const { chunk, relPaths, records } = next;
    const [atPath, atBase] = await records;
    next = index + 1 < chunks ? readChunk(index + 1) : undefined;
    // Bounded: every entry's stat (and maybe hash) in flight at once costs memory per file.
    const planned = await mapLimit(chunk, PLAN_CONCURRENCY, (entry, i) =>
      planFile(input, facts, entry, relPaths[i] as string, atPath[i], atBase?.[i]),
    );
    for (const p of planned) plans.push(p);
  }
  return plans;
}

/** What planning reads once and shares across entries; the costly parts only when needed. */
interface PlanFacts {
  journals: Map<string, PartJournal>;
  /** The previous version's entries by path: only a plain listing's files need them. */
  previousByPath?: Map<string, Entry>;
  /** Stat records by digest, for dedup copies: read once, when a file must be fetched. */
  byDigest?: Promise<Map<Digest, { relPath: string; record: StatRecord }>>;
}

function previousEntry(input: PlanInput, facts: PlanFacts, path: string): Entry | undefined {
  if (input.previous === undefined) return undefined;
  facts.previousByPath ??= new Map(input.previous.entries.map((e) => [e.path, e]));
  return facts.previousByPath.get(path);
}

function recordsByDigest(
  input: PlanInput,
  facts: PlanFacts,
): Promise<Map<Digest, { relPath: string; record: StatRecord }>> {
  facts.byDigest ??= input.store
    .getStats('')
    .then(
      (all) => new Map([...all].map(([relPath, record]) => [record.digest, { relPath, record }])),
    );
  return facts.byDigest;
}

/**
 * One file's plan: gathers the facts `decide` (plan-rules.ts) works from, the costly ones
 * only when it asks for them, then turns its decision into the action the transfer runs.
 */
async function planFile(
  input: PlanInput,
  facts: PlanFacts,
  entry: RemoteEntry,
  relPath: string,
  atPath: StatRecord | undefined,
  atBase: StatRecord | undefined,
): Promise<FilePlan> {
  const { layout, base } = input;
  const finalPath = join(layout.root, relPath);
  const partSize = entry.parts?.size ?? input.partSize;
  // The file to judge: the one at the path, or else the current version's beside it.
  let localPath = finalPath;
  let st = statOrUndefined(finalPath);
  let record = atPath;
  if (st === undefined && base !== undefined) {
    localPath = join(layout.root, rootRelative(base, entry.path));
    st = statOrUndefined(localPath);
    record = atBase;
  }
  const journal = facts.journals.get(relPath);
  const previous = input.remote.published ? undefined : previousEntry(input, facts, entry.path);
  const file: FileFacts = {
    entry,
    published: input.remote.published,
    verify: input.verify,
    partSize,
    local:
      st === undefined
        ? { kind: 'none' }
        : st.isFile()
          ? { kind: 'file', size: st.size }
          : { kind: st.isSymbolicLink() ? 'symlink' : 'other' },
    atBase: localPath !== finalPath,
    recordVouches: st !== undefined && record !== undefined && statVouches(record, st),
    resumable:
      journal !== undefined &&
      journal.source === input.sourceUri &&
      journal.key === entry.path &&
      journal.size === entry.size &&
      journal.partSize === partSize &&
      journal.algorithm === input.algorithm &&
      journal.etag === entry.etag,
  };
  if (record !== undefined) file.record = record;
  if (previous !== undefined) file.previous = previous;
  const etagMd5 = input.remote.published ? undefined : md5FromEtag(entry.etag);
  if (etagMd5 !== undefined) file.etagMd5 = etagMd5;

  let twin: { fromPath: string; relPath: string; record: StatRecord } | undefined;
  let decision = decide(file);
  while ('need' in decision) {
    switch (decision.need) {
      case 'hash':
        file.content = await hashLocalFile(
          input.pool(),
          localPath,
          st?.size ?? 0,
          entry.parts?.size ?? record?.parts?.size ?? input.partSize,
          input.algorithm,
        );
        break;
      case 'md5':
        file.md5 = (await input.pool().run({ kind: 'md5', path: localPath })).digest;
        break;
      case 'twin':
        twin = await findTwin(input, facts, entry, relPath);
        file.twin = twin !== undefined;
        break;
    }
    decision = decide(file);
  }

  const plan = (action: FileAction): FilePlan => {
    const p: FilePlan = { entry, relPath, finalPath, partSize, action };
    if (decision.kind !== 'in-the-way' && decision.hashed) p.hashed = true;
    if (decision.kind !== 'in-the-way' && decision.kind !== 'skip' && decision.overwritesEdit) {
      p.overwritesEdit = true;
    }
    return p;
  };
  switch (decision.kind) {
    case 'in-the-way':
      throw new FerryError('FERRY_IO', `${localPath} is in the way: it is not a regular file`, {
        key: localPath,
        hint: 'Move it away, then pull again.',
      });
    case 'skip': {
      const { known } = decision;
      let kept: StatRecord =
        decision.vouched && record !== undefined
          ? record
          : {
              // The plan-time stat goes with the hash it was taken for: a change after it shows.
              size: st?.size ?? entry.size,
              mtimeMs: st?.mtimeMs ?? 0,
              digest: known.digest,
              ...(known.parts ? { parts: known.parts } : {}),
            };
      if (decision.vouched && entry.digest === kept.digest) {
        // A warm start keeps a plan per file: it points at the manifest's digest strings
        // rather than holding the record's own copies (most of a record's bytes).
        const slim: StatRecord = { size: kept.size, mtimeMs: kept.mtimeMs, digest: entry.digest };
        const parts = entry.parts ?? kept.parts;
        if (parts !== undefined) slim.parts = parts;
        kept = slim;
      }
      const skip: FileAction = {
        kind: 'skip',
        known: decision.vouched ? kept : known,
        record: kept,
        fresh: decision.fresh,
      };
      if (file.atBase) skip.linkFrom = localPath;
      return plan(skip);
    }
    case 'fetch': {
      const { reuse } = decision;
      return plan({
        kind: 'fetch',
        ...(decision.resume && journal !== undefined
          ? { resume: { ...journal, partial: await readCuts(journal.tmpPath) } }
          : {}),
        ...(reuse === undefined ? {} : { reuse: { fromPath: localPath, digests: reuse } }),
      });
    }
    case 'copy': {
      if (twin === undefined) throw new Error('plan: a copy decided without its twin');
      const { fromPath, relPath: fromRelPath, record: twinRecord } = twin;
      return plan({ kind: 'copy', fromPath, fromRelPath, record: twinRecord });
    }
  }
}

/** Another file of the cache with the entry's content, still as ferry left it. */
async function findTwin(
  input: PlanInput,
  facts: PlanFacts,
  entry: RemoteEntry,
  relPath: string,
): Promise<{ fromPath: string; relPath: string; record: StatRecord } | undefined> {
  if (entry.digest === undefined) return undefined;
  const twin = (await recordsByDigest(input, facts)).get(entry.digest);
  if (twin === undefined || twin.record.size !== entry.size || twin.relPath === relPath) {
    return undefined;
  }
  const fromPath = join(input.layout.root, twin.relPath);
  const twinStat = statOrUndefined(fromPath);
  if (twinStat === undefined || !statVouches(twin.record, twinStat)) return undefined;
  return { fromPath, relPath: twin.relPath, record: twin.record };
}

/** Totals of a plan, for the `plan` event and dry runs. */
export function summarize(plans: FilePlan[], removeCount: number): PlanSummary {
  const summary: PlanSummary = {
    fetch: { files: 0, bytes: 0 },
    resumedBytes: 0,
    reuse: { files: 0, bytes: 0 },
    skip: { files: 0, bytes: 0 },
    hashed: { files: 0, bytes: 0 },
    remove: { files: removeCount },
  };
  for (const p of plans) {
    const size = p.entry.size;
    if (p.hashed === true) {
      summary.hashed.files++;
      summary.hashed.bytes += size;
    }
    switch (p.action.kind) {
      case 'skip':
        summary.skip.files++;
        summary.skip.bytes += size;
        break;
      case 'copy':
        summary.reuse.files++;
        summary.reuse.bytes += size;
        break;
      case 'fetch': {
        const local = localBytes(p);
        summary.fetch.files++;
        summary.fetch.bytes += size - local.reused - local.resumed;
        summary.resumedBytes += local.resumed;
        summary.reuse.bytes += local.reused;
        break;
      }
    }
  }
  return summary;
}

/** Bytes of a fetch that come from disk rather than the source, as planned. */
export function localBytes(p: FilePlan): { reused: number; resumed: number } {
  if (p.action.kind !== 'fetch') return { reused: 0, resumed: 0 };
  const length = (i: number) => partLength(p.entry.size, p.partSize, i);
  let reused = 0;
  let resumed = 0;
  const expected = p.entry.parts?.digests;
  if (p.action.reuse && expected) {
    p.action.reuse.digests.forEach((d, i) => {
      if (expected[i] === d) reused += length(i);
    });
  }
  if (p.action.resume) {
    const { done, partial } = p.action.resume;
    for (const i of Object.keys(done)) resumed += length(Number(i));
    for (const [i, bytes] of Object.entries(partial)) {
      if (done[Number(i)] === undefined) resumed += Math.min(bytes, length(Number(i)));
    }
  }
  return { reused, resumed };
}
