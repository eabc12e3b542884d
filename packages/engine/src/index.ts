// The types the public options and results mention, so a caller that installs only the
// engine can name them without depending on the packages they come from.
export type { Source, SourceOptions } from '@ferry/adapters';
export {
  AbortError,
  FerryError,
  type FerryErrorCode,
  type FerryErrorDetails,
  isFerryError,
  type ManifestDiff,
  type PathFilter,
  type VersionId,
} from '@ferry/manifest';
export { bake } from './bake.js';
export { type DiffVersionsOptions, diffVersions, type VersionDiff } from './diff-versions.js';
export { type GcResult, gc } from './gc.js';
export { type PublishEvent, type PublishOptions, type PublishResult, publish } from './publish.js';
export { defaultSubdir, pull, pullIter } from './pull.js';
export {
  gcRemote,
  listRefs,
  type PublishedRef,
  type RemoteGcOptions,
  type RemoteGcResult,
  type RemoteOptions,
  unpublish,
} from './remote-admin.js';
export { type RemoveFolderResult, removeFolder } from './remove-folder.js';
export { type ResumeOptions, resume } from './resume.js';
export { type CacheStatus, status } from './status.js';
export type {
  PlanSummary,
  ProgressEvent,
  PullEvent,
  PullOptions,
  PullResult,
  VerifyMode,
} from './types.js';
export {
  type VerifyEvent,
  type VerifyOptions,
  type VerifyProblemKind,
  type VerifyReport,
  verify,
} from './verify.js';
