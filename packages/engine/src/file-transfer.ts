import { constants } from 'node:fs';
import { copyFile, mkdir, open, rename, rm, stat, truncate } from 'node:fs/promises';
import type { SourceOptions } from '@ferry/adapters';
import {
  AbortError,
  combinePartDigests,
  type Digest,
  type DigestAlgorithm,
  errorDetails,
  FerryError,
  isFerryError,
  type PartList,
  parseDigest,
  partCount,
  partRange,
} from '@ferry/manifest';
import type { CacheIndex, StatRecord } from '@ferry/manifest/store';
import { type CacheLayout, tmpPathFor } from './cache-layout.js';
import type { ContentPlace } from './content-store.js';
import { hashLocalFile, md5FromEtag } from './local-hash.js';
import { Md5Follower } from './md5-follower.js';
import { CUT_BYTES, createCuts, cutsPathFor } from './part-cuts.js';
import type { PartPool } from './part-pool.js';
import { type FilePlan, localBytes } from './plan.js';
import { ensureRealDirs, type KnownDirs } from './real-dirs.js';
import { partKey } from './remote-version.js';
import { TransferState } from './transfer-state.js';
import type { PullEvent } from './types.js';

/** A bad part is fetched again this many times before the file fails. */
const INTEGRITY_ATTEMPTS = 3;

export interface TransferContext {
  pool: PartPool;
  store: CacheIndex;
  layout: CacheLayout;
  sourceUri: string;
  /** Options the workers open the source with (see `workerSourceOptions`). */
  sourceOptions: () => Promise<SourceOptions>;
  algorithm: DigestAlgorithm;
  concurrency: number;
  /** Compare a finished file's MD5 with a single-part S3 ETag. */
  checkEtag: boolean;
  /** fdatasync each file before its rename (see `PullOptions.durable`). */
  durable: boolean;
  /** See `PullOptions.stallTimeoutMs`. */
  stallTimeoutMs: number;
  /** See `PullOptions.hedgeAfterMs`. */
  hedgeAfterMs: number;
  /** Where the version's content is: each file at its path, or each part under its digest. */
  storage: 'paths' | 'parts';
  /** For `parts`: where the part objects are. @default the source's own `.ferry/parts/` */
  parts?: ContentPlace;
  /** See `PullOptions.mirrors`. */
  mirrors: string[];
  signal: AbortSignal;
  emit(event: PullEvent): void;
}

/** A file that reached its final path, as the stat index and the new manifest record it. */
export interface CommittedFile {
  plan: FilePlan;
  digest: Digest;
  parts?: PartList;
  fetchedBytes: number;
  reusedBytes: number;
}

type PartMode = 'fetch' | 'copy' | 'check-resumed';

interface PartJob {
  file: FileState;
  index: number;
  mode: PartMode;
}

export interface FileState {
  plan: FilePlan;
  tmpPath: string;
  count: number;
  digests: Array<Digest | undefined>;
  remaining: number;
  fetchedBytes: number;
  reusedBytes: number;
  doneBytes: number;
  journaled: boolean;
  /**
   * The MD5 a plain listing's ETag promises: followed part by part for a file of several
   * parts, computed by the worker for a file of one; `undefined` when there is none to check.
   */
  md5?: { expected: string; follower?: Md5Follower; actual?: string };
  /** The file's mtime as its only writer saw it last (a one-part file), saving a stat. */
  mtimeMs?: number;
  opened?: Promise<void>;
  failed?: unknown;
}

/** Files being transferred, for progress display. */
export type ActiveFiles = Set<FileState>;

function initialMode(plan: FilePlan, index: number): PartMode {
  if (plan.action.kind !== 'fetch') return 'copy';
  const { resume, reuse } = plan.action;
  if (resume?.done[index] !== undefined) return 'check-resumed';
  const expected = plan.entry.parts?.digests[index];
  if (reuse && expected !== undefined && reuse.digests[index] === expected) return 'copy';
  return 'fetch';
}

