import { request as httpRequest, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { AbortError, throwIfAborted } from '@ferry/manifest';
import type { HttpResponse, RawHttpPool } from './raw-http.js';

export interface SendRequestOptions {
  signal?: AbortSignal | undefined;
  /** Time allowed until the response headers; the body's pace is withRetry's business. */
  timeoutMs: number;
  /** The error a request that got no response headers in time fails with. */
  timeoutError(): Error;
  /** Maps a socket or protocol error to the error callers see. */
  mapError(error: unknown): Error;
  /** Requests go through this pool instead of node:http and node:https (see `RawHttpPool`). */
  raw?: RawHttpPool | undefined;
}

/**
 * Sends a body-less request and resolves once the response headers arrived (the body is
 * left unread). Fails after `timeoutMs` without headers, and with an AbortError
 * (destroying the socket) when `signal` aborts first; removes its listener either way.
 */
export function sendRequest(
  request: RequestOptions,
  options: SendRequestOptions,
): Promise<HttpResponse> {
  const { signal } = options;
  throwIfAborted(signal);
  if (options.raw !== undefined) {
    const https = request.protocol === 'https:';
    return options.raw
      .send(
        {
          method: request.method === 'HEAD' ? 'HEAD' : 'GET',
          protocol: https ? 'https:' : 'http:',
          hostname: request.hostname ?? request.host ?? 'localhost',
          port: Number(request.port || (https ? 443 : 80)),
          path: request.path ?? '/',
          headers: {
            ...(request.headers as Record<string, string> | undefined),
            // As node:http sends a URL's user and password.
            ...(request.auth == null
              ? {}
              : { authorization: `Basic ${Buffer.from(request.auth).toString('base64')}` }),
          },
        },
        options,
      )
      .catch((error: unknown) => {
        throw error instanceof AbortError ? error : options.mapError(error);
      });
  }
  const send = request.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<HttpResponse>((resolve, reject) => {
    const req = send(request);
    const onAbort = () => req.destroy(new AbortError(signal?.reason));
    const timer = setTimeout(() => req.destroy(options.timeoutError()), options.timeoutMs);
    const settle = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    req.once('response', (res) => {
      settle();
      resolve(res);
    });
    req.once('error', (error) => {
      settle();
      reject(error instanceof AbortError ? error : options.mapError(error));
    });
    req.end();
  });
}
