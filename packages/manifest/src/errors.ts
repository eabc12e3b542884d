/**
 * Stable error codes. Callers and the CLI branch on these; their meaning never changes
 * once released. The README lists each with what a user should do.
 */
export type FerryErrorCode =
  | 'FERRY_BAD_PATH'
  | 'FERRY_BAD_REF'
  | 'FERRY_MANIFEST_INVALID'
  | 'FERRY_STORE_LOCKED'
  | 'FERRY_STORE_FAILED'
  | 'FERRY_NOT_FOUND'
  | 'FERRY_ACCESS_DENIED'
  | 'FERRY_THROTTLED'
  | 'FERRY_TRANSIENT'
  | 'FERRY_SOURCE_CHANGED'
  | 'FERRY_BAD_RESPONSE'
  | 'FERRY_RANGE_MISMATCH'
  | 'FERRY_INTEGRITY'
  | 'FERRY_UNSUPPORTED'
  | 'FERRY_BAD_SOURCE'
  | 'FERRY_BAD_CONFIG'
  | 'FERRY_USAGE'
  | 'FERRY_IO'
  | 'FERRY_OVERLAP'
  | 'FERRY_NO_SPACE'
  | 'FERRY_READ_ONLY'
  | 'FERRY_ABORTED';

/**
 * Extra facts about a failure; remote ones carry what identifies the request. A field that
 * is `undefined` counts as absent, so facts that may be unknown can be passed as they are.
 */
export interface FerryErrorDetails {
  /** The underlying error. */
  cause?: unknown;
  /** One sentence telling the user what to do about it. */
  hint?: string | undefined;
  /** HTTP status of the failed response, when there was one. */
  statusCode?: number | undefined;
  /** Object key or local path the failure concerns. */
  key?: string | undefined;
  /** URL of the failed request. */
  url?: string | undefined;
  /** Request id the server gave, for support tickets. */
  requestId?: string | undefined;
  /** The remote's own error code (`NoSuchBucket`, `SlowDown`…), when it gave one. */
  remoteCode?: string | undefined;
  /**
   * Whether trying the same operation again may succeed.
   * @default false
   */
  retryable?: boolean | undefined;
  /** Seconds the server asked to wait before retrying (Retry-After). */
  retryAfterSeconds?: number | undefined;
}

/** The one error class ferry throws; branch on `code`, never on `message`. */
export class FerryError extends Error {
  override readonly name: string = 'FerryError';
  readonly code: FerryErrorCode;
  readonly hint: string | undefined;
  readonly statusCode: number | undefined;
  readonly key: string | undefined;
  readonly url: string | undefined;
  readonly requestId: string | undefined;
  readonly remoteCode: string | undefined;
  readonly retryable: boolean;
  readonly retryAfterSeconds: number | undefined;

  constructor(code: FerryErrorCode, message: string, details: FerryErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.hint = details.hint;
    this.statusCode = details.statusCode;
    this.key = details.key;
    this.url = details.url;
    this.requestId = details.requestId;
    this.remoteCode = details.remoteCode;
    this.retryable = details.retryable ?? false;
    this.retryAfterSeconds = details.retryAfterSeconds;
  }
}

/**
 * Every detail `error` carries, as the details of another FerryError (one that wraps it, or
 * rebuilds it after a thread boundary). Copy details through this rather than field by
 * field: a detail added to FerryErrorDetails does not compile here until it is carried.
 */
export function errorDetails(error: FerryError): FerryErrorDetails {
  const details: { [Field in keyof Required<FerryErrorDetails>]: FerryErrorDetails[Field] } = {
    cause: error.cause,
    hint: error.hint,
    statusCode: error.statusCode,
    key: error.key,
    url: error.url,
    requestId: error.requestId,
    remoteCode: error.remoteCode,
    retryable: error.retryable,
    retryAfterSeconds: error.retryAfterSeconds,
  };
  return details;
}

/** True when `error` is a FerryError, and of `code` when one is given. */
export function isFerryError(error: unknown, code?: FerryErrorCode): error is FerryError {
  return error instanceof FerryError && (code === undefined || error.code === code);
}

/**
 * The rejection for an aborted operation: a FerryError of code `FERRY_ABORTED`, shaped like
 * the platform's (`name` is `AbortError`, `cause` is `signal.reason`), so both
 * `isFerryError(err, 'FERRY_ABORTED')` and `err.name === 'AbortError'` checks work.
 */
export class AbortError extends FerryError {
  override readonly name = 'AbortError';

  constructor(reason?: unknown) {
    super('FERRY_ABORTED', 'The operation was aborted', { cause: reason });
  }
}

/** Throws an AbortError when `signal` is already aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError(signal.reason);
}
