import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, realpath, rename, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { Level } from 'level';
import { FerryError } from './errors.js';
import {
  encodeManifest,
  isVersionId,
  parseManifestById,
  validateRef,
  versionIdOfEncoded,
} from './manifest.js';
import { normalizePath } from './paths.js';
import { type Runner, Table, type TableOp } from './table.js';
import type { Digest, Manifest, PartList, Ref, VersionId } from './types.js';

/*
 * Manifests are files, `<location>/manifests/sha256-<hex>.json` (their canonical text): a
 * 23 MB manifest took LevelDB 150–270 ms and three copies in memory to hand over, a file
 * read 80–100 ms and one. Caches from before keep theirs in the `manifest` table, which is
 * still read. Each other kind of record lives in its own sublevel (a table, see `Table`):
 *
 *   manifest   <versionId>          canonical manifest text (utf8 value; older caches)
 *   ref        <source>\0<name>      VersionId
 *   tree       <dir>                TreeState
 *   stat       <path>               StatRecord
 *
 * NUL is refused in sources, so a source never swallows the name after it, and it sorts
 * below every other byte: the refs of one source form a range one prefix scan reads.
 * Other packages keep their own tables here (`table`), to write them in the same atomic
 * batches: the engine's transfer state.
 */
const OWN_TABLES = new Set(['manifest', 'ref', 'tree', 'stat']);

/**
 * Caches written before sublevels kept the same keys at the top level, as
 * `<namespace>\0<key>`: `open` moves each namespace's keys into the table of that name,
 * the engine's (`journal`, `pull`) too.
 */
const OLD_NAMESPACES = [...OWN_TABLES, 'journal', 'pull'];

/** What the stat index knows about one local file, enough to trust it without hashing. */
export interface StatRecord {
  /** Size in bytes when it was last hashed or written. */
  size: number;
  /** `fs.Stats#mtimeMs` when it was last hashed or written. */
  mtimeMs: number;
  /** Part-tree digest of the content. */
  digest: Digest;
  /** Part digests, when known. */
  parts?: PartList;
}

/** Which version a materialised local tree is at. */
export interface TreeState {
  /** Where the tree came from, e.g. `s3://bucket/prefix`. */
  source: string;
  /** The manifest the tree matches. */
  versionId: VersionId;
  /** The ref it was pulled as, if any. */
  ref?: string;
  /**
   * The part of the version the tree holds, when a pull selected files by glob: the
   * manifest still describes the whole version.
   */
  filter?: PathFilter;
  /**
   * Root-relative folder that holds the version's files (`.ferry/trees/<id>`); the tree's
   * folder is a symbolic link to it, switched in one rename when a new version is complete.
   * Absent for a tree whose files sit in the folder itself (the cache's root folder, and
   * trees pulled before versions were kept side by side): the stat index keys its files by
   * this folder, or by the tree's own.
   */
  versionDir?: string;
  /** The version the folder showed before the last switch, kept for readers still in it. */
  previous?: { versionId: VersionId; versionDir: string };
  /** ISO 8601 time of the last change. */
  updatedAt: string;
}

/** Globs that select a subset of a version's files (see the engine's `compileFilter`). */
export interface PathFilter {
  include?: string[];
  /** Exact paths, selected as an include glob would be (`--only`). */
  only?: string[];
  exclude?: string[];
}

/** The facts written next to the database so a refused opener can say who holds it. */
interface Holder {
  pid: number;
  command: string;
  hostname: string;
  startedAt: string;
  openedAt: string;
  /** Boot id and kernel start time of the process (Linux), to tell pid reuse apart. */
  process?: string;
  token: string;
}

// A second LevelDB open of the same directory inside one process fails, but on the way it
// closes its file descriptor of LOCK, and POSIX drops the process's fcntl lock with it:
// another process could then open the database too. So ferry refuses a second open
// before LevelDB sees it: by this registry within a thread, by the holder file across
// threads of one process (worker threads do not share module state).
const openHere = new Set<string>();

