// The floor for a warm start over a large manifest: the least any tool must do to confirm a
// pulled folder is still as written, in plain Node on one thread: read and parse the
// manifest, then lstat every file it lists, comparing each size. lstatSync: on a local disk
// the direct call costs less than half of 64 in flight through the thread pool.
//
//   node manifest-floor.mjs MANIFEST_JSON DIR
//
// Exits 1 when a file is missing or has another size, so a broken dataset cannot pass as fast.
import { lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const [manifestPath, dir] = process.argv.slice(2);
if (manifestPath === undefined || dir === undefined) {
  console.error('usage: manifest-floor.mjs MANIFEST_JSON DIR');
  process.exit(2);
}
const { entries } = JSON.parse(readFileSync(manifestPath, 'utf8'));
let wrong = 0;
for (const entry of entries) {
  if (lstatSync(join(dir, entry.path), { throwIfNoEntry: false })?.size !== entry.size) wrong++;
}
console.log(`${entries.length} files, ${wrong} wrong`);
process.exit(wrong === 0 ? 0 : 1);
