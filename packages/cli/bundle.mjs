// Turns the built `dist/bin.js` into one file, and the engine's part worker into another
// beside it (the engine finds its worker as `./part-worker.js` next to its own code). Node
// 20's module loader spent ~0.3 s of wall time and ~0.13 CPU-s resolving, reading and
// linking the ~170 modules a pull loads, before any work: the start of every command, and
// most of a warm start. `level` (a native addon) and `piscina` (which starts its own
// worker script by path) stay outside, as dependencies of this package.
import { build } from 'esbuild';

await build({
  entryPoints: {
    bin: 'dist/bin.js',
    'part-worker': '../engine/dist/part-worker.js',
  },
  outdir: 'dist',
  allowOverwrite: true,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['level', 'classic-level', 'piscina'],
  // The AWS SDK is CommonJS: its require() calls need a require in an ES module.
  banner: {
    js: "import { createRequire as __ferryRequire } from 'node:module';\nconst require = __ferryRequire(import.meta.url);",
  },
  // Composed with the packages' own maps: a stack trace leads back to the TypeScript.
  sourcemap: true,
  logLevel: 'warning',
});
