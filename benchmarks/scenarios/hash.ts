import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { createPartHasher, DEFAULT_PART_SIZE, type DigestAlgorithm } from '@ferry/manifest';
import { type BenchResult, median, type Scenario } from '../lib/scenario.js';

// Part hashing throughput of the two digest algorithms over in-memory data, on one core
// and on two worker threads, so DEFAULT_ALGORITHM can follow the numbers.

const DATA_BYTES = 512 * 1024 * 1024;
const CHUNK = 1024 * 1024; // what a ranged download hands the hasher at a time
const ROUNDS = 3;
const ALGORITHMS: DigestAlgorithm[] = ['sha256', 'blake3'];

interface Job {
  algorithm: DigestAlgorithm;
  start: number;
  end: number;
}

// xorshift32: a few GB/s, where crypto-grade randomness would dominate the run time.
function fill(buffer: SharedArrayBuffer): void {
  const words = new Uint32Array(buffer);
  let x = 0x9e3779b9;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
}

/** Hashes bytes [start, end) of `data` part by part, fed in CHUNK-sized updates. */
async function hashRange(data: Uint8Array, { algorithm, start, end }: Job): Promise<void> {
  for (let part = start; part < end; part += DEFAULT_PART_SIZE) {
    const hasher = await createPartHasher(algorithm);
    const partEnd = Math.min(part + DEFAULT_PART_SIZE, end);
    for (let at = part; at < partEnd; at += CHUNK) {
      hasher.update(data.subarray(at, Math.min(at + CHUNK, partEnd)));
    }
    hasher.digest();
  }
}

const mbPerSecond = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000);

async function oneCore(data: Uint8Array, algorithm: DigestAlgorithm): Promise<number> {
  const rates: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const t0 = performance.now();
    await hashRange(data, { algorithm, start: 0, end: data.length });
    rates.push(mbPerSecond(data.length, performance.now() - t0));
  }
  return median(rates);
}

function startWorker(buffer: SharedArrayBuffer): Worker {
  // `--import tsx` does not reach worker threads on Node 20: register tsx inside the worker.
  const source = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(import.meta.url)}); })`;
  return new Worker(source, { eval: true, workerData: { hashBench: buffer } });
}

function runJob(worker: Worker, job: Job): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    worker.once('error', onError);
    worker.once('message', () => {
      worker.off('error', onError);
      resolve();
    });
    worker.postMessage(job);
  });
}

async function twoThreads(workers: Worker[], bytes: number, algorithm: DigestAlgorithm) {
  const half = Math.floor(bytes / 2 / DEFAULT_PART_SIZE) * DEFAULT_PART_SIZE;
  const jobs = [
    { algorithm, start: 0, end: half },
    { algorithm, start: half, end: bytes },
  ];
  // A warm-up round, so the workers' module loading and WASM compilation are not timed.
  await Promise.all(workers.map((w) => runJob(w, { algorithm, start: 0, end: DEFAULT_PART_SIZE })));
  const rates: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const t0 = performance.now();
    await Promise.all(workers.map((w, i) => runJob(w, jobs[i] as Job)));
    rates.push(mbPerSecond(bytes, performance.now() - t0));
  }
  return median(rates);
}

const scenario: Scenario = {
  name: 'hash',
  description: `part hashing (${DEFAULT_PART_SIZE / 2 ** 20} MiB parts) of 512 MiB in memory: sha256 vs blake3, one core and two worker threads`,
  async run({ signal }) {
    const buffer = new SharedArrayBuffer(DATA_BYTES);
    fill(buffer);
    const data = new Uint8Array(buffer);
    const results: BenchResult[] = [];
    const single = new Map<DigestAlgorithm, number>();
    for (const algorithm of ALGORITHMS) {
      signal?.throwIfAborted();
      await hashRange(data, { algorithm, start: 0, end: DEFAULT_PART_SIZE }); // warm-up
      single.set(algorithm, await oneCore(data, algorithm));
    }
    const workers = [startWorker(buffer), startWorker(buffer)];
    const parallel = new Map<DigestAlgorithm, number>();
    try {
      for (const algorithm of ALGORITHMS) {
        signal?.throwIfAborted();
        parallel.set(algorithm, await twoThreads(workers, DATA_BYTES, algorithm));
      }
    } finally {
      await Promise.all(workers.map((w) => w.terminate()));
    }
    const base1 = single.get('sha256') ?? Number.NaN;
    const base2 = parallel.get('sha256') ?? Number.NaN;
    for (const algorithm of ALGORITHMS) {
      const one = single.get(algorithm) ?? Number.NaN;
      const two = parallel.get(algorithm) ?? Number.NaN;
      const extra = { bytes: DATA_BYTES, partSize: DEFAULT_PART_SIZE, rounds: ROUNDS };
      results.push(
        algorithm === 'sha256'
          ? { name: `${algorithm} one core`, value: one, unit: 'MB/s', extra }
          : {
              name: `${algorithm} one core`,
              value: one,
              unit: 'MB/s',
              baseline: 'sha256 one core',
              ratio: one / base1,
              extra,
            },
        algorithm === 'sha256'
          ? {
              name: `${algorithm} two threads`,
              value: two,
              unit: 'MB/s',
              extra: { ...extra, scaling: two / one },
            }
          : {
              name: `${algorithm} two threads`,
              value: two,
              unit: 'MB/s',
              baseline: 'sha256 two threads',
              ratio: two / base2,
              extra: { ...extra, scaling: two / one },
            },
      );
    }
    return results;
  },
};

export default scenario;

// Worker side: hash the requested range of the shared data, answer when done.
const shared = (workerData as { hashBench?: SharedArrayBuffer } | null)?.hashBench;
if (!isMainThread && shared !== undefined) {
  const data = new Uint8Array(shared);
  parentPort?.on('message', (job: Job) => {
    // A failure rejects unhandled, which ends the worker and fails runJob through 'error'.
    void hashRange(data, job).then(() => parentPort?.postMessage('done'));
  });
}
