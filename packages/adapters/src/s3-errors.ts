import { AbortError, FerryError, isFerryError } from '@ferry/manifest';
import { networkError } from './network-error.js';
import { remoteError } from './remote-error.js';

/** What a failed S3 call was about, for the error's message and fields. */
export interface S3ErrorContext {
  /** Key relative to the source root; `undefined` for calls on the whole prefix (a listing). */
  key: string | undefined;
  /** `s3://bucket/prefix/key`, or the source's URI for calls on the whole prefix. */
  url: string;
  bucket: string;
  /** The endpoint messages name. */
  endpoint: string;
  /** The call's signal: a failure after it aborted is the abort. */
  signal: AbortSignal | undefined;
}

/**
 * Maps whatever an S3 call threw (an SDK service exception, a credential or region
 * problem found before any request, a socket error) to a FerryError; FerryErrors and
 * AbortErrors pass through. Responses go through `remoteError` like the HTTP source's, so
 * both classify statuses alike.
 */
export function s3Error(error: unknown, context: S3ErrorContext): Error {
  if (isFerryError(error) || error instanceof AbortError) return error;
  const { key, url, bucket, endpoint, signal } = context;
  if (signal?.aborted) return new AbortError(signal.reason);
  const status = sdkStatus(error);
  if (status !== undefined && status > 0) {
    return remoteError({
      status,
      code: sdkField(error, 'Code') ?? sdkField(error, 'name'),
      key,
      url,
      bucket,
      endpoint,
      requestId: sdkRequestId(error),
      retryAfter: sdkRetryAfter(error),
      cause: error,
    });
  }
  const name = sdkField(error, 'name');
  const message = sdkField(error, 'message') ?? '';
  // Configuration problems found before any request: not worth retrying.
  if (name === 'CredentialsProviderError' || /credentials/i.test(message)) {
    return new FerryError(
      'FERRY_ACCESS_DENIED',
      `No usable AWS credentials for ${url}: ${message}`,
      {
        key,
        url,
        cause: error,
        hint: 'Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run where an instance role is available.',
      },
    );
  }
  if (/region is missing|region not accepted/i.test(message)) {
    return new FerryError('FERRY_BAD_CONFIG', `No AWS region for ${url}`, {
      key,
      url,
      cause: error,
      hint: 'Set AWS_REGION (or a region in the AWS profile).',
    });
  }
  return networkError(error, { endpoint, key, url, endpointVariable: 'AWS_ENDPOINT_URL' });
}

function sdkField(error: unknown, field: string): string | undefined {
  if (typeof error !== 'object' || error === null || !(field in error)) return undefined;
  const value: unknown = (error as Record<string, unknown>)[field];
  return typeof value === 'string' ? value : undefined;
}

function sdkMetadata(error: unknown): Record<string, unknown> | undefined {
  if (typeof error !== 'object' || error === null || !('$metadata' in error)) return undefined;
  const metadata: unknown = error.$metadata;
  return typeof metadata === 'object' && metadata !== null
    ? (metadata as Record<string, unknown>)
    : undefined;
}

function sdkStatus(error: unknown): number | undefined {
  const status = sdkMetadata(error)?.httpStatusCode;
  return typeof status === 'number' ? status : undefined;
}

function sdkRequestId(error: unknown): string | undefined {
  const id = sdkMetadata(error)?.requestId;
  return typeof id === 'string' ? id : undefined;
}

function sdkRetryAfter(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null || !('$response' in error)) return undefined;
  const response: unknown = error.$response;
  if (typeof response !== 'object' || response === null || !('headers' in response))
    return undefined;
  const headers: unknown = response.headers;
  if (typeof headers !== 'object' || headers === null) return undefined;
  const value: unknown = (headers as Record<string, unknown>)['retry-after'];
  return typeof value === 'string' ? value : undefined;
}
