import { FerryError } from '@ferry/manifest';

/** What is known about a failed remote request. */
export interface RemoteFailure {
  /** HTTP status. */
  status: number;
  /** Error code from the body (`NoSuchKey`, `SlowDown`, …), when the server sent one. */
  code?: string | undefined;
  /** Key relative to the source root. */
  key?: string | undefined;
  /** Full URL (or `s3://bucket/key`) of the object or request. */
  url?: string | undefined;
  /** Bucket, for S3: a missing bucket is named in the message. */
  bucket?: string | undefined;
  /** Endpoint, for messages about a whole store. */
  endpoint?: string | undefined;
  requestId?: string | undefined;
  /** `Retry-After` header value. */
  retryAfter?: string | undefined;
  cause?: unknown;
  /** The server said it speaks HTTPS on the port a plain-HTTP request reached. */
  wantsTls?: boolean | undefined;
}

const THROTTLE_CODES = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'TooManyRequests',
  'RequestLimitExceeded',
]);
const AUTH_CODES = new Set([
  'AccessDenied',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'InvalidToken',
  'AllAccessDisabled',
  'Forbidden',
  'Unauthorized',
]);

/**
 * Turns a failed response into a FerryError with a stable code, whether it may be retried,
 * and a hint. Shared by the S3 and HTTP adapters so both classify statuses the same way.
 */
export function remoteError(failure: RemoteFailure): FerryError {
  const { status, code, key, url, bucket, endpoint, requestId, cause } = failure;
  const what = url ?? key ?? 'the object';
  const details = {
    statusCode: status,
    key,
    url,
    requestId,
    remoteCode: code,
    cause,
  };
  const suffix = code === undefined ? `HTTP ${status}` : `${code}, HTTP ${status}`;
  if (failure.wantsTls === true) {
    const origin = endpoint ?? originOf(url);
    return new FerryError(
      'FERRY_BAD_SOURCE',
      `${origin ?? 'The server'} speaks HTTPS, not plain HTTP (${suffix})`,
      {
        ...details,
        hint:
          origin === undefined
            ? 'Name the server with https:// in the source URI.'
            : `Use ${origin.replace(/^http:/, 'https:')} in ${bucket === undefined ? 'the source URI' : 'AWS_ENDPOINT_URL (or the source URI)'}.`,
      },
    );
  }
  if (code === 'NoSuchBucket') {
    return new FerryError(
      'FERRY_NOT_FOUND',
      `Bucket "${bucket ?? '?'}" does not exist${endpoint === undefined ? '' : ` at ${endpoint}`} (${suffix})`,
      {
        ...details,
        hint: `Check the bucket name in the source URI, and that AWS_ENDPOINT_URL and AWS_REGION point at the store that holds bucket "${bucket ?? '?'}".`,
      },
    );
  }
  if (status === 404 || code === 'NoSuchKey' || code === 'NotFound') {
    return new FerryError('FERRY_NOT_FOUND', `Not found: ${what} (${suffix})`, {
      ...details,
      hint: 'Check the source URI and the path; a published version lists its files in .ferry/manifests.',
    });
  }
  if (status === 401 || status === 403 || (code !== undefined && AUTH_CODES.has(code))) {
    const s3 = bucket !== undefined;
    return new FerryError('FERRY_ACCESS_DENIED', `Access denied: ${what} (${suffix})`, {
      ...details,
      hint: s3
        ? code === 'InvalidAccessKeyId' || code === 'SignatureDoesNotMatch'
          ? 'The store rejected the credentials: check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) and that they belong to this endpoint.'
          : `Check that the credentials in use (AWS_ACCESS_KEY_ID or AWS_PROFILE) may read bucket "${bucket}" (s3:GetObject, s3:ListBucket).`
        : 'The server refused the request: check that the URL is public or that this client is allowed to read it.',
    });
  }
  if (status === 412) {
    return new FerryError('FERRY_SOURCE_CHANGED', `Changed while reading: ${what} (${suffix})`, {
      ...details,
      hint: 'The object was replaced during the transfer; run the command again to fetch the new version.',
    });
  }
  if (status === 416) {
    return new FerryError(
      'FERRY_RANGE_MISMATCH',
      `Requested range not satisfiable: ${what} (${suffix})`,
      {
        ...details,
        hint: 'The object is shorter than expected, so it probably changed; run the command again.',
      },
    );
  }
  const retryAfterSeconds = parseRetryAfter(failure.retryAfter);
  if (
    status === 429 ||
    (code !== undefined && THROTTLE_CODES.has(code)) ||
    (status === 503 && retryAfterSeconds !== undefined)
  ) {
    return new FerryError('FERRY_THROTTLED', `Throttled by the server: ${what} (${suffix})`, {
      ...details,
      retryable: true,
      retryAfterSeconds,
      hint: 'The store asked ferry to slow down; ferry retries with backoff, and a lower --concurrency avoids it.',
    });
  }
  if (status === 408 || status >= 500) {
    return new FerryError('FERRY_TRANSIENT', `Server error: ${what} (${suffix})`, {
      ...details,
      retryable: true,
      retryAfterSeconds,
      hint: 'A temporary server failure; ferry retries these, and if it persists check the server.',
    });
  }
  return new FerryError('FERRY_BAD_RESPONSE', `Unexpected response: ${what} (${suffix})`, {
    ...details,
    hint: 'The server answered in a way ferry cannot use; check that the source URI points at an S3-compatible store or a plain file server.',
  });
}

function originOf(url: string | undefined): string | undefined {
  if (url === undefined || !url.startsWith('http:')) return undefined;
  return URL.canParse(url) ? new URL(url).origin : undefined;
}

/** Seconds from a `Retry-After` value (delta-seconds or an HTTP date). */
export function parseRetryAfter(value: string | undefined): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const date = Date.parse(value);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, Math.ceil((date - Date.now()) / 1000));
}
