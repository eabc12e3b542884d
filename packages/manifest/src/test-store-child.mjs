// A second process (and its worker thread) for the store's lock tests, run as
// `node test-store-child.mjs <location> <mode>`:
//   hold    open the store, print {"ready":pid}, close when stdin ends
//   open    try to open, print {"opened":true} or {"code","message"}
//   thread  open the store, then try to open it again in a worker thread and print that
// JavaScript on the built package (test/built-worker.setup.ts rebuilds a stale one): loading
// tsx and compiling the store's sources cost each of these children most of a CPU-second.
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { isFerryError } from '@ferry/manifest';
import { CacheIndex } from '@ferry/manifest/store';

/** @returns {Promise<{ opened: true } | { code: string; message: string }>} */
async function tryOpen(location) {
  try {
    await (await CacheIndex.open(location)).close();
    return { opened: true };
  } catch (err) {
    if (isFerryError(err)) return { code: err.code, message: err.message };
    throw err;
  }
}

function print(value) {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

if (isMainThread) {
  const [location, mode] = process.argv.slice(2);
  if (location === undefined) throw new Error('usage: test-store-child.mjs <location> <mode>');
  if (mode === 'open') {
    print(await tryOpen(location));
  } else {
    const store = await CacheIndex.open(location);
    if (mode === 'thread') {
      const worker = new Worker(new URL(import.meta.url), { workerData: location });
      const [outcome] = await new Promise((resolve, reject) => {
        worker.once('message', (m) => resolve([m]));
        worker.once('error', reject);
      });
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
  parentPort?.postMessage(await tryOpen(workerData));
}
