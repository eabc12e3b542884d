import { createHash } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import {
  closeSync,
  constants,
  createReadStream,
  fstatSync,
  open,
  openSync,
  readSync,
  writeSync,
  writevSync,
} from 'node:fs';
import { promisify } from 'node:util';
import { openSource, readRange, type Source, type SourceOptions } from '@ferry/adapters';
import {
  AbortError,
  createPartHasher,
  FerryError,
  isFerryError,
  type PartHasher,
} from '@ferry/manifest';
import { consumeStream } from './consume-stream.js';
import { CUT_BYTES, cutsPathFor } from './part-cuts.js';
import type {
  CopyTask,
  FetchTask,
  HashTask,
  PartTask,
  PartTaskOutcome,
  PartTaskResult,
  PartWorkerData,
  RetryNotice,
} from './part-task.js';
import { RatePacer } from './rate-pacer.js';
import { serializeError } from './serialized-error.js';

/**
 * Received bytes are gathered to this size, then written (in `WRITE_SLICE` pieces) and cut:
 * one 8-byte cut per batch, and what a SIGKILL may cost a part (see part-cuts.ts).
 */
const WRITE_BATCH = CUT_BYTES;
/**
 * Bytes per write syscall. Linux 6.x sizes a page-cache folio by the write that fills it, and
 * on VMs with free page reporting (Firecracker: these machines) a folio of 64 KiB or more
 * seems to come from memory the guest has handed back to the host, whose first touch faults
 * there. In that state 768 MiB written in 256 KiB pieces cost 1.0–2.1 s of kernel time, in
 * 32 KiB pieces 0.27–0.41 s (dd: 1.9 s against 0.18 s), and a pull ~0.4 s more wall time.
 * Otherwise the smaller writes cost a little: ~0.06 CPU-s and 2–4 % of the wall time of a
 * 768 MiB pull from s3rver (18 pairs). rclone writes 32 KiB too.
 */
const WRITE_SLICE = 32 * 1024;
/** Reads of local files for hashing: large enough that the syscall per read is noise. */
const READ_SIZE = 1 << 20;

/**
 * Opens off the thread: creating a file took 0.3–0.5 ms in the kernel here (ext4, more on
 * a busy disk), time in which a synchronous open held up every socket of the thread; a
 * pull of 1,000 small files spent a quarter of its wall time there.
 */
const openFd = promisify(open);

/** How often a runner with tasks looks at the stop flag and samples the pull's bytes. */
const POLL_MS = 50;

/** Bytes moved by every part of the pull (all workers), over the last `WINDOW_MS`. */
class PullBytes {
  static readonly WINDOW_MS = 30_000;
  readonly #progress: Int32Array;
  readonly #last: Int32Array;
  #total = 0;
  /** Oldest first; the first one is at or before the window's start once there is history. */
  readonly #samples: Array<{ at: number; total: number }> = [{ at: performance.now(), total: 0 }];

  constructor(progress: Int32Array) {
    this.#progress = progress;
    this.#last = new Int32Array(progress.length);
  }

