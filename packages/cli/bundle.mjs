// Turns the built `dist/bin.js` into one file. Node 20's module loader spent ~0.3 s of wall
// time and ~0.13 CPU-s resolving, reading and linking the ~170 modules a pull loads, before
// any work: the start of every command, and most of a warm start. `level` (a native addon)
// and `piscina` (which starts its own worker script by path) stay outside, as dependencies
// of this package.
//
// The engine looks for its part worker as `./part-worker.js` beside its own code, which in
// the bundle is this folder: that file only hands over to the engine's own, unbundled
// worker. A bundled worker carried the AWS SDK (which workers never load) and cost each
// thread ~0.25 CPU-s more: 2.74 against 2.23 CPU-s for 768 MiB on two workers.
import { writeFile } from 'node:fs/promises';
import { build } from 'esbuild';

await build({
  entryPoints: { bin: 'dist/bin.js' },
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

await writeFile('dist/part-worker.js', "export { default } from '@ferry/engine/part-worker';\n");
