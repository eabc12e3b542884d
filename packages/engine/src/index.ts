export { type PublishEvent, type PublishOptions, type PublishResult, publish } from './publish.js';
export { defaultSubdir, pull, pullIter } from './pull.js';
export type {
  PlanSummary,
  PullEvent,
  PullOptions,
  PullResult,
  VerifyMode,
} from './types.js';