  sample(): void {
    for (let i = 0; i < this.#progress.length; i++) {
      const now = Atomics.load(this.#progress, i);
      // The counters wrap at 2 GiB: their differences do not.
      this.#total += (now - (this.#last[i] ?? 0)) | 0;
      this.#last[i] = now;
    }
    const at = performance.now();
    this.#samples.push({ at, total: this.#total });
    while ((this.#samples[1]?.at ?? at) < at - PullBytes.WINDOW_MS) this.#samples.shift();
  }

  /** Bytes the pull moved in the last `ms` (as far back as the samples reach). */
  within(ms: number): number {
    const since = performance.now() - ms;
    let before = this.#samples[0];
    for (const sample of this.#samples) {
      if (sample.at > since) break;
      before = sample;
    }
    return this.#total - (before?.total ?? 0);
  }
}

/**
 * A body is hedged when it has been idle `hedgeAfterMs` while the rest of the pull moved
 * at least `HEDGE_MIN_OTHERS` since it went quiet: a healthy part never pauses for seconds
 * while its siblings flow (or finish), and on a link that is slow for everyone the others
 * do not move megabytes while it waits. The body's idle time is read off the clock (see
 * `readRange`), which looks at it every `IDLE_TICK_MS` at most: the window reaches that much
 * further back, so bytes the others moved just before the body's last check still count.
 */
const HEDGE_MIN_OTHERS = 4 * 2 ** 20;
const IDLE_TICK_MS = 250;

/**
 * Runs part tasks: fetch, copy and hash one part of one file per call. A worker thread runs
 * one (part-worker.ts), and so does the main thread when a pull is too small to pay for
 * threads (`PartPool` with no workers). Each runner keeps its own sources (so its own
 * sockets); byte progress flows back through shared counters, so progress costs no
 * messages. Reads and writes of file bytes are synchronous: page-cache reads and writes of a
 * batch are cheaper than the thread-pool hop, promise and body pause of async ones, and
 * short enough not to hold up the sockets sharing the thread (opening a file is not: see
 * `openFd`).
 */
export class PartRunner {
  readonly #progress: Int32Array;
  readonly #control: Int32Array;
  readonly #pacer: RatePacer | undefined;
  /** Bytes one socket read may bring (`SourceOptions.readBufferBytes`), sized to the pacer. */
  readonly #readBytes: number;
  readonly #sources = new Map<string, Source>();
  readonly #optionIds = new WeakMap<SourceOptions, string>();
  readonly #pullBytes: PullBytes;
  /**
   * Aborts once the pool raises the shared stop flag (it is never lowered: a stopped pool
   * is destroyed). Signals cannot cross threads, so the flag is polled, by one timer for all
   * the tasks of this runner, and only while tasks run. The same timer samples how many
   * bytes the whole pull moved, for the hedging rule.
   */
  readonly #stopped = new AbortController();
  #running = 0;
  #poll: NodeJS.Timeout | undefined;

  constructor(data: PartWorkerData) {
    this.#progress = new Int32Array(data.progress);
    this.#control = new Int32Array(data.control);
    this.#pacer =
      data.pace === undefined
        ? undefined
        : new RatePacer(data.pace.shared, data.pace.bytesPerSecond);
    // A read is booked whole before the pacer can hold the body back: with all the pull's
    // requests reading at once, the reads of 1/128 s of the limit each stay a short burst.
    this.#readBytes = Math.max(
      16 * 1024,
      Math.min(1 << 20, Math.floor((data.pace?.bytesPerSecond ?? Infinity) / 128)),
    );
    this.#pullBytes = new PullBytes(this.#progress);
    // Every running read listens to it: as many as the runner's share of the concurrency.
    setMaxListeners(0, this.#stopped.signal);
  }

  /**
   * One task. Failures come back as data, as an Error crossing a thread boundary loses its
   * `code` and other fields; inline runs get the same, so both paths rebuild errors alike.
   */
  async run(task: PartTask): Promise<PartTaskOutcome> {
    const retries: RetryNotice[] = [];
    try {
      // Tasks queued before a stop still reach the runner: drop them unstarted.
      if (Atomics.load(this.#control, 0) === 1) throw new AbortError('pull stopped');
      return { ok: true, result: await this.#runTask(task, retries), retries };
    } catch (error) {
      return { ok: false, error: serializeError(error), retries };
    }
  }

  /** Closes the sources' connections (a worker thread's go with the thread). */
  async close(): Promise<void> {
    const sources = [...this.#sources.values()];
    this.#sources.clear();
    await Promise.all(sources.map((source) => source.close()));
  }

  #runTask(task: PartTask, retries: RetryNotice[]): Promise<PartTaskResult> {
    switch (task.kind) {
      case 'fetch':
        return this.#fetchPart(task, retries);
      case 'copy':
        return this.#copyPart(task);
      case 'hash':
        return hashPart(task);
      case 'md5':
        return md5File(task.path);
    }
  }

  /**
   * One Source per (uri, options) per runner, so one connection pool; a mirror is an HTTP
   * source of its own URL.
   */
  #sourceFor(uri: string, options?: SourceOptions): Source {
    const id = options === undefined ? uri : `${uri}\n${this.#optionsId(options)}`;
    let source = this.#sources.get(id);
    if (!source) {
      source = openSource(
        uri,
        this.#pacer === undefined ? options : { ...options, readBufferBytes: this.#readBytes },
      );
      this.#sources.set(id, source);
    }
    return source;
  }

  /**
   * The options as text, once per options object: on the main thread every task brings the
   * same object (a worker's are copies), and writing it out, credentials and all, took
   * ~20 µs a task.
   */
  #optionsId(options: SourceOptions): string {
    let id = this.#optionIds.get(options);
    if (id === undefined) {
      id = JSON.stringify(options);
      this.#optionIds.set(options, id);
    }
    return id;
  }

  #taskStarted(): AbortSignal {
    const stop = () => {
      if (Atomics.load(this.#control, 0) === 1) this.#stopped.abort(new AbortError('pull stopped'));
    };
    stop();
    if (this.#running++ === 0) {
      this.#poll = setInterval(() => {
        stop();
        this.#pullBytes.sample();
      }, POLL_MS);
    }
    return this.#stopped.signal;
  }

  #taskEnded(): void {
    if (--this.#running === 0) clearInterval(this.#poll);
  }

  #lagging(hedgeAfterMs: number): ((idleMs: number) => boolean) | undefined {
    if (!(hedgeAfterMs > 0)) return undefined;
    return (idleMs) =>
      idleMs >= hedgeAfterMs && this.#pullBytes.within(idleMs + IDLE_TICK_MS) >= HEDGE_MIN_OTHERS;
  }

  async #fetchPart(task: FetchTask, retries: RetryNotice[]): Promise<PartTaskResult> {
    const fd = await openFd(task.tmpPath, task.create ? 'w' : 'r+');
    const signal = this.#taskStarted();
    let cutsFd: number | undefined;
    try {
      const hasher = await createPartHasher(task.algorithm);
      const md5 = task.md5 === true ? createHash('md5') : undefined;
      const kept = task.resumeFrom ?? 0;
      // The bytes a checkpoint kept: hashed again from the file (a hash state cannot be
      // saved), so whatever a crash left there is checked with the rest of the part.
      if (kept > 0)
        hashRange(fd, task.start, task.start + kept, (chunk) => {
          hasher.update(chunk);
          md5?.update(chunk);
        });
      const from = task.start + kept;
      // Created when missing: a pull killed between starting the journal and writing the
      // sidecar leaves none, and its resume must still be able to record cuts.
      cutsFd =
        task.cuts === undefined
          ? undefined
          : openSync(cutsPathFor(task.tmpPath), constants.O_RDWR | constants.O_CREAT);
      const writer = new PartWriter(
        this.#progress,
        fd,
        from,
        hasher,
        task.slot,
        task,
        cutsFd === undefined || task.cuts === undefined
          ? undefined
          : { fd: cutsFd, index: task.cuts },
        `${task.tmpPath} (part of ${task.path})`,
      );
      try {
        // Content-addressed parts may come from a mirror (an HTTP cache or CDN in front of the
        // origin) first: any copy is as good as the origin's, as every byte is verified. A
        // mirror that fails hands over to the next, from the byte it reached, then the origin.
        const mirrors = task.keyOffset === undefined ? [] : (task.mirrors ?? []);
        for (const [i, mirror] of [...mirrors, undefined].entries()) {
          const at = writer.flush();
          if (at >= task.end) break;
          try {
            await readRange(
              mirror === undefined
                ? this.#sourceFor(task.uri, task.sourceOptions)
                : this.#sourceFor(mirror),
              task.key,
              {
                start: at - (task.keyOffset ?? 0),
                end: task.end - (task.keyOffset ?? 0),
                ifMatch: task.ifMatch,
                signal,
                transientChunks: true,
                lagging: this.#lagging(task.hedgeAfterMs ?? 0),
                onHedge: (byte) => {
                  retries.push({
                    key: task.path,
                    attempt: 0,
                    code: 'FERRY_TRANSIENT',
                    message: `${task.path}: no bytes for ${task.hedgeAfterMs} ms while the rest of the pull went on; racing a second request from byte ${byte}`,
                  });
                },
              },
              (chunk, lent) => {
                md5?.update(chunk);
                writer.add(chunk, lent);
                return this.#pacer?.take(chunk.length);
              },
              {
                ...(task.stallTimeoutMs === undefined
                  ? {}
                  : { stallTimeoutMs: task.stallTimeoutMs }),
                // A mirror gets one quick retry: the origin is the fallback, not a long wait.
                ...(mirror === undefined ? {} : { retries: 1, baseDelayMs: 50 }),
                onRetry: ({ attempt, error }) => {
                  retries.push({
                    key: task.path,
                    attempt,
                    code: error.code,
                    message: error.message,
                  });
                },
              },
            );
            break;
          } catch (error) {
            if (mirror === undefined || signal.aborted) throw error;
            const next = mirrors[i + 1] ?? 'the origin';
            retries.push({
              key: task.path,
              attempt: 1,
              code: isFerryError(error) ? error.code : 'FERRY_TRANSIENT',
              message: `mirror ${mirror} failed for ${task.path} (${(error as Error).message}); reading from ${next}`,
            });
          }
        }
      } catch (error) {
        // Bytes received before a stop or a failure are good: on disk, a cut keeps them. If even
        // that write fails, the cut stays at the last one recorded.
        try {
          writer.flush();
        } catch {}
        throw error;
      }
      // Not synced: a killed process loses nothing from the page cache, a resume re-hashes
      // every part its journal claims, and waiting for the disk per part capped pulls at its
      // write speed (~360 MB/s here). `durable` pulls sync each file before its rename.
      const bytes = writer.flush() - from;
      if (bytes !== task.end - from) {
        throw new FerryError(
          'FERRY_TRANSIENT',
          `${task.path}: expected ${task.end - from} bytes from ${from}, got ${bytes}`,
          { key: task.path, retryable: true },
        );
      }
      const digest = hasher.digest();
      checkDigest(task, digest, task.path);
      return {
        digest,
        bytes,
        ...(kept > 0 ? { kept } : {}),
        ...(md5 === undefined ? {} : { md5: md5.digest('hex') }),
        // A file this task created has no other writer: its mtime is final now.
        ...(task.create ? { mtimeMs: fstatSync(fd).mtimeMs } : {}),
      };
    } finally {
      this.#taskEnded();
      closeSync(fd);
      if (cutsFd !== undefined) closeSync(cutsFd);
    }
  }

  async #copyPart(task: CopyTask): Promise<PartTaskResult> {
    const fd = await openFd(task.tmpPath, task.create ? 'w' : 'r+');
    const signal = this.#taskStarted();
    try {
      const hasher = await createPartHasher(task.algorithm);
      const writer = new PartWriter(
        this.#progress,
        fd,
        task.start,
        hasher,
        task.slot,
        task,
        undefined,
        task.tmpPath,
      );
      const body = createReadStream(task.fromPath, {
        start: task.start,
        end: task.end - 1,
        highWaterMark: WRITE_BATCH,
      });
      await consumeStream(body, (chunk) => writer.add(chunk), signal);
      const bytes = writer.flush() - task.start;
      const digest = hasher.digest();
      checkDigest(task, digest, task.fromPath);
      return { digest, bytes };
    } finally {
      this.#taskEnded();
      closeSync(fd);
    }
  }
}

