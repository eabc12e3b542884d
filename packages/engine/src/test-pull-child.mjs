// A pull in a process of its own, for tests that kill it: prints each progress event as
// a JSON line so the parent can pick its moment. Arguments: source, root, subdir, ref.
// JavaScript on the built package (test/built-worker.setup.ts rebuilds a stale one): tsx
// and compiling the engine's sources cost this child most of a CPU-second.
import { pull } from '@ferry/engine';

const [source, root, subdir, ref] = process.argv.slice(2);
if (source === undefined || root === undefined || subdir === undefined) {
  throw new Error('usage: test-pull-child.mjs <source> <root> <subdir> [ref]');
}
await pull({
  source,
  root,
  subdir,
  concurrency: 4,
  ...(ref === undefined ? {} : { ref }),
  onEvent: (event) => {
    if (event.type === 'progress' || event.type === 'file-done')
      process.stdout.write(`${JSON.stringify(event)}\n`);
  },
});
