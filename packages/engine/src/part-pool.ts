import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { AbortError } from '@ferry/manifest';
import type {
  PartTask,
  PartTaskOutcome,
  PartTaskResult,
  PartWorkerData,
  RetryNotice,
} from './part-task.js';
import { RatePacer } from './rate-pacer.js';
import { deserializeError } from './serialized-error.js';

/**
 * Bytes of transfer that pay for one more worker thread. A worker costs ~0.1 CPU-s to boot
 * (its modules; no AWS SDK, see `workerSourceOptions`) and moves ~0.5 GB/s on one core; on
 * a 2-core machine a second worker took 768 MiB from nginx in 1.15 s instead of 1.6 s.
 */
const BYTES_PER_WORKER = 256 * 2 ** 20;

/**
 * Ranged requests a pull keeps in flight: 16, which keeps a 2-core machine's origin and
 * client busy without a queue of idle sockets, or two per core on a box of more than 8, so
 * that every core can run a thread with its two requests (`pullThreads`) instead of the
 * pool stopping at 8 threads.
 */
export function defaultConcurrency(cores: number = availableParallelism()): number {
  return Math.max(16, 2 * cores);
}

/** Threads a pool runs its tasks on: `workers` worker threads, and maybe the calling one. */
export interface PoolThreads {
  workers: number;
  /** With workers, the calling thread runs its share of the tasks too (`PartPoolOptions`). */
  shareCallingThread: boolean;
}

/** What a pull's pool will be asked to do, as far as the thread count goes. */
export interface PullWork {
  /** About the bytes it will move. */
  bytes: number;
  /**
   * The calling thread will be busy beside the fetches: it reads files back for their MD5
   * (a plain listing's single-part ETags), or the pool is wanted first to hash local files,
   * which only workers do (`sharedRunner`).
   */
  callerBusy?: boolean;
}

/**
 * Threads for a pull: one per core, but no more than the work can use: each thread gets at
 * least `BYTES_PER_WORKER` and two requests in flight. The calling thread is one of them: it
 * runs its share of the fetches beside one worker fewer, as its event loop is otherwise idle
 * during a transfer. That spares a worker's boot and took a 776 MiB pull on 2 cores from
 * 1.15 to 1.09 s and 1.89 to 1.73 CPU-s from nginx, and from 1.73 to 1.71 s and 1.62 to
 * 1.52 CPU-s from s3rver (eight pairs each). Not when it is busy (`work.callerBusy`):
 * sharing made a plain listing's pull, whose MD5s it follows, 3 % slower. Work for one
 * thread runs on the calling thread alone (0 workers). The number of files does not count:
 * what a file costs beyond its bytes (the request, a rename, a record) is paid the same on
 * any thread.
 */
export function pullThreads(
  work: PullWork,
  concurrency: number,
  cores: number = availableParallelism(),
): PoolThreads {
  const threads = Math.min(
    cores,
    Math.ceil(concurrency / 2),
    Math.ceil(work.bytes / BYTES_PER_WORKER),
  );
  if (threads <= 1) return { workers: 0, shareCallingThread: false };
  return work.callerBusy === true
    ? { workers: threads, shareCallingThread: false }
    : { workers: threads - 1, shareCallingThread: true };
}

/**
 * Worker threads for hashing `bytes` of local files (publish): one per core, but no more
 * than there is work for, by the same `BYTES_PER_WORKER` (hashing is faster than a transfer,
 * so a worker's ~0.1 CPU-s boot pays even sooner). One thread's worth is hashed on the main
 * thread (0), as a pull's is: a publish of a few MiB starts no thread at all.
 */
export function hashingWorkers(bytes: number, cores: number = availableParallelism()): number {
  const threads = Math.min(cores, Math.ceil(bytes / BYTES_PER_WORKER));
  return threads <= 1 ? 0 : threads;
}