/**
 * Hashes each chunk and writes it at its offset, gathered into batches of `WRITE_BATCH`,
 * each batch followed by its cut. Writes are synchronous: a page-cache write of a batch is cheaper than the thread-pool hop,
 * promise and body pause of an async one. The cut is an 8-byte write per 256 KiB batch.
 */
class PartWriter {
  readonly #fd: number;
  readonly #progress: Int32Array;
  readonly #hasher: PartHasher;
  readonly #slot: number;
  readonly #partStart: number;
  readonly #partEnd: number;
  readonly #cuts: { fd: number; index: number } | undefined;
  readonly #where: string;
  readonly #slotBytes = Buffer.alloc(8);
  #position: number;
  #batch: Buffer[] = [];
  #batchBytes = 0;
  /** Where lent chunks are copied until their batch is written: one allocation per part. */
  #stash: Buffer | undefined;
  readonly #stashSize: number;
  #stashedBytes = 0;

  /**
   * `start`: where the next byte goes; `part`: the bytes the part spans; `cuts`: the
   * sidecar slot where how far the part got is kept (see part-cuts.ts).
   */
  constructor(
    progress: Int32Array,
    fd: number,
    start: number,
    hasher: PartHasher,
    slot: number,
    part: { start: number; end: number },
    cuts: { fd: number; index: number } | undefined,
    where: string,
  ) {
    this.#progress = progress;
    this.#where = where;
    this.#fd = fd;
    this.#position = start;
    this.#partStart = part.start;
    this.#partEnd = part.end;
    // A batch never holds more than the part: a small file's stash is the file's size.
    this.#stashSize = Math.min(WRITE_BATCH, part.end - part.start);
    this.#cuts = cuts;
    this.#hasher = hasher;
    this.#slot = slot;
  }

