import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { configDefaults, defineConfig } from 'vitest/config';

/**
 * Files that need a module graph and a process of their own: the AWS SDK warns once per
 * module instance (s3-sdk-warning), and the others set process.env for the code under test.
 */
const isolated = [
  'packages/adapters/src/s3-sdk-warning.test.ts',
  'packages/adapters/src/proxy-agent.test.ts',
  'packages/adapters/src/s3-source.test.ts',
];

export default defineConfig({
  resolve: {
    conditions: ['ferry-source'],
    alias: { '#fixtures': fileURLToPath(new URL('./test/fixtures/index.ts', import.meta.url)) },
  },
  ssr: { resolve: { conditions: ['ferry-source'] } },
  test: {
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
    projects: [
      {
        extends: true,
        test: {
          name: 'shared',
          include: ['packages/*/src/**/*.test.ts', 'test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, ...isolated],
          // One module graph per worker: evaluating the engine, the AWS SDK and the fixtures
          // again for each file took 68 s of import time (24 s shared) and 55 CPU-s.
          isolate: false,
        },
      },
      { extends: true, test: { name: 'isolated', include: isolated } },
    ],
  },
});
