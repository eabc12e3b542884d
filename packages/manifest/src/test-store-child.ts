// A second process (and its worker thread) for the store's lock tests, run as
// `node --import tsx --conditions ferry-source test-store-child.ts <location> <mode>`:
//   hold    open the store, print {"ready":pid}, close when stdin ends
//   open    try to open, print {"opened":true} or {"code","message"}
//   thread  open the store, then try to open it again in a worker thread and print that
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { CacheIndex } from './cache-index.js';
import { isFerryError } from './errors.js';

type Outcome = { opened: true } | { code: string; message: string };

async function tryOpen(location: string): Promise<Outcome> {
  try {
    await (await CacheIndex.open(location)).close();
    return { opened: true };
  } catch (err) {
    if (isFerryError(err)) return { code: err.code, message: err.message };
    throw err;
  }
}

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

if (isMainThread) {
  const [location, mode] = process.argv.slice(2);
  if (location === undefined) throw new Error('usage: test-store-child.ts <location> <mode>');
  if (mode === 'open') {
    print(await tryOpen(location));
  } else {
    const store = await CacheIndex.open(location);
    if (mode === 'thread') {
      // `--import tsx` does not reach worker threads on Node 20: register tsx inside it.
      const source = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(import.meta.url)}); })`;
      const worker = new Worker(source, { eval: true, workerData: location });
      const [outcome] = (await new Promise((resolve, reject) => {
        worker.once('message', (m) => resolve([m]));
        worker.once('error', reject);
      })) as [Outcome];
      await worker.terminate();
      print(outcome);
    } else {
      print({ ready: process.pid });
      process.stdin.resume();
      await new Promise((resolve) => process.stdin.once('end', resolve));
    }
    await store.close();
  }
} else {
  parentPort?.postMessage(await tryOpen(workerData as string));
}