/**
 * Moves every planned fetch and copy into place: parts of all files interleave on the
 * pool, `concurrency` at a time, each part verified, each file committed (renamed and
 * recorded) as soon as its last part lands. A file that fails keeps the previous good
 * file at its path; the others go on. Resolves with the files committed; rejects with an
 * AbortError when aborted, or the first file error once every file has been tried.
 */
export async function transferFiles(
  plans: FilePlan[],
  ctx: TransferContext,
  active: ActiveFiles,
): Promise<CommittedFile[]> {
  const copies: FilePlan[] = [];
  const jobs: PartJob[] = [];
  for (const plan of plans) {
    if (plan.action.kind === 'skip') continue;
    if (plan.action.kind === 'copy') copies.push(plan);
    else jobs.push(...fileJobs(plan, ctx));
  }

  await mkdir(ctx.layout.tmpDir, { recursive: true });
  const place = new Placement(ctx.store);
  try {
    return await runJobs(jobs, copies, ctx, active, place);
  } finally {
    // Records of files already in place; lost ones would only cost a re-hash next time.
    await place.flush();
  }
}

/** The MD5 a file's content must have: a plain listing's single-part ETag, when checked. */
function expectedMd5(plan: FilePlan, checkEtag: boolean): string | undefined {
  // A manifest digest proves the content; a plain listing's MD5 ETag is the only check it has.
  return checkEtag && plan.entry.digest === undefined && plan.entry.size > 0
    ? md5FromEtag(plan.entry.etag)
    : undefined;
}

/**
 * Whether the calling thread will read files back for their MD5 (`Md5Follower`): a file
 * of several parts with a single-part ETag to check, fetched rather than copied.
 */
export function followsMd5(plans: FilePlan[], checkEtag: boolean): boolean {
  return plans.some(
    (plan) =>
      plan.action.kind === 'fetch' &&
      partCount(plan.entry.size, plan.partSize) > 1 &&
      expectedMd5(plan, checkEtag) !== undefined,
  );
}

/** The parts of one file to fetch or copy, as jobs sharing the file's state. */
function fileJobs(plan: FilePlan, ctx: TransferContext): PartJob[] {
  const count = partCount(plan.entry.size, plan.partSize);
  const file: FileState = {
    plan,
    tmpPath: tmpPathFor(ctx.layout, plan.relPath),
    count,
    digests: new Array(count).fill(undefined),
    remaining: count,
    fetchedBytes: 0,
    reusedBytes: 0,
    doneBytes: 0,
    // A journal (and its cuts) lets a file be resumed where it stopped. A file no larger
    // than one cut costs no more to fetch again than a checkpointed part can lose, so only
    // those go without: the waste bound of a kill is the same for every part in flight.
    journaled: count > 1 || plan.entry.size > CUT_BYTES,
  };
  const md5 = expectedMd5(plan, ctx.checkEtag);
  if (md5 !== undefined) {
    file.md5 =
      count > 1
        ? {
            expected: md5,
            follower: new Md5Follower(file.tmpPath, plan.entry.size, plan.partSize, count),
          }
        : { expected: md5 };
  }
  // An empty file has no parts to schedule: it is committed on its own.
  if (count === 0) return [{ file, index: -1, mode: 'fetch' }];
  return Array.from({ length: count }, (_, i) => ({ file, index: i, mode: initialMode(plan, i) }));
}

