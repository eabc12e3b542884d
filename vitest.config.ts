import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    conditions: ['ferry-source'],
    alias: { '#fixtures': fileURLToPath(new URL('./test/fixtures/index.ts', import.meta.url)) },
  },
  ssr: { resolve: { conditions: ['ferry-source'] } },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Most of the suite waits on servers and child processes, not on a core: vitest's default
    // (cores − 1) ran one file at a time on a 2-core machine (210–230 s); two take 170 s.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    // Worker threads run the built part worker; the setup refuses a stale build.
    globalSetup: ['./test/built-worker.setup.ts'],
    env: {
      FERRY_PART_WORKER: fileURLToPath(
        new URL('./packages/engine/dist/part-worker.js', import.meta.url),
      ),
    },
  },
});