  /**
   * Hashes and gathers `chunk`. A `lent` one is not kept past this call (its memory is the
   * source's next read, see `transientChunks`): written at once if it fills the batch or
   * ends the part, else copied into the part's stash, which its batch's write frees for the
   * next one: a copy each, but not an allocation each (from nginx two of three socket reads
   * are smaller than a batch). That took peak RSS of 768 MiB from s3rver from ~181 to
   * ~128 MiB and 0.1 CPU-s of garbage collection off the pull (seven pairs). A small file
   * that comes in one read needs no stash at all: 1,000 files of 64 KiB from s3rver took
   * 0.68 user CPU-s instead of 0.72 and 119 MiB of peak RSS instead of 126, in the same
   * wall time (ten pairs).
   */
  add(chunk: Buffer, lent = false): undefined {
    this.#hasher.update(chunk);
    const total = this.#batchBytes + chunk.length;
    // The part's last bytes are written at once, lent or not: a small file's one chunk
    // needs no stash.
    const last = this.#position + total >= this.#partEnd;
    this.#batch.push(lent && total < WRITE_BATCH && !last ? this.#stashed(chunk) : chunk);
    this.#batchBytes = total;
    Atomics.add(this.#progress, this.#slot, chunk.length);
    if (total >= WRITE_BATCH || last) this.flush();
    return undefined;
  }

  /** Writes what is gathered; returns the offset one past the last byte written. */
  flush(): number {
    if (this.#batchBytes > 0) {
      try {
        writeAll(this.#fd, this.#batch, this.#position);
      } catch (error) {
        throw writeFailure(error, this.#where);
      }
      this.#position += this.#batchBytes;
      this.#batch = [];
      this.#batchBytes = 0;
      this.#stashedBytes = 0;
      this.#cut();
    }
    return this.#position;
  }

  /** A copy of `chunk` in the stash, valid until the batch is written. */
  #stashed(chunk: Buffer): Buffer {
    this.#stash ??= Buffer.allocUnsafe(this.#stashSize);
    const at = this.#stashedBytes;
    chunk.copy(this.#stash, at);
    this.#stashedBytes += chunk.length;
    return this.#stash.subarray(at, this.#stashedBytes);
  }

  /** Records in the sidecar how far the part is written: only ever after the bytes are. */
  #cut(): void {
    if (this.#cuts === undefined) return;
    this.#slotBytes.writeBigUInt64LE(BigInt(this.#position - this.#partStart));
    writeSync(this.#cuts.fd, this.#slotBytes, 0, 8, this.#cuts.index * 8);
  }
}

/** A failed write, named by its file and told what to do: a full disk is the usual one. */
function writeFailure(error: unknown, where: string): FerryError {
  const errno = (error as NodeJS.ErrnoException).code;
  return new FerryError('FERRY_IO', `cannot write ${where}: ${(error as Error).message}`, {
    key: where,
    cause: error,
    hint:
      errno === 'ENOSPC'
        ? 'The disk is full: free space (`ferry gc` removes partial files nothing can resume), then run the same pull again; what was written is kept.'
        : 'Check the permissions and the disk of the cache root.',
  });
}

/**
 * Writes `chunks` at `position` in writes of at most `WRITE_SLICE` bytes each, each repeated
 * until the kernel took all of it (a regular file may take fewer at once).
 */
function writeAll(fd: number, chunks: Buffer[], position: number): void {
  let at = position;
  let slice: Buffer[] = [];
  let sliceBytes = 0;
  for (const chunk of chunks) {
    for (let from = 0; from < chunk.length; ) {
      const take = Math.min(chunk.length - from, WRITE_SLICE - sliceBytes);
      slice.push(take === chunk.length ? chunk : chunk.subarray(from, from + take));
      sliceBytes += take;
      from += take;
      if (sliceBytes === WRITE_SLICE) {
        writeFully(fd, slice, at);
        at += sliceBytes;
        slice = [];
        sliceBytes = 0;
      }
    }
  }
  if (sliceBytes > 0) writeFully(fd, slice, at);
}

/** `writevSync` until every byte is written. */
function writeFully(fd: number, chunks: Buffer[], position: number): void {
  let rest = chunks;
  let at = position;
  for (;;) {
    const total = rest.reduce((sum, c) => sum + c.length, 0);
    const written = writevSync(fd, rest, at);
    if (written === total) return;
    at += written;
    let skip = written;
    const next: Buffer[] = [];
    for (const chunk of rest) {
      if (skip >= chunk.length) {
        skip -= chunk.length;
        continue;
      }
      next.push(skip > 0 ? chunk.subarray(skip) : chunk);
      skip = 0;
    }
    rest = next;
  }
}

function checkDigest(task: FetchTask | CopyTask | HashTask, digest: string, where: string): void {
  if (task.expectedDigest !== undefined && digest !== task.expectedDigest) {
    throw new FerryError(
      'FERRY_INTEGRITY',
      `bytes ${task.start}-${task.end} of ${where} hash to ${digest}, expected ${task.expectedDigest}`,
      {
        key: where,
        retryable: true,
        hint: 'The source holds other bytes than the version says: it changed or is corrupt. Publish the version again, or pull the one the source holds now.',
      },
    );
  }
}

/**
 * Feeds `[start, end)` of an open file to `onChunk` with positional reads into one buffer:
 * the worker thread has nothing else to do, and a stream would add a promise and an
 * allocation per chunk. Returns the bytes read (fewer when the file is shorter).
 */
function hashRange(
  fd: number,
  start: number,
  end: number,
  onChunk: (chunk: Buffer) => void,
): number {
  const buffer = Buffer.allocUnsafe(Math.min(READ_SIZE, Math.max(1, end - start)));
  let at = start;
  while (at < end) {
    const read = readSync(fd, buffer, 0, Math.min(buffer.length, end - at), at);
    if (read === 0) break;
    onChunk(buffer.subarray(0, read));
    at += read;
  }
  return at - start;
}

async function hashPart(task: HashTask): Promise<PartTaskResult> {
  const hasher = await createPartHasher(task.algorithm);
  const fd = openSync(task.path, 'r');
  try {
    const bytes = hashRange(fd, task.start, task.end, (chunk) => hasher.update(chunk));
    return { digest: hasher.digest(), bytes };
  } finally {
    closeSync(fd);
  }
}

async function md5File(path: string): Promise<PartTaskResult> {
  const hash = createHash('md5');
  let bytes = 0;
  for await (const chunk of createReadStream(path, {
    highWaterMark: WRITE_BATCH,
  }) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { digest: hash.digest('hex'), bytes };
}
