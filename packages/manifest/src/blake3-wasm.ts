// hash-wasm's BLAKE3, as an ES module that `createRawHasher` imports on first use. A named
// re-export, not `import('hash-wasm')` itself: the CLI's bundle keeps it in a chunk of its
// own, and a split bundle gives a dynamic import of a CommonJS build nothing but a default
// export.
export { createBLAKE3 } from 'hash-wasm';