let identity: string | undefined | null = null;
function processIdentity(): string | undefined {
  if (identity === null) {
    try {
      const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
      const stat = readFileSync('/proc/self/stat', 'utf8');
      // Field 22 (start time); the command name before it may contain spaces and parens.
      const startTime = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
      identity = startTime === undefined ? undefined : `${bootId}:${startTime}`;
    } catch {
      identity = undefined;
    }
  }
  return identity;
}

function storeFailed(location: string, what: string, cause: unknown): FerryError {
  // LevelDB's own message ("IO error: …: No space left on device") is on its cause.
  const reasons: string[] = [];
  for (let e: unknown = cause; e instanceof Error && reasons.length < 3; e = e.cause) {
    if (!reasons.includes(e.message)) reasons.push(e.message);
  }
  const reason = reasons.length > 0 ? reasons.join(': ') : String(cause);
  const full = /no space left|ENOSPC/i.test(reason);
  const denied = /permission denied|EACCES|EROFS|read-only/i.test(reason);
  return new FerryError('FERRY_STORE_FAILED', `store ${location}: ${what} failed: ${reason}`, {
    cause,
    key: location,
    hint: full
      ? 'The disk is full: `ferry gc <root>` frees partial files even now, or free space elsewhere.'
      : denied
        ? 'The cache root cannot be written by this user: run as its owner, or pull into another root (--to).'
        : 'If the database is corrupt, move .ferry/db away: ferry rebuilds it by hashing the files once.',
  });
}

/**
 * An argument no caller should pass (ferry validates what users give it before it gets
 * here): a TypeError, which the CLI reports as a bug, not as the user's usage error.
 */
function badArgument(message: string): TypeError {
  return new TypeError(message);
}

/** A tree dir is root-relative; `''` is a tree at the cache root itself. */
function checkTreeDir(dir: string): string {
  if (typeof dir !== 'string' || dir.includes('\0')) {
    throw badArgument(`invalid tree dir ${JSON.stringify(dir)}: must be a string without NUL`);
  }
  return dir;
}

function checkField(value: string, what: string): string {
  if (typeof value !== 'string' || value === '' || value.includes('\0')) {
    throw badArgument(
      `invalid ${what} ${JSON.stringify(value)}: must be a non-empty string without NUL`,
    );
  }
  return value;
}

function checkVersionId(id: string): VersionId {
  if (!isVersionId(id)) {
    throw badArgument(`invalid version id ${JSON.stringify(id)}: expected sha256:<64 hex>`);
  }
  return id;
}

/** Where manifests are kept, inside the index's directory (LevelDB ignores other names). */
const MANIFEST_DIR = 'manifests';
const MANIFEST_FILE = /^sha256-([0-9a-f]{64})\.json$/;

/** `undefined` for a file that is not there; any other failure is thrown again. */
function ifMissing(err: unknown): undefined {
  if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
  throw err;
}

/**
 * The cache root's index, in one LevelDB (`<root>/.ferry/db`) and the manifest files beside
 * its own (`manifests/`): manifests by version id, refs per source, the version each local
 * tree is at, the stat index that lets a warm start skip hashing, and the tables other
 * packages keep beside them (`table`). Everything a crash could leave half-written is
 * written in one atomic batch, or (a manifest) whole and then renamed into place.
 *
 * One process at a time: LevelDB locks the directory. Open it once per process and share
 * the instance (all methods may run concurrently); a second `open` of the same location in
 * the same process is refused with `FERRY_STORE_LOCKED` too.
 */
export class CacheIndex {
  readonly #db: Level<string, unknown>;
  readonly #key: string;
  readonly #holderFile: string;
  readonly #token: string;
  readonly #manifests: Table<string>;
  readonly #refs: Table<VersionId>;
  readonly #trees: Table<TreeState>;
  readonly #stats: Table<StatRecord>;
  readonly #others = new Map<string, Table<unknown>>();
  #closed = false;

