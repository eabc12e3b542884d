import type { Readable } from 'node:stream';
import { AbortError, FerryError } from '@ferry/manifest';
import { type HttpResponse, RawResponse } from './raw-http.js';
import type { RemoteFailure } from './remote-error.js';
import type { OpenedRange } from './source.js';

/**
 * The rules every ranged read is held to, in one place for the S3 and HTTP sources (and,
 * where they apply to files, the local one): the range a caller may ask for, the `Range`
 * header that asks for it, the ETag pin, the status and `Content-Range` a response must
 * carry, the errors of a short or long body, and a bounded read of an error body. Each
 * runs once per response, never per chunk.
 */

/** One ranged read: what was asked for, and of which object. */
export interface RangeRequest {
  /** Key relative to the source root. */
  key: string;
  /** Where the object is, for messages: its URL, `s3://bucket/key` or a file path. */
  url: string;
  /** First byte. */
  start: number;
  /** One past the last byte; `undefined` reads to the end. */
  end: number | undefined;
  /** ETag the object must still have. */
  ifMatch: string | undefined;
}

/** The headers of a GET response that say which bytes its body holds. */
export interface RangeResponse {
  statusCode: number | undefined;
  etag: string | undefined;
  contentRange: string | undefined;
  contentLength: number | undefined;
}

/** Error bodies are read only this far: S3's `<Code>` and `<RequestId>` come first. */
const MAX_ERROR_BODY = 16 * 1024;
const CONTENT_RANGE = /^bytes (\d+)-(\d+)\/(\d+|\*)$/;
const NO_RANGES_HINT =
  'The server does not serve byte ranges; use one with HTTP Range support (S3, nginx, a CDN).';
const WRONG_RANGE_HINT =
  'The object is shorter than the range asked for (so it probably changed), or the server mishandles ranges; run the command again.';

/**
 * Refuses a range no object can satisfy (`start < 0` or `end < start`) before any request:
 * ranges are `[start, end)`, so this is the caller's bug, not the server's.
 */
export function checkRangeRequest(request: RangeRequest): void {
  const { start, end, key, url } = request;
  if (start >= 0 && (end === undefined || end >= start)) return;
  throw new FerryError('FERRY_RANGE_MISMATCH', `Invalid range [${start}, ${end}) for ${url}`, {
    key,
    url,
    hint: 'This is a bug in the caller: ranges are [start, end) with 0 <= start <= end.',
  });
}

/**
 * The `Range` header of a read, `undefined` for a whole object. Always an explicit first
 * byte: s3rver answers suffix ranges (`bytes=-N`) wrongly.
 */
export function rangeHeader(start: number, end: number | undefined): string | undefined {
  if (start === 0 && end === undefined) return undefined;
  return `bytes=${start}-${end === undefined ? '' : end - 1}`;
}

/**
 * Fails with FERRY_SOURCE_CHANGED when the object no longer has the pinned ETag. Compared
 * here even when `If-Match` was sent: s3rver and some S3-compatible stores ignore it.
 */
export function checkEtag(
  request: RangeRequest,
  etag: string | undefined,
  statusCode?: number,
): void {
  const { ifMatch, key, url } = request;
  if (ifMatch === undefined || etag === undefined || etag === ifMatch) return;
  throw new FerryError(
    'FERRY_SOURCE_CHANGED',
    `Changed while reading: ${url} (ETag ${etag}, expected ${ifMatch})`,
    {
      key,
      url,
      statusCode,
      hint: 'The object was replaced during the transfer; run the command again to fetch the new version.',
    },
  );
}

/**
 * Checks a successful (2xx) GET against its request and returns the exact body length to
 * expect (`undefined` when a whole-object response does not say). The ETag must be the
 * pinned one; a ranged read must come back `206` with the matching `Content-Range` and
 * `Content-Length`, or `200` when the range covers the whole object (a server that ignores
 * `Range` then sent exactly what was asked for).
 */
export function checkRangeResponse(
  request: RangeRequest,
  response: RangeResponse,
): number | undefined {
  const { start, end } = request;
  const { statusCode, contentRange, contentLength } = response;
  checkEtag(request, response.etag, statusCode);
  if (statusCode !== 206) {
    const ranged = start > 0 || end !== undefined;
    if (!ranged || (start === 0 && contentLength !== undefined && end === contentLength)) {
      return contentLength;
    }
    throw rangeMismatch(
      request,
      statusCode,
      `asked for bytes [${start}, ${end ?? 'end'}) and got the whole object (${statusCode})`,
      NO_RANGES_HINT,
    );
  }
  const match = CONTENT_RANGE.exec(contentRange ?? '');
  const first = Number(match?.[1]);
  const last = Number(match?.[2]);
  const total = match?.[3] === '*' ? undefined : Number(match?.[3]);
  const wantLast = end === undefined ? (total === undefined ? last : total - 1) : end - 1;
  if (match === null || first !== start || last !== wantLast) {
    throw rangeMismatch(
      request,
      statusCode,
      `asked for bytes [${start}, ${end ?? 'end'}) and got Content-Range "${contentRange ?? ''}"`,
      contentRange === undefined ? NO_RANGES_HINT : WRONG_RANGE_HINT,
    );
  }
  const length = last - first + 1;
  if (contentLength !== undefined && contentLength !== length) {
    throw rangeMismatch(
      request,
      statusCode,
      `Content-Length ${contentLength} does not match Content-Range ${first}-${last}`,
      WRONG_RANGE_HINT,
    );
  }
  return length;
}

