// What an interrupted pull leaves behind for `resume`, `status` and `gc`: the journal of
// each file transfer under way and the pull each folder was making. The engine's own
// tables in the cache's index, so that a file's stat record replaces its journal, and a
// tree's commit ends its pending pull, in one atomic batch.

import type { Digest, DigestAlgorithm, PathFilter, VersionId } from '@ferry/manifest';
import { normalizePath, parseDigest } from '@ferry/manifest';
import type { CacheIndex, StatRecord, Table, TreeState } from '@ferry/manifest/store';

/**
 * A pull that started and has not committed its tree yet: what `resume` needs to run it
 * again. Written when a pull starts transferring, deleted when its tree commits.
 */
export interface PendingPull {
  /** Source URI, e.g. `s3://bucket/prefix`. */
  source: string;
  /** The ref asked for, if any. */
  ref?: string;
  /** The version being pulled, when the source is published. */
  versionId?: VersionId;
  /** Part size asked for (a published manifest's own part size wins). */
  partSize: number;
  /** Plain-data source options (endpoint, region…), never credentials. */
  sourceOptions?: Record<string, string | number | boolean>;
  /** The globs the pull selected files by, so a resume pulls the same subset. */
  filter?: PathFilter;
  /**
   * Root-relative folder the pull builds the version in, beside the one the tree shows
   * (`.ferry/trees/<id>`), so a resume goes on filling the same one.
   */
  versionDir?: string;
  startedAt: string;
}

/** The state of one in-flight file transfer, kept so an interrupted one can resume. */
export interface PartJournal {
  /** Root-relative final path of the file. */
  path: string;
  /** Where the partial file is being written. */
  tmpPath: string;
  /** The source the file comes from. */
  source: string;
  /** Object key (or URL path) in the source. */
  key: string;
  /** The object's ETag at the start; a resume must see the same one. */
  etag?: string;
  /** Expected size in bytes. */
  size: number;
  /** Part size the transfer uses. */
  partSize: number;
  /** Algorithm of the part digests. */
  algorithm: DigestAlgorithm;
  /** Finished, verified parts: index → digest. */
  done: Record<number, Digest>;
  /** ISO 8601 time the transfer started. */
  startedAt: string;
}

type JournalHeader = Omit<PartJournal, 'done'>;

/*
 * Keys (each table is a sublevel of the index; these names and keys are the ones caches
 * written before sublevels used, after their namespace, so the index's move of an old
 * cache lands them here):
 *
 *   journal  <path>                             JournalHeader
 *   journal  <path>\0part\0<index, 10 digits>   Digest of one finished part
 *   pull     <dir>                              PendingPull
 *
 * Paths hold no NUL, which sorts below every other byte: a journal's parts sort right
 * after its header and before any other path, and `<path>\0part\0` is a prefix no other
 * journal's keys share. Parts are keys of their own so recording one is a single small
 * put, not a rewrite of the journal.
 */
const JOURNALS = 'journal';
const PULLS = 'pull';
const PART = '\0part\0';
const INDEX_DIGITS = 10;
const MAX_PART_INDEX = 10 ** INDEX_DIGITS - 1;

const partKey = (path: string, index: number) =>
  `${path}${PART}${String(index).padStart(INDEX_DIGITS, '0')}`;

/**
 * The transfer state of one open cache index. Cheap to make: `of` on every use is fine.
 * Paths are root-relative; `FERRY_BAD_PATH` for one that is not normalised.
 */
export class TransferState {
  readonly #index: CacheIndex;
  readonly #journals: Table<JournalHeader | Digest>;
  readonly #pulls: Table<PendingPull>;

  private constructor(index: CacheIndex) {
    this.#index = index;
    this.#journals = index.table(JOURNALS);
    this.#pulls = index.table(PULLS);
  }

  static of(index: CacheIndex): TransferState {
    return new TransferState(index);
  }

