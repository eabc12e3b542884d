import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { openSource, type Source, withRetry } from '@ferry/adapters';
import { AbortError, createPartHasher, FerryError, type PartHasher } from '@ferry/manifest';
import { workerData } from 'piscina';
import { consumeStream } from './consume-stream.js';
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
import { serializeError } from './serialized-error.js';

const data = workerData as PartWorkerData;
const progress = new Int32Array(data.progress);
const control = new Int32Array(data.control);
const sources = new Map<string, Source>();

/** Writes are gathered to this size: fewer syscalls than one write per socket chunk. */
const WRITE_BATCH = 1 << 18;

/** One Source per (uri, options) per worker: each worker keeps its own connection pool. */
function sourceFor(task: FetchTask, retries: RetryNotice[]): Source {
  const id = `${task.uri}\n${JSON.stringify(task.sourceOptions)}`;
  let source = sources.get(id);
  if (!source) {
    source = openSource(task.uri, task.sourceOptions);
    sources.set(id, source);
  }
  return withRetry(source, {
    onRetry: ({ key, attempt, error }) => {
      retries.push({ key, attempt, code: error.code, message: error.message });
    },
  });
}

/** Aborts when the main thread raises the shared stop flag; polled, as signals cannot cross threads. */
function stopSignal(): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const check = () => {
    if (Atomics.load(control, 0) === 1) controller.abort(new AbortError('pull stopped'));
  };
  check();
  const timer = setInterval(check, 50);
  return { signal: controller.signal, dispose: () => clearInterval(timer) };
}

async function writeStream(
  body: Readable,
  file: FileHandle,
  task: FetchTask | CopyTask,
  hasher: PartHasher,
  signal: AbortSignal,
): Promise<number> {
  let position = task.start;
  let batch: Buffer[] = [];
  let batchBytes = 0;
  const flush = async () => {
    if (batchBytes === 0) return;
    const chunks = batch;
    const at = position;
    position += batchBytes;
    batch = [];
    batchBytes = 0;
    await file.writev(chunks, at);
  };
  await consumeStream(
    body,
    (chunk) => {
      hasher.update(chunk);
      batch.push(chunk);
      batchBytes += chunk.length;
      Atomics.add(progress, task.slot, chunk.length);
      return batchBytes >= WRITE_BATCH ? flush() : undefined;
    },
    signal,
  );
  await flush();
  return position - task.start;
}

function checkDigest(task: FetchTask | CopyTask | HashTask, digest: string, where: string): void {
  if (task.expectedDigest !== undefined && digest !== task.expectedDigest) {
    throw new FerryError(
      'FERRY_INTEGRITY',
      `bytes ${task.start}-${task.end} of ${where} hash to ${digest}, expected ${task.expectedDigest}`,
      { key: where, retryable: true },
    );
  }
}

async function fetchPart(task: FetchTask, retries: RetryNotice[]): Promise<PartTaskResult> {
  const stop = stopSignal();
  const file = await open(task.tmpPath, task.create ? 'w' : 'r+');
  try {
    const source = sourceFor(task, retries);
    const hasher = await createPartHasher(task.algorithm);
    const body = await source.read(task.key, {
      start: task.start,
      end: task.end,
      ...(task.ifMatch === undefined ? {} : { ifMatch: task.ifMatch }),
      signal: stop.signal,
    });
    const bytes = await writeStream(body, file, task, hasher, stop.signal);
    // Durable before the journal records it, so a power cut cannot leave a part the journal
    // calls done unwritten; it also spreads write-back over the transfer instead of one
    // long flush per file at commit.
    await file.datasync();
    if (bytes !== task.end - task.start) {
      throw new FerryError(
        'FERRY_TRANSIENT',
        `${task.key}: expected ${task.end - task.start} bytes from ${task.start}, got ${bytes}`,
        { key: task.key, retryable: true },
      );
    }
    const digest = hasher.digest();
    checkDigest(task, digest, task.key);
    return { digest, bytes };
  } finally {
    stop.dispose();
    await file.close();
  }
}

async function copyPart(task: CopyTask): Promise<PartTaskResult> {
  const stop = stopSignal();
  const file = await open(task.tmpPath, task.create ? 'w' : 'r+');
  try {
    const hasher = await createPartHasher(task.algorithm);
    const body = createReadStream(task.fromPath, {
      start: task.start,
      end: task.end - 1,
      highWaterMark: WRITE_BATCH,
    });
    const bytes = await writeStream(body, file, task, hasher, stop.signal);
    await file.datasync();
    const digest = hasher.digest();
    checkDigest(task, digest, task.fromPath);
    return { digest, bytes };
  } finally {
    stop.dispose();
    await file.close();
  }
}

async function hashPart(task: HashTask): Promise<PartTaskResult> {
  const hasher = await createPartHasher(task.algorithm);
  let bytes = 0;
  if (task.end > task.start) {
    const body = createReadStream(task.path, {
      start: task.start,
      end: task.end - 1,
      highWaterMark: WRITE_BATCH,
    });
    for await (const chunk of body as AsyncIterable<Buffer>) {
      hasher.update(chunk);
      bytes += chunk.length;
    }
  }
  return { digest: hasher.digest(), bytes };
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

function runTask(task: PartTask, retries: RetryNotice[]): Promise<PartTaskResult> {
  switch (task.kind) {
    case 'fetch':
      return fetchPart(task, retries);
    case 'copy':
      return copyPart(task);
    case 'hash':
      return hashPart(task);
    case 'md5':
      return md5File(task.path);
  }
}

/**
 * The piscina entry point: one part of one file per call. Failures come back as data,
 * because an Error crossing a thread boundary loses its `code` and other fields.
 */
export default async function runPartTask(task: PartTask): Promise<PartTaskOutcome> {
  const retries: RetryNotice[] = [];
  try {
    // Tasks queued before a stop still reach the worker: drop them unstarted.
    if (Atomics.load(control, 0) === 1) throw new AbortError('pull stopped');
    return { ok: true, result: await runTask(task, retries), retries };
  } catch (error) {
    return { ok: false, error: serializeError(error), retries };
  }
}
