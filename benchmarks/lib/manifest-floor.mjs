// The floor for a warm start over a large manifest: the least any tool must do to confirm a
// pulled folder is still as written, in plain Node on one thread: read and parse the
// manifest, then lstat every file it lists (64 at a time), comparing each size.
//
//   node manifest-floor.mjs MANIFEST_JSON DIR
//
// Exits 1 when a file is missing or has another size, so a broken dataset cannot pass as fast.
import { readFileSync } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';

const [manifestPath, dir] = process.argv.slice(2);
if (manifestPath === undefined || dir === undefined) {
  console.error('usage: manifest-floor.mjs MANIFEST_JSON DIR');
  process.exit(2);
}
const { entries } = JSON.parse(readFileSync(manifestPath, 'utf8'));
let next = 0;
let wrong = 0;
async function lane() {
  while (next < entries.length) {
    const entry = entries[next++];
    const st = await lstat(join(dir, entry.path)).catch(() => undefined);
    if (st?.size !== entry.size) wrong++;
  }
}
await Promise.all(Array.from({ length: 64 }, lane));
console.log(`${entries.length} files, ${wrong} wrong`);
process.exit(wrong === 0 ? 0 : 1);
