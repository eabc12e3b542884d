export { formatBytes, parseSize } from './byte-size.js';
export type { PathFilter } from './cache-index.js';
export { diff, type ManifestDiff } from './diff.js';
export {
  combinePartDigests,
  createPartHasher,
  DEFAULT_ALGORITHM,
  DEFAULT_PART_SIZE,
  type FileDigest,
  type HashFileOptions,
  hashFile,
  type PartHasher,
  parseDigest,
  partCount,
  partLength,
  partRange,
} from './digest.js';
export {
  AbortError,
  errorDetails,
  FerryError,
  type FerryErrorCode,
  type FerryErrorDetails,
  isFerryError,
  throwIfAborted,
} from './errors.js';
export {
  createManifest,
  encodeManifest,
  isVersionId,
  MAX_FILE_SIZE,
  parseManifest,
  validateRef,
  versionIdOf,
} from './manifest.js';
export { checkCaseCollisions, compareUtf8, isReservedPath, normalizePath } from './paths.js';
export type {
  Digest,
  DigestAlgorithm,
  Entry,
  Manifest,
  PartList,
  Ref,
  VersionId,
} from './types.js';
