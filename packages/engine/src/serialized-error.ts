import { AbortError, FerryError, type FerryErrorCode, isFerryError } from '@ferry/manifest';

/** A FerryError (or any error) as plain data, to cross a worker-thread boundary intact. */
export interface SerializedError {
  code: FerryErrorCode | 'UNKNOWN';
  message: string;
  hint?: string;
  statusCode?: number;
  key?: string;
  url?: string;
  requestId?: string;
  remoteCode?: string;
  retryable: boolean;
  stack?: string;
}

/** The optional details a FerryError carries across, copied only when set. */
const DETAILS = ['hint', 'statusCode', 'key', 'url', 'requestId', 'remoteCode'] as const;
type Details = Pick<SerializedError, (typeof DETAILS)[number]>;

function definedDetails(from: Details): Details {
  const details: Details = {};
  for (const name of DETAILS) {
    if (from[name] !== undefined) Object.assign(details, { [name]: from[name] });
  }
  return details;
}

export function serializeError(error: unknown): SerializedError {
  if (isFerryError(error)) {
    return {
      code: error.code,
      message: error.message,
      retryable: error.retryable,
      ...definedDetails(error),
      ...(error.stack === undefined ? {} : { stack: error.stack }),
    };
  }
  if (error instanceof Error && error.name === 'AbortError') {
    return { code: 'FERRY_ABORTED', message: error.message, retryable: false };
  }
  const err = error instanceof Error ? error : new Error(String(error));
  const errno = (err as NodeJS.ErrnoException).code;
  return {
    // Local file system failures (ENOSPC, EACCES…) are I/O errors the user can act on.
    code: errno === undefined ? 'UNKNOWN' : 'FERRY_IO',
    message: err.message,
    retryable: false,
    ...(err.stack === undefined ? {} : { stack: err.stack }),
  };
}

/** Rebuilds the error thrown in a worker, keeping its code and details. */
export function deserializeError(error: SerializedError): Error {
  if (error.code === 'FERRY_ABORTED') return new AbortError();
  if (error.code === 'UNKNOWN') {
    // Not a failure ferry anticipated: keep it a plain Error so it reads as a bug.
    const unexpected = new Error(error.message);
    if (error.stack !== undefined) unexpected.stack = error.stack;
    return unexpected;
  }
  const rebuilt = new FerryError(error.code, error.message, {
    retryable: error.retryable,
    ...definedDetails(error),
  });
  if (error.stack !== undefined) rebuilt.stack = error.stack;
  return rebuilt;
}
