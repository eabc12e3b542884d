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
    // Worker threads run the built part worker; the setup refuses a stale build.
    globalSetup: ['./test/built-worker.setup.ts'],
    env: {
      FERRY_PART_WORKER: fileURLToPath(
        new URL('./packages/engine/dist/part-worker.js', import.meta.url),
      ),
    },
  },
});
