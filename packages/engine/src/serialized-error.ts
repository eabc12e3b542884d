import {
  AbortError,
  errorDetails,
  FerryError,
  type FerryErrorCode,
  type FerryErrorDetails,
  isFerryError,
} from '@ferry/manifest';

/** A FerryError (or any error) as plain data, to cross a worker-thread boundary intact. */
export interface SerializedError extends Omit<FerryErrorDetails, 'cause'> {
  code: FerryErrorCode | 'UNKNOWN';
  message: string;
  retryable: boolean;
  stack?: string;
  /** A FerryError's cause, serialised the same way: an SDK error as it is may not clone. */
  cause?: SerializedError;
}

export function serializeError(error: unknown): SerializedError {
  if (isFerryError(error)) {
    const { cause, ...details } = errorDetails(error);
    return {
      ...details,
      code: error.code,
      message: error.message,
      retryable: error.retryable,
      ...(cause === undefined ? {} : { cause: serializeCause(cause) }),
      ...(error.stack === undefined ? {} : { stack: error.stack }),
    };
  }
  if (error instanceof Error && error.name === 'AbortError') {
    return { code: 'FERRY_ABORTED', message: error.message, retryable: false };
  }
  const err = error instanceof Error ? error : new Error(String(error));
  // Local file system failures (ENOSPC, EACCES…) are I/O errors the user can act on.
  return plain(err, (err as NodeJS.ErrnoException).code === undefined ? 'UNKNOWN' : 'FERRY_IO');
}

/**
 * A FerryError's cause stays a FerryError, or becomes a plain error with its message and
 * stack: the socket error under a FERRY_TRANSIENT is not an I/O error of the user's.
 */
function serializeCause(cause: unknown): SerializedError {
  if (isFerryError(cause)) return serializeError(cause);
  return plain(cause instanceof Error ? cause : new Error(String(cause)), 'UNKNOWN');
}

function plain(err: Error, code: 'UNKNOWN' | 'FERRY_IO'): SerializedError {
  return {
    code,
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
  const { code: _code, message: _message, stack: _stack, cause, ...details } = error;
  const rebuilt = new FerryError(error.code, error.message, {
    ...details,
    ...(cause === undefined ? {} : { cause: deserializeError(cause) }),
  });
  if (error.stack !== undefined) rebuilt.stack = error.stack;
  return rebuilt;
}
