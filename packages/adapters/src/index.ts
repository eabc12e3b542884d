export { CheckedBody, type CheckedBodyOptions } from './checked-body.js';
export { HttpSource } from './http-source.js';
export { LocalSource } from './local-source.js';
export { openSource } from './open-source.js';
export { hasUriScheme, type ParsedSourceUri, parseSourceUri } from './parse-source-uri.js';
export { type ChunkSink, type RangeReadOptions, readRange } from './read-range.js';
export type { RetryInfo, RetryOptions } from './retry-policy.js';
export type { S3ReadGrant } from './s3-direct-get.js';
export { type S3Location, S3Source } from './s3-source.js';
export type {
  Handoff,
  ObjectInfo,
  OpenedRange,
  ReadOptions,
  ReadTextOptions,
  SignalOptions,
  Source,
  SourceCapabilities,
  SourceMetrics,
  SourceOptions,
  WriteOptions,
} from './source.js';
export { withRetry } from './with-retry.js';
