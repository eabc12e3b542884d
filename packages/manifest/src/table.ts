import type { Level } from 'level';

type Db = Level<string, unknown>;

const sublevelOf = (db: Db, name: string, valueEncoding: 'json' | 'utf8') =>
  db.sublevel<string, unknown>(name, { valueEncoding });
type Sublevel = ReturnType<typeof sublevelOf>;

/** Runs one database call, turning its failure into the owner's error (see `CacheIndex`). */
export type Runner = <T>(what: string, fn: () => Promise<T>) => Promise<T>;

declare const tableOp: unique symbol;

/**
 * A put or delete in one table, made by `putOp` / `delOp`, for a batch that must be atomic
 * across tables. Opaque: only the tables of the same database can apply it.
 */
export interface TableOp {
  readonly [tableOp]: true;
}

type LevelOp =
  | { type: 'put'; sublevel: Sublevel; key: string; value: unknown }
  | { type: 'del'; sublevel: Sublevel; key: string };

/** The one overload of `Level#batch` tables use: operations on sublevels of the root. */
interface Batcher {
  batch(ops: LevelOp[]): Promise<void>;
}

const utf8 = (s: string) => Buffer.from(s, 'utf8');
// 0xFF is never part of UTF-8, so the range ends after every key that starts with the prefix.
const upTo0xff = (prefix: string) => Buffer.concat([utf8(prefix), Buffer.from([0xff])]);

/**
 * A typed key-value table in its own sublevel, with string keys in byte order. Every call
 * goes through the owner's runner, so a closed or failing database reports as the owner's
 * error. Made by the database that owns it, never directly.
 */
export class Table<V> {
  readonly name: string;
  readonly #root: Batcher;
  readonly #sub: Sublevel;
  readonly #run: Runner;

  /** The table `name` of `db`, whose values are JSON or, for `utf8`, strings stored as they are. */
  constructor(db: Db, name: string, valueEncoding: 'json' | 'utf8', run: Runner) {
    this.name = name;
    this.#root = db;
    this.#sub = sublevelOf(db, name, valueEncoding);
    this.#run = run;
  }

  get(key: string): Promise<V | undefined> {
    return this.#run(`${this.name} get`, async () => (await this.#sub.get(key)) as V | undefined);
  }

  /** The values of `keys` in their order, undefined where there is none, in one read. */
  getMany(keys: readonly string[]): Promise<Array<V | undefined>> {
    return this.#run(
      `${this.name} getMany`,
      async () => (await this.#sub.getMany(keys as string[])) as Array<V | undefined>,
    );
  }

  put(key: string, value: V): Promise<void> {
    return this.#run(`${this.name} put`, () => this.#sub.put(key, value));
  }

  del(key: string): Promise<void> {
    return this.#run(`${this.name} del`, () => this.#sub.del(key));
  }

  /** Every row whose key starts with `prefix` (a plain string prefix), in key order. */
  entries(prefix = ''): Promise<Array<[string, V]>> {
    return this.#run(`${this.name} entries`, async () => {
      const rows: Array<[string, V]> = [];
      for await (const [k, v] of this.#sub.iterator<Buffer, unknown>({
        gte: utf8(prefix),
        lt: upTo0xff(prefix),
        keyEncoding: 'buffer',
      })) {
        rows.push([k.toString('utf8'), v as V]);
      }
      return rows;
    });
  }

  /** Every key that starts with `prefix`, in order. */
  keys(prefix = ''): Promise<string[]> {
    return this.#run(`${this.name} keys`, async () => {
      const keys: string[] = [];
      for await (const k of this.#sub.keys<Buffer>({
        gte: utf8(prefix),
        lt: upTo0xff(prefix),
        keyEncoding: 'buffer',
      })) {
        keys.push(k.toString('utf8'));
      }
      return keys;
    });
  }

  putOp(key: string, value: V): TableOp {
    const op: LevelOp = { type: 'put', sublevel: this.#sub, key, value };
    return op as unknown as TableOp;
  }

  delOp(key: string): TableOp {
    const op: LevelOp = { type: 'del', sublevel: this.#sub, key };
    return op as unknown as TableOp;
  }

  /**
   * Applies puts and deletes of this table and of any other of the same database in one
   * atomic batch: all of them or, when one fails (a value JSON cannot encode), none.
   */
  batch(ops: readonly TableOp[]): Promise<void> {
    return this.#run(`${this.name} batch`, () => this.#root.batch(ops as unknown as LevelOp[]));
  }
}
