// Turns the built `dist/bin.js` into a bundle. Node 20's module loader spent ~0.3 s of wall
// time and ~0.13 CPU-s resolving, reading and linking the ~170 modules a pull loads, before
// any work: the start of every command, and most of a warm start. `level` (a native addon)
// and `piscina` (which starts its own worker script by path) stay outside, as dependencies
// of this package.
//
// What the code imports only when it needs it (the AWS SDK, BLAKE3, the inline part runner)
// goes to `dist/chunks/`: the SDK is two thirds of the bundle's bytes, which every command
// used to parse, S3 or not. A split bundle gives a dynamic import of a CommonJS package only
// its default export (esbuild#3245), so such imports go through a small ES module of named
// re-exports (`s3-sdk.ts`, `blake3-wasm.ts`); the build fails if one slips through.
//
// The engine looks for its part worker as `./part-worker.js` beside its own code, which in
// the bundle is this folder: that file only hands over to the engine's own, unbundled
// worker. A bundled worker carried the AWS SDK (which workers never load) and cost each
// thread ~0.25 CPU-s more: 2.74 against 2.23 CPU-s for 768 MiB on two workers.
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { build } from 'esbuild';

// Chunk names carry a hash: a rebuild leaves none of the last build's behind.
await rm('dist/chunks', { recursive: true, force: true });
await build({
  entryPoints: { bin: 'dist/bin.js' },
  outdir: 'dist',
  allowOverwrite: true,
  bundle: true,
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
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

for (const chunk of (await readdir('dist/chunks')).filter((f) => f.endsWith('.js'))) {
  if (/^export default require_\w+\(\);$/m.test(await readFile(`dist/chunks/${chunk}`, 'utf8'))) {
    throw new Error(
      `dist/chunks/${chunk} holds a CommonJS module that is imported dynamically: its named exports are lost in a split bundle. Import it through an ES module that re-exports the names (see s3-sdk.ts).`,
    );
  }
}

await writeFile('dist/part-worker.js', "export { default } from '@ferry/engine/part-worker';\n");
