import type { Agent as HttpAgent, RequestOptions } from 'node:http';
import { Readable } from 'node:stream';
import { urlToHttpOptions } from 'node:url';
import { FerryError, throwIfAborted } from '@ferry/manifest';
import { checkedRead } from './checked-body.js';
import {
  checkEtag,
  checkRangeRequest,
  checkRangeResponse,
  contentLength,
  header,
  httpOpenedRange,
  type RangeRequest,
  rangeHeader,
  rangeResponse,
  readFailure,
} from './http-response.js';
import { networkError } from './network-error.js';
import { sourceAgents } from './proxy-agent.js';
import type { HttpResponse, RawHttpPool } from './raw-http.js';
import { readAllText } from './read-all-text.js';
import { remoteError } from './remote-error.js';
import { sendRequest } from './send-request.js';
import type {
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
import { checkKey } from './source-key.js';

const DEFAULT_MAX_SOCKETS = 64;
const DEFAULT_TIMEOUT_MS = 30_000;

/**
 * A read-only source over HTTP(S): keys are appended to the base URL, percent-encoded per
 * segment. Ranged reads must come back `206` with the matching `Content-Range` and exactly
 * that many bytes; a `200` is accepted only when the range covers the whole object.
 * `ifMatch` is sent as `If-Match` (a strong ETag) and also compared with the response's
 * ETag, for servers that ignore the header. HTTP cannot list or write.
 *
 * Uses `node:http`/`node:https` with a keep-alive agent of `maxSockets` sockets: the
 * engine runs many ranges in parallel, and the built-in fetch's pool cannot be sized
 * without the `undici` package.
 */
export class HttpSource implements Source {
  readonly uri: string;
  readonly capabilities: SourceCapabilities = { list: false, rangeReads: true, write: false };
  readonly metrics: SourceMetrics = { requests: 0, bytesRead: 0 };
  readonly #base: URL;
  /** What every request shares (protocol, host, port, credentials), built once. */
  readonly #requestBase: RequestOptions;
  /** `origin` + the base path: a key's URL is this plus its escaped segments. */
  readonly #prefix: string;
  readonly #agent: HttpAgent;
  readonly #raw: RawHttpPool | undefined;
  readonly #timeoutMs: number;
  readonly #origin: string;

  /** `baseUrl` must end in `/` (as `parseSourceUri` gives it). */
  constructor(baseUrl: string, options: SourceOptions = {}) {
    this.#base = new URL(baseUrl);
    this.uri = this.#base.href;
    this.#origin = this.#base.origin;
    this.#prefix = `${this.#origin}${this.#base.pathname}`;
    this.#requestBase = urlToHttpOptions(this.#base);
    const agentOptions = {
      keepAlive: true,
      maxSockets: options.maxSockets ?? DEFAULT_MAX_SOCKETS,
      readBufferBytes: options.readBufferBytes,
    };
    const agents = sourceAgents(this.#base, agentOptions);
    this.#agent = this.#base.protocol === 'https:' ? agents.https : agents.http;
    this.#raw = agents.raw;
    this.#timeoutMs = options.requestTimeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  // biome-ignore lint/correctness/useYield: listing is unsupported; the iterator only throws.
  async *list(): AsyncIterable<ObjectInfo> {
    throw new FerryError('FERRY_UNSUPPORTED', `Cannot list ${this.uri}: HTTP has no listing`, {
      url: this.uri,
      hint: 'Publish the folder with `ferry publish` so it carries a manifest, or use an s3:// or local source.',
    });
  }

  async stat(key: string, options: SignalOptions = {}): Promise<ObjectInfo> {
    const normal = checkKey(key);
    const url = this.#url(normal);
    const res = await this.#send('HEAD', url, normal, {}, options.signal);
    res.resume();
    if (res.statusCode !== 200) throw await this.#failure(res, normal, url, options.signal);
    const size = contentLength(res);
    if (size === undefined) {
      throw new FerryError(
        'FERRY_BAD_RESPONSE',
        `No Content-Length in the HEAD response for ${url}`,
        {
          key: normal,
          url,
          statusCode: res.statusCode,
          hint: 'The server must report object sizes; serve the files with a static file server (nginx, S3 website, CDN).',
        },
      );
    }
    return info(normal, size, res);
  }

  read(key: string, options: ReadOptions = {}): Promise<Readable> {
    return checkedRead(this, key, options);
  }

  async openRange(key: string, options: ReadOptions = {}): Promise<OpenedRange> {
    const { signal, ifMatch } = options;
    const normal = checkKey(key);
    const url = this.#url(normal);
    const start = options.start ?? 0;
    const request: RangeRequest = { key: normal, url, start, end: options.end, ifMatch };
    checkRangeRequest(request);
    const headers: Record<string, string> = {};
    if (ifMatch !== undefined) headers['if-match'] = ifMatch;
    if (request.end === start) {
      // Nothing to transfer, but the object must exist and still match.
      const res = await this.#send('HEAD', url, normal, headers, signal);
      res.resume();
      if (res.statusCode !== 200) throw await this.#failure(res, normal, url, signal);
      checkEtag(request, header(res, 'etag'), res.statusCode);
      return this.#opened(Readable.from([]), 0, normal, url, res.statusCode);
    }
    const range = rangeHeader(start, request.end);
    if (range !== undefined) headers.range = range;
    const res = await this.#send('GET', url, normal, headers, signal);
    try {
      if (res.statusCode !== 200 && res.statusCode !== 206) {
        throw await this.#failure(res, normal, url, signal);
      }
      const length = checkRangeResponse(request, rangeResponse(res));
      return this.#opened(res, length, normal, url, res.statusCode);
    } catch (error) {
      res.destroy();
      throw error;
    }
  }

  async readText(key: string, options: ReadTextOptions = {}): Promise<string> {
    return readAllText(await this.read(key, options), key, options.maxBytes);
  }

  async writeText(key: string, _text?: string, _options?: SignalOptions): Promise<void> {
    throw this.#readOnly(key);
  }

  async write(
    key: string,
    _body?: Readable | Uint8Array,
    _options?: WriteOptions,
  ): Promise<{ etag?: string }> {
    throw this.#readOnly(key);
  }

  async delete(key: string, _options?: SignalOptions): Promise<void> {
    throw this.#readOnly(key);
  }

  async copy(_from: string, to: string, _options?: SignalOptions): Promise<void> {
    throw this.#readOnly(to);
  }

  async close(): Promise<void> {
    this.#agent.destroy();
    this.#raw?.destroy();
  }

  /**
   * The key's URL, by concatenation: its segments escaped under the base path (which ends
   * in `/`) are what `new URL(key, base)` gives, without parsing a URL twice a request.
   */
  #url(key: string): string {
    return `${this.#prefix}${key.split('/').map(encodeURIComponent).join('/')}`;
  }

  #readOnly(key: string): FerryError {
    return new FerryError(
      'FERRY_UNSUPPORTED',
      `Cannot write to ${this.uri}: HTTP sources are read-only`,
      {
        key,
        url: this.uri,
        hint: 'Publish to an s3:// or local destination instead.',
      },
    );
  }

  /** Resolves with the response once its headers arrived; the body is left unread. */
  #send(
    method: 'GET' | 'HEAD',
    url: string,
    key: string,
    headers: Record<string, string>,
    signal: AbortSignal | undefined,
  ): Promise<HttpResponse> {
    throwIfAborted(signal);
    this.metrics.requests += 1;
    return sendRequest(
      {
        ...this.#requestBase,
        path: url.slice(this.#origin.length),
        method,
        headers,
        agent: this.#agent,
      },
      {
        raw: this.#raw,
        signal,
        timeoutMs: this.#timeoutMs,
        timeoutError: () =>
          new FerryError(
            'FERRY_TRANSIENT',
            `No response from ${this.#origin} within ${this.#timeoutMs} ms: ${url}`,
            {
              key,
              url,
              retryable: true,
              hint: 'The server is slow or unreachable; ferry retries, and requestTimeoutMs raises the limit.',
            },
          ),
        mapError: (error: unknown) => networkError(error, { endpoint: this.#origin, key, url }),
      },
    );
  }

  #opened(
    body: Readable,
    length: number | undefined,
    key: string,
    url: string,
    statusCode: number | undefined,
  ): OpenedRange {
    return httpOpenedRange(body, length, { key, url, statusCode }, (error: unknown) =>
      networkError(error, { endpoint: this.#origin, key, url }),
    );
  }

  async #failure(
    res: HttpResponse,
    key: string,
    url: string,
    signal: AbortSignal | undefined,
  ): Promise<FerryError> {
    return remoteError({ ...(await readFailure(res, signal)), key, url });
  }
}

function info(key: string, size: number, res: HttpResponse): ObjectInfo {
  const result: ObjectInfo = { key, size };
  const etag = res.headers.etag;
  // Weak ETags cannot pin byte ranges, so they are not reported.
  if (etag !== undefined && !etag.startsWith('W/')) result.etag = etag;
  const modified = res.headers['last-modified'];
  if (modified !== undefined && !Number.isNaN(Date.parse(modified)))
    result.lastModified = new Date(modified);
  return result;
}