export interface PartPoolOptions {
  /** Worker threads (`pullThreads` chooses for a pull); 0: tasks run on the calling thread. */
  workers: number;
  /**
   * With workers, the calling thread also runs up to its equal share of the tasks in flight
   * (`concurrency / (workers + 1)`), the workers the rest. @default false: the calling
   * thread's event loop stays free of hashing and writes
   */
  shareCallingThread?: boolean;
  /** Tasks in flight at once across all workers. */
  concurrency: number;
  /** Bytes per second all workers together may receive. @default no cap */
  bytesPerSecond?: number;
  /** A worker retried a read; `part` is the part index the task was run with, when given. */
  onRetry?: (notice: RetryNotice & { part?: number }) => void;
}

/** What runs a pool's tasks: piscina's worker threads, or one `PartRunner` on this thread. */
export interface TaskRunner {
  run(task: PartTask): Promise<PartTaskOutcome>;
  close(): Promise<void>;
}

type SlotTask<T extends PartTask> = T extends { slot: number } ? Omit<T, 'slot'> : T;
export type PoolTask = SlotTask<PartTask>;

/**
 * The worker script, as a file URL: the built one beside this module (beside the CLI's
 * bundle, a file that hands over to the engine's: see packages/cli/bundle.mjs). Tests, which run this
 * module from its TypeScript source, name the built worker in `FERRY_PART_WORKER` (the
 * vitest config does): compiling the worker's TypeScript in every thread of every pool cost
 * them most of their time. Always a URL, so piscina loads it with `import()` as it does in
 * production: given a plain path it first tries `require()` of the ES module, which aborted
 * a Node 20 process from a worker thread ("IsGraphAsync must be used on an instantiated
 * module") in a CI run.
 */
function workerFile(): string {
  const built = process.env.FERRY_PART_WORKER;
  return built === undefined
    ? new URL('./part-worker.js', import.meta.url).href
    : pathToFileURL(resolve(built)).href;
}

/**
 * Runs part tasks (fetch, copy, hash) on worker threads, each with a `PartRunner` of its own
 * running several tasks at once, or with no workers on one runner in the calling thread.
 * Byte progress flows back through shared counters, so progress costs no messages, and
 * retries come back with each task's outcome.
 */
export class PartPool {
  /** Loaded on first use, so a warm start never pays for piscina's import. */
  readonly #runner: Promise<TaskRunner>;
  readonly #progress: Int32Array;
  readonly #control: Int32Array;
  readonly #freeSlots: number[];
  readonly #running = new Map<number, { start: number; fetch: boolean; owner?: string }>();
  readonly #onRetry: PartPoolOptions['onRetry'];
  #settledBytes = 0;
  #requests = 0;
  /** Worker threads the pool runs. */
  readonly workers: number;