/** The headers `checkRangeResponse` judges, from a response. */
export function rangeResponse(res: HttpResponse): RangeResponse {
  return {
    statusCode: res.statusCode,
    etag: header(res, 'etag'),
    contentRange: header(res, 'content-range'),
    contentLength: contentLength(res),
  };
}

/**
 * An HTTP(S) response (S3 or a plain origin) as a range to read: a short body is a cut
 * connection, retried from the last byte; a long one is a broken server; a body read by
 * ferry's own client can lend its chunks.
 */
export function httpOpenedRange(
  body: Readable,
  length: number | undefined,
  response: { key: string; url: string; statusCode: number | undefined },
  mapError: (error: unknown) => Error,
): OpenedRange {
  const { key, url, statusCode } = response;
  return {
    body,
    length,
    mapError,
    ...(body instanceof RawResponse ? { lend: () => body.lend() } : {}),
    shortError: (received, total) =>
      new FerryError(
        'FERRY_TRANSIENT',
        `The body of ${url} ended after ${received} of ${total} bytes`,
        {
          key,
          url,
          statusCode,
          retryable: true,
          hint: 'The connection was cut mid-body; ferry retries from the last byte received.',
        },
      ),
    longError: (total) =>
      new FerryError(
        'FERRY_BAD_RESPONSE',
        `The body of ${url} is longer than the ${total} bytes announced`,
        {
          key,
          url,
          statusCode,
          hint: 'The server sent more bytes than it announced; check the server or any proxy in front of it.',
        },
      ),
  };
}

/** What a failed response says about itself, for `remoteError`. */
export type ResponseFailure = Pick<
  RemoteFailure,
  'status' | 'code' | 'requestId' | 'retryAfter' | 'wantsTls'
>;

/**
 * What TLS servers answer a plain-HTTP request with: nginx's "The plain HTTP request was
 * sent to HTTPS port" and Go's (MinIO, Caddy) "Client sent an HTTP request to an HTTPS
 * server".
 */
const WANTS_TLS_TEXT = /plain HTTP request was sent to HTTPS port|HTTP request to an HTTPS server/i;

/**
 * Reads at most MAX_ERROR_BODY characters of a failed response for S3's `<Code>` and
 * `<RequestId>`, then releases the socket (at once if `signal` aborts: then it rejects
 * with an AbortError). A body that breaks off is no error: the status alone still
 * classifies the failure.
 */
export async function readFailure(
  res: HttpResponse,
  signal: AbortSignal | undefined,
): Promise<ResponseFailure> {
  const onAbort = () => res.destroy();
  signal?.addEventListener('abort', onAbort, { once: true });
  let text = '';
  try {
    for await (const chunk of res) {
      text += String(chunk);
      if (text.length > MAX_ERROR_BODY) break;
    }
  } catch {
    // Classified by its status below.
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  res.destroy();
  if (signal?.aborted) throw new AbortError(signal.reason);
  return {
    status: res.statusCode ?? 0,
    code: /<Code>([^<]+)<\/Code>/.exec(text)?.[1],
    requestId:
      header(res, 'x-amz-request-id') ??
      header(res, 'x-request-id') ??
      /<RequestId>([^<]+)<\/RequestId>/.exec(text)?.[1],
    retryAfter: header(res, 'retry-after'),
    ...(res.statusCode === 400 && WANTS_TLS_TEXT.test(text) ? { wantsTls: true } : {}),
  };
}

/** A response header's (first) value. */
export function header(res: HttpResponse, name: string): string | undefined {
  const value = res.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** `Content-Length` as a number, `undefined` when absent or malformed. */
export function contentLength(res: HttpResponse): number | undefined {
  const value = res.headers['content-length'];
  return value === undefined || !/^\d+$/.test(value) ? undefined : Number(value);
}

function rangeMismatch(
  request: RangeRequest,
  statusCode: number | undefined,
  detail: string,
  hint: string,
): FerryError {
  const { key, url } = request;
  return new FerryError('FERRY_RANGE_MISMATCH', `Range not honoured for ${url}: ${detail}`, {
    key,
    url,
    statusCode,
    hint,
  });
}
