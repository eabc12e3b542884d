/**
 * `@ferry/manifest/store`: what a cache root records in LevelDB (versions, refs, trees, the
 * stat index, journals). Its own entry point, so that the format, digests, diff, errors and
 * paths of `@ferry/manifest` load no native module: `@ferry/adapters` imports only those.
 */
export {
  ManifestStore,
  type PartJournal,
  type PendingPull,
  type StatRecord,
  type TreeState,
} from './manifest-store.js';