  constructor(options: PartPoolOptions) {
    const workers = Math.max(0, options.workers);
    this.workers = workers;
    const progress = new SharedArrayBuffer(4 * options.concurrency);
    const control = new SharedArrayBuffer(4);
    this.#progress = new Int32Array(progress);
    this.#control = new Int32Array(control);
    this.#freeSlots = Array.from({ length: options.concurrency }, (_, i) => i);
    this.#onRetry = options.onRetry;
    const workerData: PartWorkerData = {
      progress,
      control,
      ...(options.bytesPerSecond === undefined
        ? {}
        : { pace: { shared: RatePacer.shared(), bytesPerSecond: options.bytesPerSecond } }),
    };
    const inline = () =>
      import('./part-runner.js').then(({ PartRunner }) => new PartRunner(workerData));
    if (workers === 0) {
      this.#runner = inline();
      return;
    }
    const threads = workers + (options.shareCallingThread === true ? 1 : 0);
    const share = Math.max(1, Math.ceil(options.concurrency / threads));
    const piscinaOptions = {
      filename: workerFile(),
      minThreads: workers,
      maxThreads: workers,
      concurrentTasksPerWorker: share,
      // Tasks are I/O bound and overlap; blocking Atomics.wait between them would stall the rest.
      atomics: 'disabled',
      idleTimeout: 30_000,
      // Not the host's flags: a test runner's `--conditions` would send the built worker to
      // the TypeScript sources.
      execArgv: [] as string[],
      workerData,
    } as const;
    const pool: Promise<TaskRunner> = import('piscina').then(({ Piscina }) => {
      const piscina = new Piscina(piscinaOptions);
      return { run: (task) => piscina.run(task), close: () => piscina.destroy() };
    });
    this.#runner = Promise.resolve(
      options.shareCallingThread === true ? sharedRunner(inline(), pool, share) : pool,
    );
  }

  /**
   * Runs one task; rejects with the worker's error rebuilt (code and details kept), or
   * with an AbortError once `stop()` was called. `part` labels retry notices, `owner`
   * (a file) groups in-flight bytes for `inFlightByOwner()`.
   */
  async run(task: PoolTask, part?: number, owner?: string): Promise<PartTaskResult> {
    if (Atomics.load(this.#control, 0) === 1) throw new AbortError('pool stopped');
    // Fetches and copies report their bytes through a progress slot of their own.
    const slotted: PartTask =
      task.kind === 'fetch' || task.kind === 'copy' ? { ...task, slot: this.#takeSlot() } : task;
    const slot = 'slot' in slotted ? slotted.slot : undefined;
    if (slot !== undefined) {
      this.#running.set(slot, {
        start: Atomics.load(this.#progress, slot),
        fetch: task.kind === 'fetch',
        ...(owner === undefined ? {} : { owner }),
      });
    }
    if (task.kind === 'fetch') this.#requests++;
    try {
      const outcome = await (await this.#runner).run(slotted);
      for (const notice of outcome.retries) {
        this.#requests++;
        this.#onRetry?.(part === undefined ? notice : { ...notice, part });
      }
      if (!outcome.ok) throw deserializeError(outcome.error);
      if (task.kind === 'fetch') this.#settledBytes += outcome.result.bytes;
      return outcome.result;
    } finally {
      if (slot !== undefined) {
        this.#running.delete(slot);
        this.#freeSlots.push(slot);
      }
    }
  }

  #takeSlot(): number {
    const slot = this.#freeSlots.pop();
    if (slot === undefined) throw new Error('PartPool: more tasks in flight than its concurrency');
    return slot;
  }

  /** Bytes fetched from the source so far: finished fetches plus what running ones have moved. */
  fetchedBytes(): number {
    let inFlight = 0;
    for (const [slot, { start, fetch }] of this.#running) {
      if (fetch) inFlight += (Atomics.load(this.#progress, slot) - start) | 0;
    }
    return this.#settledBytes + inFlight;
  }

  /** Bytes moved so far by running fetch and copy tasks, per owner. */
  inFlightByOwner(): Map<string, number> {
    const bytes = new Map<string, number>();
    for (const [slot, { start, owner }] of this.#running) {
      if (owner === undefined) continue;
      bytes.set(
        owner,
        (bytes.get(owner) ?? 0) + ((Atomics.load(this.#progress, slot) - start) | 0),
      );
    }
    return bytes;
  }

  /** Source requests made by the workers (one per fetch, plus one per retry). */
  get requests(): number {
    return this.#requests;
  }

  /** Makes running tasks stop at their next chunk (they fail with an AbortError). */
  stop(): void {
    Atomics.store(this.#control, 0, 1);
  }

  async destroy(): Promise<void> {
    await (await this.#runner).close();
  }
}

/**
 * Runs up to `share` fetches and copies at once on the calling thread (`here`), the rest on
 * `workers`, and every hash there: hashing a local part reads it synchronously, and a pool
 * that hashes (publish, `verify --deep`) keeps one task per thread, so a worker whose next
 * part waited for the calling thread to finish its own would idle (a share of `verify
 * --deep` took 0.84 s instead of 0.55). A copy blocks as long, but a pull's worker holds
 * several tasks meanwhile: an update copying 240 MiB of a changed shard's parts took 0.55 s
 * with the calling thread copying too, 0.60 s without (eight pairs).
 */
export function sharedRunner(
  here: Promise<TaskRunner>,
  workers: Promise<TaskRunner>,
  share: number,
): TaskRunner {
  let running = 0;
  return {
    async run(task) {
      if (task.kind === 'hash' || task.kind === 'md5' || running >= share) {
        return (await workers).run(task);
      }
      running++;
      try {
        return await (await here).run(task);
      } finally {
        running--;
      }
    },
    async close() {
      await Promise.all([here.then((r) => r.close()), workers.then((r) => r.close())]);
    },
  };
}
