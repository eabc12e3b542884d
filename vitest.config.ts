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
  },
});