async function runJobs(
  jobs: PartJob[],
  copies: FilePlan[],
  ctx: TransferContext,
  active: ActiveFiles,
  place: Placement,
): Promise<CommittedFile[]> {
  const committed: CommittedFile[] = [];
  const errors: unknown[] = [];
  for (const plan of copies) {
    try {
      const copied = await copyWholeFile(plan, ctx, place);
      if (copied !== undefined) committed.push(copied);
      // The twin was not what its record says: fetch this file like any other.
      else jobs.push(...fileJobs(plan, ctx));
    } catch (error) {
      if (ctx.signal.aborted) throw new AbortError(ctx.signal.reason);
      errors.push(error);
    }
  }

  let next = 0;
  const runner = async () => {
    while (next < jobs.length && !ctx.signal.aborted) {
      const job = jobs[next++] as PartJob;
      const { file } = job;
      if (file.failed !== undefined) continue;
      try {
        await openFile(file, ctx, active);
        if (job.index >= 0) {
          await runPart(job, ctx);
          file.md5?.follower?.partDone(job.index);
        }
        if (job.index < 0 || --file.remaining === 0) {
          committed.push(await commitFile(file, ctx, place));
          active.delete(file);
        }
      } catch (error) {
        if (ctx.signal.aborted) return;
        if (file.failed === undefined) {
          file.failed = error;
          errors.push(error);
          active.delete(file);
          await abandonFile(file, error, ctx);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(ctx.concurrency, jobs.length) }, runner));
  if (ctx.signal.aborted) throw new AbortError(ctx.signal.reason);
  if (errors.length > 0) throw summarizeFailures(errors);
  return committed;
}

function summarizeFailures(errors: unknown[]): unknown {
  const [first] = errors;
  if (errors.length === 1 || !isFerryError(first)) return first;
  return new FerryError(
    first.code,
    `${first.message} (and ${errors.length - 1} more files failed)`,
    {
      ...errorDetails(first),
      cause: first,
    },
  );
}

async function openFile(file: FileState, ctx: TransferContext, active: ActiveFiles): Promise<void> {
  file.opened ??= (async () => {
    const { plan } = file;
    const action = plan.action;
    let resumed = false;
    if (action.kind === 'fetch' && action.resume) {
      const st = await stat(file.tmpPath).catch(() => undefined);
      resumed = st?.size === plan.entry.size;
    }
    if (!resumed) {
      // Not resumable after all (partial file gone or cut short): every part is fetched.
      if (action.kind === 'fetch') delete action.resume;
      // A one-part file is created by the worker that writes it: two syscalls less per
      // small file. Larger ones are preallocated here, before parts land at their offsets.
      if (file.count !== 1 || file.journaled) {
        await (await open(file.tmpPath, 'w')).close();
        if (plan.entry.size > 0) await truncate(file.tmpPath, plan.entry.size);
      }
      if (file.journaled) {
        await TransferState.of(ctx.store).startJournal({
          path: plan.relPath,
          tmpPath: file.tmpPath,
          source: ctx.sourceUri,
          key: plan.entry.path,
          ...(plan.entry.etag === undefined ? {} : { etag: plan.entry.etag }),
          size: plan.entry.size,
          partSize: plan.partSize,
          algorithm: ctx.algorithm,
          startedAt: new Date().toISOString(),
        });
        await createCuts(file.tmpPath, file.count);
      }
    }
    active.add(file);
    const local = localBytes(plan);
    ctx.emit({
      type: 'file-start',
      path: plan.entry.path,
      size: plan.entry.size,
      bytesToFetch: plan.entry.size - local.reused - local.resumed,
    });
  })();
  await file.opened;
}

/** What every kind of part task of one part shares. */
interface PartAt {
  file: FileState;
  index: number;
  start: number;
  end: number;
  /** The part's digest in the manifest, when there is one. */
  expected: Digest | undefined;
}

/**
 * Brings one part into the partial file: a part an interrupted transfer finished is
 * re-hashed where it lies, a part an older local copy holds is copied from it, and anything
 * else — or either of those that turns out wrong — is fetched.
 */
async function runPart(job: PartJob, ctx: TransferContext): Promise<void> {
  const { file, index } = job;
  const { start, end } = partRange(file.plan.entry.size, file.plan.partSize, index);
  const part: PartAt = { file, index, start, end, expected: file.plan.entry.parts?.digests[index] };
  if (job.mode === 'check-resumed' && (await keepResumedPart(part, ctx))) return;
  if (job.mode === 'copy' && (await copyPart(part, ctx))) return;
  await fetchPart(part, ctx);
}

/** A part the journal says was done: kept when it still hashes to what was recorded. */
async function keepResumedPart(part: PartAt, ctx: TransferContext): Promise<boolean> {
  const { file, index, start, end, expected } = part;
  const action = file.plan.action;
  const recorded = action.kind === 'fetch' ? action.resume?.done[index] : undefined;
  if (recorded === undefined) return false;
  const { digest } = await ctx.pool.run({
    kind: 'hash',
    path: file.tmpPath,
    start,
    end,
    algorithm: ctx.algorithm,
  });
  if (digest !== recorded || (expected !== undefined && digest !== expected)) return false;
  file.digests[index] = digest;
  file.doneBytes += end - start;
  return true;
}

/** The same part of an older local copy, verified on the way; false when it changed. */
async function copyPart(part: PartAt, ctx: TransferContext): Promise<boolean> {
  const { file, index } = part;
  const action = file.plan.action;
  if (action.kind !== 'fetch' || action.reuse === undefined) return false;
  try {
    const r = await ctx.pool.run({
      kind: 'copy',
      fromPath: action.reuse.fromPath,
      tmpPath: file.tmpPath,
      ...taskRange(part, ctx),
    });
    file.digests[index] = r.digest;
    file.reusedBytes += r.bytes;
    file.doneBytes += r.bytes;
    return true;
  } catch (error) {
    // The local copy changed under us: fetch the part instead.
    if (!isFerryError(error, 'FERRY_INTEGRITY')) throw error;
    return false;
  }
}

/** The range fields of a copy or fetch task. */
function taskRange(part: PartAt, ctx: TransferContext) {
  const { file, start, end, expected } = part;
  return {
    start,
    end,
    algorithm: ctx.algorithm,
    create: file.count === 1 && !file.journaled,
    ...(expected === undefined ? {} : { expectedDigest: expected }),
  };
}

/** Fetches the part from the source (its mirrors first), again while it hashes wrong. */
async function fetchPart(part: PartAt, ctx: TransferContext): Promise<void> {
  const { file, index, start, end, expected } = part;
  const { plan } = file;
  // A listing's ETag is the only identity its parts have, so every read is pinned to it. A
  // published entry's parts are each checked against the manifest instead: its ETag came
  // from the store it was published to and need not match the origin serving it now (a
  // folder published locally and served by nginx or a CDN).
  const pin = plan.entry.digest === undefined ? plan.entry.etag : undefined;
  // Bytes an interrupted transfer left of this part: re-hashed, not fetched again (unless
  // they turn out wrong: a second attempt starts from the part's first byte).
  const checkpoint = plan.action.kind === 'fetch' ? (plan.action.resume?.partial[index] ?? 0) : 0;
  for (let attempt = 1; ; attempt++) {
    const resumeFrom = attempt === 1 ? Math.min(checkpoint, end - start) : 0;
    try {
      const r = await ctx.pool.run(
        {
          kind: 'fetch',
          uri: ctx.sourceUri,
          sourceOptions: await ctx.sourceOptions(),
          path: plan.entry.path,
          // A part object holds exactly the part: read from its own first byte.
          ...(ctx.storage === 'parts' && expected !== undefined
            ? {
                uri: ctx.parts?.uri ?? ctx.sourceUri,
                key: (ctx.parts?.key ?? partKey)(expected),
                keyOffset: start,
                // A part that hashed wrong is read from the source itself the next time.
                ...(ctx.mirrors.length > 0 && attempt === 1 ? { mirrors: ctx.mirrors } : {}),
              }
            : { key: plan.entry.path }),
          ...(pin === undefined ? {} : { ifMatch: pin }),
          tmpPath: file.tmpPath,
          md5: file.md5 !== undefined && file.md5.follower === undefined,
          ...(resumeFrom > 0 ? { resumeFrom } : {}),
          ...(file.journaled ? { cuts: index } : {}),
          stallTimeoutMs: ctx.stallTimeoutMs,
          hedgeAfterMs: ctx.hedgeAfterMs,
          ...taskRange(part, ctx),
        },
        index,
        plan.relPath,
      );
      file.digests[index] = r.digest;
      if (file.md5 !== undefined && r.md5 !== undefined) file.md5.actual = r.md5;
      if (r.mtimeMs !== undefined) file.mtimeMs = r.mtimeMs;
      file.fetchedBytes += r.bytes;
      file.doneBytes += r.bytes + (r.kept ?? 0);
      if (file.journaled)
        await TransferState.of(ctx.store).recordPart(plan.relPath, index, r.digest);
      return;
    } catch (error) {
      if (!isFerryError(error, 'FERRY_INTEGRITY') || attempt >= INTEGRITY_ATTEMPTS) throw error;
      ctx.emit({
        type: 'retry',
        path: plan.entry.path,
        part: index,
        attempt,
        code: error.code,
        message: error.message,
      });
    }
  }
}

async function commitFile(
  file: FileState,
  ctx: TransferContext,
  place: Placement,
): Promise<CommittedFile> {
  const { plan } = file;
  const digests = file.digests as Digest[];
  const digest = await combinePartDigests(ctx.algorithm, plan.partSize, digests);
  if (plan.entry.digest !== undefined && digest !== plan.entry.digest) {
    throw new FerryError(
      'FERRY_INTEGRITY',
      `${plan.entry.path}: content hashes to ${digest}, the manifest says ${plan.entry.digest}`,
      {
        key: plan.entry.path,
        hint: 'The published manifest does not match the files at the source; publish again.',
      },
    );
  }
  if (file.md5 !== undefined) {
    const actual = file.md5.follower ? await file.md5.follower.digest() : file.md5.actual;
    if (actual !== file.md5.expected) {
      throw new FerryError(
        'FERRY_INTEGRITY',
        `${plan.entry.path}: MD5 ${actual} differs from ETag ${plan.entry.etag}`,
        {
          key: plan.entry.path,
          hint: 'If the bucket encrypts with SSE-KMS or SSE-C its ETags are not MD5s: set FERRY_ETAG_CHECK=0.',
        },
      );
    }
  }
  const parts: PartList = { size: plan.partSize, digests };
  await placeFile(file.tmpPath, plan, ctx, place, {
    digest,
    parts,
    journaled: file.journaled,
    ...(file.mtimeMs === undefined ? {} : { mtimeMs: file.mtimeMs }),
  });
  ctx.emit({
    type: 'file-done',
    path: plan.entry.path,
    size: plan.entry.size,
    fetchedBytes: file.fetchedBytes,
    reusedBytes: file.reusedBytes,
  });
  return { plan, digest, parts, fetchedBytes: file.fetchedBytes, reusedBytes: file.reusedBytes };
}

/**
 * Where committed files go: the parent folders made so far, and the stat records of
 * files without a journal, written in batches (one LevelDB batch per file was a tenth of
 * a small file's cost). A file renamed into place whose record is lost in a crash is
 * found again by the next pull and hashed once: never trusted unverified.
 */
class Placement {
  readonly dirs: KnownDirs = new Map();
  readonly #store: CacheIndex;
  #pending: Array<[string, StatRecord]> = [];

  constructor(store: CacheIndex) {
    this.#store = store;
  }

  async record(relPath: string, record: StatRecord): Promise<void> {
    this.#pending.push([relPath, record]);
    if (this.#pending.length >= STAT_BATCH) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.#pending.length === 0) return;
    const batch = this.#pending;
    this.#pending = [];
    await this.#store.putStats(batch);
  }
}

/** The folder part of a root-relative path (`a/b` for `a/b/c`, `''` for `c`). */
function parentOf(relPath: string): string {
  const cut = relPath.lastIndexOf('/');
  return cut === -1 ? '' : relPath.slice(0, cut);
}

/** Stat records gathered before one LevelDB batch. */
const STAT_BATCH = 128;

/**
 * Renamed into place, then recorded: a final path only ever holds a whole, verified file;
 * with `ctx.durable`, its bytes reach the disk before its name does. A journaled file's
 * record replaces its journal in one batch; other records go out in batches.
 */
async function placeFile(
  tmpPath: string,
  plan: FilePlan,
  ctx: TransferContext,
  place: Placement,
  content: { digest: Digest; parts?: PartList; journaled: boolean; mtimeMs?: number },
): Promise<void> {
  if (ctx.durable) {
    const handle = await open(tmpPath, 'r+');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
  await ensureRealDirs(ctx.layout.root, parentOf(plan.relPath), place.dirs);
  await rename(tmpPath, plan.finalPath);
  // A rename keeps the mtime: the writer's own fstat, when there was one writer, is it.
  const mtimeMs = content.mtimeMs ?? (await stat(plan.finalPath)).mtimeMs;
  const record: StatRecord = {
    size: plan.entry.size,
    mtimeMs,
    digest: content.digest,
    ...(content.parts ? { parts: content.parts } : {}),
  };
  if (content.journaled) {
    await TransferState.of(ctx.store).commitFile(plan.relPath, record);
    await rm(cutsPathFor(tmpPath), { force: true });
  } else await place.record(plan.relPath, record);
}

/**
 * Copies a file whose content is elsewhere in the cache, verifying the copy against the
 * digest its record claims before it is renamed into place (a stat record vouches for an
 * mtime, not for bytes: bit rot or an edit that kept the mtime would spread). When the copy
 * is wrong, the twin's record is dropped (the next pull of its folder re-hashes and repairs
 * it), the plan becomes a fetch, and `undefined` says so.
 */
async function copyWholeFile(
  plan: FilePlan,
  ctx: TransferContext,
  place: Placement,
): Promise<CommittedFile | undefined> {
  if (plan.action.kind !== 'copy') throw new Error('copyWholeFile: not a copy plan');
  const { fromPath, fromRelPath, record } = plan.action;
  const tmpPath = tmpPathFor(ctx.layout, plan.relPath);
  // A reflink where the file system has them, a kernel-side copy otherwise.
  await copyFile(fromPath, tmpPath, constants.COPYFILE_FICLONE);
  const { parts } = record;
  const copied = await hashLocalFile(
    ctx.pool,
    tmpPath,
    plan.entry.size,
    parts?.size ?? plan.partSize,
    parseDigest(record.digest).algorithm,
  );
  if (copied.digest !== record.digest) {
    await rm(tmpPath, { force: true });
    await ctx.store.deleteStats([fromRelPath]);
    ctx.emit({
      type: 'retry',
      path: plan.entry.path,
      attempt: 1,
      code: 'FERRY_INTEGRITY',
      message: `${fromRelPath} in the cache no longer hashes to its record (${record.digest}); fetching ${plan.entry.path} instead of copying it`,
    });
    plan.action = { kind: 'fetch' };
    return undefined;
  }
  await placeFile(tmpPath, plan, ctx, place, {
    digest: record.digest,
    ...(parts ? { parts } : {}),
    journaled: false,
  });
  ctx.emit({
    type: 'file-done',
    path: plan.entry.path,
    size: plan.entry.size,
    fetchedBytes: 0,
    reusedBytes: plan.entry.size,
  });
  return {
    plan,
    digest: record.digest,
    ...(parts ? { parts } : {}),
    fetchedBytes: 0,
    reusedBytes: plan.entry.size,
  };
}

/** Bytes written before this error can never become the right file (wrong content, a changed source object). */
function hopeless(error: unknown): boolean {
  return isFerryError(error, 'FERRY_INTEGRITY') || isFerryError(error, 'FERRY_SOURCE_CHANGED');
}

/**
 * After a failure: bytes that can never become the right file (wrong content, a changed
 * source object) are dropped; otherwise the journal and partial file stay for a resume.
 */
async function abandonFile(file: FileState, error: unknown, ctx: TransferContext): Promise<void> {
  if (file.journaled && !hopeless(error)) return;
  await rm(file.tmpPath, { force: true });
  if (file.journaled) {
    await rm(cutsPathFor(file.tmpPath), { force: true });
    await TransferState.of(ctx.store).deleteJournal(file.plan.relPath);
  }
}