  /**
   * Starts the journal of a transfer, atomically replacing any journal of the same path
   * together with all its recorded parts. Not isolated from a concurrent `recordPart` of the
   * same path: the engine transfers one file at most once at a time.
   */
  async startJournal(j: JournalHeader): Promise<void> {
    const path = normalizePath(j.path);
    const ops = (await this.#journalKeys(path)).map((key) => this.#journals.delOp(key));
    ops.push(this.#journals.putOp(path, journalHeader(j)));
    await this.#journals.batch(ops);
  }

  /**
   * Records one finished part: a single small put. A part recorded without a started
   * journal is ignored by `getJournal` and dropped by the next `startJournal`.
   * @throws TypeError for an index out of range; FerryError `FERRY_MANIFEST_INVALID` for a
   * malformed digest.
   */
  async recordPart(path: string, index: number, digest: Digest): Promise<void> {
    if (!Number.isSafeInteger(index) || index < 0 || index > MAX_PART_INDEX) {
      throw new TypeError(
        `invalid part index ${index}: must be an integer from 0 to ${MAX_PART_INDEX}`,
      );
    }
    parseDigest(digest);
    await this.#journals.put(partKey(normalizePath(path), index), digest);
  }

  /** The journal of `path` with its finished parts, if a transfer of it was started. */
  async getJournal(path: string): Promise<PartJournal | undefined> {
    const checked = normalizePath(path);
    const header = await this.#journals.get(checked);
    if (header === undefined) return undefined;
    return readJournals([[checked, header], ...(await this.#journals.entries(checked + PART))])[0];
  }

  /** Every journal (every interrupted or running transfer), sorted by path. */
  async listJournals(): Promise<PartJournal[]> {
    return readJournals(await this.#journals.entries());
  }

  /** Deletes the journal of `path` and all its parts in one batch. */
  async deleteJournal(path: string): Promise<void> {
    const keys = await this.#journalKeys(normalizePath(path));
    await this.#journals.batch(keys.map((key) => this.#journals.delOp(key)));
  }

  /**
   * Marks a transfer finished in one atomic batch: writes the file's stat record and
   * deletes its journal with all its parts. Call it after the file is renamed into place.
   */
  async commitFile(path: string, stat: StatRecord): Promise<void> {
    const keys = await this.#journalKeys(normalizePath(path));
    await this.#index.putStats(
      [[path, stat]],
      keys.map((key) => this.#journals.delOp(key)),
    );
  }

  /** Records that a pull into the folder `dir` is under way. */
  async setPendingPull(dir: string, pending: PendingPull): Promise<void> {
    await this.#pulls.put(dir, { ...pending });
  }

  /** The pull into `dir` that started and never committed, if any. */
  async getPendingPull(dir: string): Promise<PendingPull | undefined> {
    return this.#pulls.get(dir);
  }

  /** Pulls that started and never committed, sorted by dir. */
  async listPendingPulls(): Promise<Array<{ dir: string } & PendingPull>> {
    return (await this.#pulls.entries()).map(([dir, pending]) => ({ dir, ...pending }));
  }

  /** Forgets a pending pull without committing its tree (the folder is removed). */
  async deletePendingPull(dir: string): Promise<void> {
    await this.#pulls.del(dir);
  }

  /**
   * Marks the tree at `dir` as being at a new version and ends its pending pull, in one
   * atomic batch (see `CacheIndex.commitTree`).
   */
  async commitTree(dir: string, state: TreeState, removedPaths: string[]): Promise<void> {
    await this.#index.commitTree(dir, state, removedPaths, [this.#pulls.delOp(dir)]);
  }

  // A journal's keys: its header (which may be missing) and its parts.
  async #journalKeys(path: string): Promise<string[]> {
    return [path, ...(await this.#journals.keys(path + PART))];
  }
}

function journalHeader(j: JournalHeader): JournalHeader {
  const header: JournalHeader = {
    path: j.path,
    tmpPath: j.tmpPath,
    source: j.source,
    key: j.key,
    size: j.size,
    partSize: j.partSize,
    algorithm: j.algorithm,
    startedAt: j.startedAt,
  };
  if (j.etag !== undefined) header.etag = j.etag;
  return header;
}

// Rows of one or more journals in key order: each header followed by its parts.
function readJournals(rows: Array<[string, JournalHeader | Digest]>): PartJournal[] {
  const journals: PartJournal[] = [];
  let current: PartJournal | undefined;
  for (const [key, value] of rows) {
    const cut = key.indexOf(PART);
    if (cut === -1) {
      current = { ...(value as JournalHeader), done: {} };
      journals.push(current);
    } else if (current !== undefined && current.path === key.slice(0, cut)) {
      current.done[Number(key.slice(cut + PART.length))] = value as Digest;
    }
  }
  return journals;
}