  /** The database directory. */
  readonly location: string;

  private constructor(db: Level<string, unknown>, location: string, key: string, token: string) {
    this.#db = db;
    this.location = location;
    this.#key = key;
    this.#holderFile = holderFileOf(location);
    this.#token = token;
    const run: Runner = (what, fn) => this.#run(what, fn);
    this.#manifests = new Table(db, 'manifest', 'utf8', run);
    const json = <V>(name: string) => new Table<V>(db, name, 'json', run);
    this.#refs = json('ref');
    this.#trees = json('tree');
    this.#stats = json('stat');
  }

  /**
   * Opens (creating if needed) the index at `location`, usually `<root>/.ferry/db`, and
   * records this process in `<location>-holder.json` (e.g. `.ferry/db-holder.json`) so that
   * a refused opener can name it. A holder file left by a dead process does not matter:
   * LevelDB's lock dies with its process, and the next open replaces the file.
   *
   * @throws FerryError `FERRY_STORE_LOCKED` when another process holds the database (the
   * message names its pid, command line and start time, when known) or this process has it
   * open already; `FERRY_STORE_FAILED` for any other failure, with LevelDB's error as `cause`.
   */
  static async open(location: string): Promise<CacheIndex> {
    const dir = resolve(location);
    let key: string;
    try {
      await mkdir(dir, { recursive: true });
      key = await realpath(dir);
    } catch (err) {
      throw storeFailed(dir, 'creating the directory', err);
    }
    const holderFile = holderFileOf(dir);
    const holder = await readHolder(holderFile);
    const self = processIdentity();
    const heldHere =
      openHere.has(key) ||
      (holder?.pid === process.pid && self !== undefined && holder.process === self);
    if (heldHere) {
      throw new FerryError(
        'FERRY_STORE_LOCKED',
        `store ${dir} is already open in this process (pid ${process.pid})`,
        {
          key: dir,
          hint: 'open the CacheIndex once per process and share it; close it before opening it again',
        },
      );
    }
    openHere.add(key);
    const db = new Level<string, unknown>(dir, { valueEncoding: 'json' });
    try {
      await db.open();
    } catch (err) {
      openHere.delete(key);
      const cause = err instanceof Error ? err.cause : undefined;
      if ((cause as { code?: unknown } | undefined)?.code === 'LEVEL_LOCKED') {
        throw lockedError(dir, await readHolder(holderFile), err);
      }
      throw storeFailed(dir, 'opening', err);
    }
    try {
      await moveOldLayout(db);
    } catch (err) {
      openHere.delete(key);
      await db.close().catch(() => undefined);
      throw storeFailed(dir, 'moving the old key layout into sublevels', err);
    }
    const token = randomUUID();
    await writeHolder(holderFile, token);
    return new CacheIndex(db, dir, key, token);
  }

