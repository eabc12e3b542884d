/**
 * `@ferry/manifest/store`: what a cache root records in LevelDB (versions, refs, trees, the
 * stat index, and tables other packages keep there). Its own entry point, so that the format, digests, diff, errors and
 * paths of `@ferry/manifest` load no native module: `@ferry/adapters` imports only those.
 */
export { CacheIndex, type StatRecord, type TreeState } from './cache-index.js';
export type { Table, TableOp } from './table.js';
