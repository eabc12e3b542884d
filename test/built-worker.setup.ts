import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/** The newest mtime of the TypeScript sources (not tests) under `dir`. */
function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) {
      newest = Math.max(newest, statSync(path).mtimeMs);
    }
  }
  return newest;
}

/**
 * Tests run the packages from their TypeScript sources, but the engine's worker threads run
 * the built worker (FERRY_PART_WORKER, set in vitest.config.ts), and the store's lock tests
 * a child on the built @ferry/manifest: a build older than the sources would test
 * yesterday's code, so it is rebuilt first (`pnpm test` builds anyway; this covers
 * `pnpm vitest run <file>` after an edit).
 */
export default function buildWorkerIfStale(): void {
  const worker = join(root, 'packages', 'engine', 'dist', 'part-worker.js');
  const built = statSync(worker, { throwIfNoEntry: false })?.mtimeMs;
  const stale = ['engine', 'manifest', 'adapters'].some(
    (name) => built === undefined || newestSource(join(root, 'packages', name, 'src')) > built,
  );
  if (!stale) return;
  execFileSync(
    join(root, 'node_modules', '.bin', 'turbo'),
    ['run', 'build', '--output-logs=errors-only'],
    {
      cwd: root,
      stdio: 'inherit',
    },
  );
}