  /** Closes the database and removes the holder file; calling it again does nothing. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.#db.close();
    } catch (err) {
      throw storeFailed(this.location, 'closing', err);
    } finally {
      openHere.delete(this.#key);
      const holder = await readHolder(this.#holderFile);
      if (holder?.token === this.#token) await rm(this.#holderFile, { force: true });
    }
  }

  async #run<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (this.#closed) {
      throw new FerryError('FERRY_STORE_FAILED', `store ${this.location} is closed (${what})`, {
        key: this.location,
        hint: 'this is a bug in the caller: the store was used after close()',
      });
    }
    try {
      return await fn();
    } catch (err) {
      if (err instanceof FerryError) throw err;
      throw storeFailed(this.location, what, err);
    }
  }

  /** Stores a manifest under its version id (idempotent) and returns the id. */
  async putManifest(m: Manifest): Promise<VersionId> {
    // Encoded once: the id is the hash of these very bytes (encoding is most of the cost).
    const text = encodeManifest(m);
    const id = versionIdOfEncoded(text);
    const file = this.#manifestFile(id);
    const tmp = `${file}.${randomUUID()}.tmp`;
    await this.#run('manifest write', async () => {
      await mkdir(dirname(file), { recursive: true });
      // Written whole, then named: a reader never sees part of a manifest.
      await writeFile(tmp, text);
      await rename(tmp, file);
    }).catch(async (err: unknown) => {
      await rm(tmp, { force: true });
      throw err;
    });
    return id;
  }

  /**
   * The manifest stored under `id`; bytes that no longer hash to it are validated again.
   * @throws FerryError `FERRY_MANIFEST_INVALID` when the stored bytes are corrupt.
   */
  async getManifest(id: VersionId): Promise<Manifest | undefined> {
    const file = this.#manifestFile(checkVersionId(id));
    const text =
      (await this.#run('manifest read', () => readFile(file, 'utf8').catch(ifMissing))) ??
      (await this.#manifests.get(id));
    return text === undefined ? undefined : parseManifestById(text, id, `${this.location} ${id}`);
  }

  /** Deletes a manifest; refs pointing at it are left alone. */
  async deleteManifest(id: VersionId): Promise<void> {
    const file = this.#manifestFile(checkVersionId(id));
    await this.#run('manifest delete', () => rm(file, { force: true }));
    await this.#manifests.del(id);
  }

  /** Version ids of all stored manifests, sorted. */
  async listManifests(): Promise<VersionId[]> {
    const names = await this.#run('manifest list', async () => {
      try {
        return await readdir(join(this.location, MANIFEST_DIR));
      } catch (err) {
        ifMissing(err);
        return [];
      }
    });
    const ids = new Set(await this.#manifests.keys());
    for (const name of names) {
      const match = MANIFEST_FILE.exec(name);
      if (match) ids.add(`sha256:${match[1]}`);
    }
    return ([...ids] as VersionId[]).sort();
  }

  #manifestFile(id: VersionId): string {
    return join(this.location, MANIFEST_DIR, `${id.replace(':', '-')}.json`);
  }

  /**
   * Points ref `name` of `source` at `id`; the manifest need not be stored yet.
   * @throws FerryError `FERRY_BAD_REF` for a bad name; TypeError for an empty source, one
   * containing NUL, or a malformed version id.
   */
  async setRef(source: string, name: Ref, id: VersionId): Promise<void> {
    const key = `${checkField(source, 'source')}\0${validateRef(name)}`;
    return this.#refs.put(key, checkVersionId(id));
  }

  /** The version id ref `name` of `source` points at. */
  async getRef(source: string, name: Ref): Promise<VersionId | undefined> {
    return this.#refs.get(`${checkField(source, 'source')}\0${validateRef(name)}`);
  }

  /** All refs, or those of one source, sorted by source then name. */
  async listRefs(
    source?: string,
  ): Promise<Array<{ source: string; name: Ref; versionId: VersionId }>> {
    const prefix = source === undefined ? '' : `${checkField(source, 'source')}\0`;
    return (await this.#refs.entries(prefix)).map(([k, versionId]) => {
      const cut = k.lastIndexOf('\0');
      return { source: k.slice(0, cut), name: k.slice(cut + 1), versionId };
    });
  }

  /** Records which version the local tree at `dir` is at. */
  async setTree(dir: string, state: TreeState): Promise<void> {
    return this.#trees.put(checkTreeDir(dir), treeValue(state));
  }

  /** The recorded state of the local tree at `dir`. */
  async getTree(dir: string): Promise<TreeState | undefined> {
    return this.#trees.get(checkTreeDir(dir));
  }

  /** Every recorded tree, sorted by dir. */
  async listTrees(): Promise<Array<{ dir: string } & TreeState>> {
    return (await this.#trees.entries()).map(([dir, state]) => ({ dir, ...state }));
  }

  /** Forgets the tree at `dir`; its stat records stay. */
  async deleteTree(dir: string): Promise<void> {
    return this.#trees.del(checkTreeDir(dir));
  }

  /**
   * The stat record of a root-relative path such as `a/b/model.bin`.
   * @throws FerryError `FERRY_BAD_PATH` when `path` is not a normalised relative path.
   */
  async getStat(path: string): Promise<StatRecord | undefined> {
    return this.#stats.get(normalizePath(path));
  }

  /**
   * Every stat record whose path starts with `prefix`, in one range scan. The prefix is a
   * plain string prefix: pass `a/b/` for the files under directory `a/b` (it does not match
   * `a/bc`), `''` for all.
   */
  async getStats(prefix: string): Promise<Map<string, StatRecord>> {
    if (typeof prefix !== 'string' || prefix.includes('\0')) {
      throw badArgument(
        `invalid stat prefix ${JSON.stringify(prefix)}: must be a string without NUL`,
      );
    }
    return new Map(await this.#stats.entries(prefix));
  }

  /**
   * The stat records of the given root-relative paths, in their order (undefined where there
   * is none), in one batched read: a planner reads a chunk of a large version at a time
   * instead of every record under a folder.
   * @throws FerryError `FERRY_BAD_PATH` when a path is not a normalised relative path.
   */
  async getStatsOf(paths: readonly string[]): Promise<Array<StatRecord | undefined>> {
    return this.#stats.getMany(paths.map(normalizePath));
  }

  /**
   * Writes stat records in one atomic batch, with the operations `also` holds on other
   * tables of this index (a file's record replaces its transfer journal).
   */
  async putStats(
    records: Iterable<[string, StatRecord]>,
    also: readonly TableOp[] = [],
  ): Promise<void> {
    const ops = [...also];
    for (const [path, record] of records) {
      ops.push(this.#stats.putOp(normalizePath(path), statValue(record)));
    }
    return this.#stats.batch(ops);
  }

  /** Deletes stat records in one atomic batch; missing ones are ignored. */
  async deleteStats(paths: Iterable<string>): Promise<void> {
    const ops: TableOp[] = [];
    for (const path of paths) ops.push(this.#stats.delOp(normalizePath(path)));
    return this.#stats.batch(ops);
  }

  /**
   * Marks a tree as being at a new version in one atomic batch: sets its state, deletes
   * the stat records of the files the new version no longer has, and applies the
   * operations `also` holds on other tables of this index (the end of the tree's pending pull).
   */
  async commitTree(
    dir: string,
    state: TreeState,
    removedPaths: string[],
    also: readonly TableOp[] = [],
  ): Promise<void> {
    const ops = [...also, this.#trees.putOp(checkTreeDir(dir), treeValue(state))];
    for (const path of removedPaths) ops.push(this.#stats.delOp(normalizePath(path)));
    return this.#stats.batch(ops);
  }

  /**
   * The table `name` of JSON values, for a package that keeps its own records in this
   * index; the same instance on every call.
   * @throws TypeError for the name of one of the index's own tables; abstract-level's
   * `LEVEL_INVALID_PREFIX` for a name that is not printable ASCII above `"`.
   */
  table<V>(name: string): Table<V> {
    if (OWN_TABLES.has(name)) throw badArgument(`table ${name} belongs to the index itself`);
    let table = this.#others.get(name);
    if (table === undefined) {
      table = new Table(this.#db, name, 'json', (what, fn) => this.#run(what, fn));
      this.#others.set(name, table);
    }
    return table as Table<V>;
  }
}

/**
 * Moves the keys of a cache written before sublevels (`<table>\0<key>` at the top level)
 * into their tables, in one batch: a crash leaves the old layout whole, to move next time.
 * The old keys sort after every sublevel's (whose prefix starts with `!`), so a cache in
 * the new layout costs one seek.
 */
async function moveOldLayout(db: Level<string, unknown>): Promise<void> {
  const rows: Array<[Buffer, Buffer]> = [];
  for await (const row of db.iterator<Buffer, Buffer>({
    gte: Buffer.from('"'),
    keyEncoding: 'buffer',
    valueEncoding: 'buffer',
  })) {
    rows.push(row);
  }
  if (rows.length === 0) return;
  const tables = new Map(OLD_NAMESPACES.map((name) => [name, db.sublevel(name)]));
  const batch = db.batch();
  for (const [key, value] of rows) {
    const cut = key.indexOf(0);
    const sublevel = cut === -1 ? undefined : tables.get(key.toString('utf8', 0, cut));
    if (sublevel === undefined) continue;
    batch.del(key, { keyEncoding: 'buffer' });
    // The bytes as they are: each table encodes its values as the old layout did.
    batch.put(key.subarray(cut + 1), value, {
      sublevel,
      keyEncoding: 'buffer',
      valueEncoding: 'buffer',
    });
  }
  await batch.write();
}

function holderFileOf(location: string): string {
  return join(dirname(location), `${basename(location)}-holder.json`);
}

async function readHolder(file: string): Promise<Holder | undefined> {
  try {
    const value: unknown = JSON.parse(await readFile(file, 'utf8'));
    const holder = value as Partial<Holder>;
    return typeof holder.pid === 'number' ? (value as Holder) : undefined;
  } catch {
    return undefined;
  }
}

async function writeHolder(file: string, token: string): Promise<void> {
  const proc = processIdentity();
  const holder: Holder = {
    pid: process.pid,
    command: process.argv.join(' '),
    hostname: hostname(),
    startedAt: new Date(Date.now() - process.uptime() * 1000).toISOString(),
    openedAt: new Date().toISOString(),
    ...(proc === undefined ? {} : { process: proc }),
    token,
  };
  const tmp = `${file}.${process.pid}.${token}.tmp`;
  // The holder file is only a hint for error messages: failing to write it must not fail
  // the open (a read-only mount of the cache root next to a writable db, for instance).
  try {
    await writeFile(tmp, `${JSON.stringify(holder, null, 2)}\n`);
    await rename(tmp, file);
  } catch {
    await rm(tmp, { force: true }).catch(() => undefined);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function lockedError(location: string, holder: Holder | undefined, cause: unknown): FerryError {
  let who: string;
  let hint: string;
  if (holder !== undefined && isAlive(holder.pid)) {
    who = `pid ${holder.pid} on ${holder.hostname} (${holder.command}), started ${holder.startedAt}`;
    hint = `wait for pid ${holder.pid} to finish or stop it; one ferry process at a time may use a cache root`;
  } else {
    who = 'a process that left no holder record (not ferry, or ferry before it wrote one)';
    hint = `find it with: fuser ${join(location, 'LOCK')}; one process at a time may use a cache root`;
  }
  return new FerryError('FERRY_STORE_LOCKED', `store ${location} is in use by ${who}`, {
    cause,
    key: location,
    hint,
  });
}

function statValue(record: StatRecord): StatRecord {
  const value: StatRecord = { size: record.size, mtimeMs: record.mtimeMs, digest: record.digest };
  if (record.parts !== undefined) value.parts = record.parts;
  return value;
}

function treeValue(state: TreeState): TreeState {
  checkVersionId(state.versionId);
  const value: TreeState = {
    source: state.source,
    versionId: state.versionId,
    updatedAt: state.updatedAt,
  };
  if (state.ref !== undefined) value.ref = state.ref;
  if (state.filter !== undefined) value.filter = state.filter;
  if (state.versionDir !== undefined) value.versionDir = checkField(state.versionDir, 'versionDir');
  if (state.previous !== undefined) {
    value.previous = {
      versionId: checkVersionId(state.previous.versionId),
      versionDir: checkField(state.previous.versionDir, 'previous versionDir'),
    };
  }
  return value;
}
