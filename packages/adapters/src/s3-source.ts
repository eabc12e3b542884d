import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { AbortError, compareUtf8, FerryError, isFerryError, throwIfAborted } from '@ferry/manifest';
import { checkedRead } from './checked-body.js';
import {
  checkEtag,
  checkRangeRequest,
  checkRangeResponse,
  httpBodyErrors,
  type RangeRequest,
  type RangeResponse,
  rangeHeader,
  rangeResponse,
  readFailure,
} from './http-response.js';
import { networkError } from './network-error.js';
import { sourceAgents } from './proxy-agent.js';
import { readAllText } from './read-all-text.js';
import { remoteError } from './remote-error.js';
import { type S3Agents, S3DirectGet } from './s3-direct-get.js';
import type {
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
import { checkKey, checkListedKey, checkPrefix } from './source-key.js';

const DEFAULT_MAX_SOCKETS = 64;
const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_PAGE_SIZE = 1000;
/** S3's smallest part size; parts of `write()` grow past it only for objects over 50 GB. */
const MIN_PART_SIZE = 8 * 1024 * 1024;
const MAX_PARTS = 10_000;
/** Parts uploaded at once; a multipart `write()` buffers at most this × the part size. */
const UPLOAD_QUEUE = 4;
/** S3's answers to a request signed for the wrong region; the SDK re-sends those. */
const REGION_REDIRECTS = new Set(['PermanentRedirect', 'AuthorizationHeaderMalformed']);

type S3Sdk = typeof import('@aws-sdk/client-s3');
let sdk: Promise<S3Sdk> | undefined;

/**
 * The AWS SDK takes a few hundred milliseconds to load: it is loaded on the first S3
 * request, so `--help`, HTTP and local sources, and warm starts that fail early never pay.
 */
function loadSdk(): Promise<S3Sdk> {
  sdk ??= import('@aws-sdk/client-s3');
  return sdk;
}

const SDK_NODE_WARNING = 'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED';

/**
 * A client, without the SDK's nine-line warning about the Node version on the host's stderr:
 * ferry documents the versions it supports. The switch is set only while the client is
 * built, and only when the host left it unset; `FERRY_DEBUG=1` (or setting the switch to
 * `false`) lets the warning through.
 */
function newClient(s3: S3Sdk, config: S3ClientConfig): S3Client {
  if (process.env[SDK_NODE_WARNING] !== undefined || (process.env.FERRY_DEBUG ?? '') !== '') {
    return new s3.S3Client(config);
  }
  process.env[SDK_NODE_WARNING] = 'true';
  try {
    return new s3.S3Client(config);
  } finally {
    delete process.env[SDK_NODE_WARNING];
  }
}

/** What a GetObject answered, whichever path sent it. */
interface GetResult extends RangeResponse {
  body: Readable;
}

/** Where an S3 source points, as `parseSourceUri` gives it. */
export interface S3Location {
  bucket: string;
  /** Folder under the bucket, without slashes at either end; `''` for the bucket root. */
  prefix: string;
}

/**
 * S3 and S3-compatible stores through `@aws-sdk/client-s3`.
 *
 * Endpoint, region and credentials come from `options`, else the SDK's default chain and
 * `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`. With a custom endpoint, path-style
 * addressing and `WHEN_REQUIRED` checksums are the defaults: s3rver stores the aws-chunked
 * framing of checksummed stream uploads as object bytes (see NOTES.md). The SDK's own
 * retries are off (`maxAttempts: 1`): retry composes around sources with `withRetry`.
 *
 * GETs with a body (`read`, `readText`) go through `S3DirectGet` — signed like the SDK, sent
 * over node:http on the client's own agents — unless the configuration is one it cannot
 * address exactly or S3 answers with a region redirect; then they use the SDK too.
 */
export class S3Source implements Source {
  readonly uri: string;
  readonly capabilities: SourceCapabilities = { list: true, rangeReads: true, write: true };
  readonly metrics: SourceMetrics = { requests: 0, bytesRead: 0 };
  readonly #config: S3ClientConfig;
  #client: S3Client | undefined;
  readonly #bucket: string;
  /** `prefix/` or `''`: prepended to every key. */
  readonly #root: string;
  readonly #endpoint: string;
  readonly #pageSize: number;
  readonly #partSize: number | undefined;
  readonly #agents: S3Agents;
  readonly #timeoutMs: number;
  /** As given, for `handoff()`. */
  readonly #options: SourceOptions;
  /** The direct GET path, once resolved; `undefined` inside means reads use the SDK. */
  #direct: Promise<S3DirectGet | undefined> | undefined;

  constructor(location: S3Location, options: SourceOptions = {}) {
    this.#options = options;
    this.#bucket = location.bucket;
    this.#root = location.prefix === '' ? '' : `${location.prefix}/`;
    this.uri =
      location.prefix === ''
        ? `s3://${location.bucket}`
        : `s3://${location.bucket}/${location.prefix}`;
    const endpoint = options.endpoint ?? env('AWS_ENDPOINT_URL_S3') ?? env('AWS_ENDPOINT_URL');
    const region =
      options.region ??
      env('AWS_REGION') ??
      env('AWS_DEFAULT_REGION') ??
      (endpoint === undefined ? undefined : 'us-east-1');
    this.#endpoint = endpoint ?? `https://s3.${region ?? '<region>'}.amazonaws.com`;
    this.#pageSize = options.listPageSize ?? DEFAULT_PAGE_SIZE;
    this.#partSize = options.uploadPartSize;
    const checksums = checksumMode(options.checksums, endpoint);
    const agentOptions = { keepAlive: true, maxSockets: options.maxSockets ?? DEFAULT_MAX_SOCKETS };
    const timeout = options.requestTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#timeoutMs = timeout;
    // One pool per source: the SDK client and the direct GETs share these sockets.
    const { http, https } = sourceAgents(
      new URL(this.#endpoint.replace('<region>', 'us-east-1')),
      agentOptions,
    );
    this.#agents = { http, https };
    const config: S3ClientConfig = {
      forcePathStyle: options.forcePathStyle ?? pathStyle() ?? endpoint !== undefined,
      followRegionRedirects: true,
      maxAttempts: 1,
      requestChecksumCalculation: checksums,
      responseChecksumValidation: checksums,
      requestHandler: {
        httpAgent: this.#agents.http,
        httpsAgent: this.#agents.https,
        connectionTimeout: timeout,
        // Until the response headers; a stalled body is withRetry's stallTimeoutMs.
        requestTimeout: timeout,
        throwOnRequestTimeout: true,
      },
    };
    if (endpoint !== undefined) config.endpoint = endpoint;
    const grant = options.s3ReadGrant;
    if (grant !== undefined) this.#direct = S3DirectGet.fromGrant(grant, this.#agents);
    if (region !== undefined) config.region = region;
    if (options.credentials !== undefined) config.credentials = options.credentials;
    this.#config = config;
  }

  async *list(prefix?: string, options: SignalOptions = {}): AsyncIterable<ObjectInfo> {
    const wanted = checkPrefix(prefix);
    let token: string | undefined;
    let last: string | undefined;
    do {
      throwIfAborted(options.signal);
      const page = await this.#send(undefined, options.signal, (client, s3) =>
        client.send(
          new s3.ListObjectsV2Command({
            Bucket: this.#bucket,
            Prefix: this.#root + wanted,
            MaxKeys: this.#pageSize,
            ContinuationToken: token,
          }),
          { abortSignal: options.signal },
        ),
      );
      for (const object of page.Contents ?? []) {
        const full = object.Key ?? '';
        // Zero-byte `folder/` markers made by consoles are not files.
        if (full.endsWith('/') && (object.Size ?? 0) === 0) continue;
        const key = checkListedKey(full.slice(this.#root.length), this.uri);
        if (last !== undefined && compareUtf8(key, last) <= 0)
          throw outOfOrder(this.uri, last, key);
        last = key;
        const info: ObjectInfo = { key, size: object.Size ?? 0 };
        if (object.ETag !== undefined) info.etag = object.ETag;
        if (object.LastModified !== undefined) info.lastModified = object.LastModified;
        yield info;
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  async stat(key: string, options: SignalOptions = {}): Promise<ObjectInfo> {
    const normal = checkKey(key);
    const head = await this.#send(normal, options.signal, (client, s3) =>
      client.send(new s3.HeadObjectCommand({ Bucket: this.#bucket, Key: this.#root + normal }), {
        abortSignal: options.signal,
      }),
    );
    const info: ObjectInfo = { key: normal, size: head.ContentLength ?? 0 };
    if (head.ETag !== undefined) info.etag = head.ETag;
    if (head.LastModified !== undefined) info.lastModified = head.LastModified;
    return info;
  }

  read(key: string, options: ReadOptions = {}): Promise<Readable> {
    return checkedRead(this, key, options);
  }

  async delete(key: string, options: SignalOptions = {}): Promise<void> {
    const normal = checkKey(key);
    await this.#send(normal, options.signal, (client, s3) =>
      client.send(new s3.DeleteObjectCommand({ Bucket: this.#bucket, Key: this.#root + normal }), {
        abortSignal: options.signal,
      }),
    );
  }

  async copy(from: string, to: string, options: SignalOptions = {}): Promise<void> {
    const source = checkKey(from);
    const normal = checkKey(to);
    // The copy source is `<bucket>/<key>`, URL-encoded (S3 and s3rver decode it).
    const escaped = (this.#root + source).split('/').map(encodeURIComponent).join('/');
    await this.#send(source, options.signal, (client, s3) =>
      client.send(
        new s3.CopyObjectCommand({
          Bucket: this.#bucket,
          Key: this.#root + normal,
          CopySource: `${encodeURIComponent(this.#bucket)}/${escaped}`,
        }),
        { abortSignal: options.signal },
      ),
    );
  }

  async openRange(key: string, options: ReadOptions = {}): Promise<OpenedRange> {
    const { signal, ifMatch } = options;
    const normal = checkKey(key);
    const url = this.#url(normal);
    const start = options.start ?? 0;
    const request: RangeRequest = { key: normal, url, start, end: options.end, ifMatch };
    checkRangeRequest(request);
    if (request.end === start) {
      // Nothing to transfer, but the object must exist and still match.
      const head = await this.#send(normal, signal, (client, s3) =>
        client.send(
          new s3.HeadObjectCommand({
            Bucket: this.#bucket,
            Key: this.#root + normal,
            IfMatch: ifMatch,
          }),
          { abortSignal: signal },
        ),
      );
      checkEtag(request, head.ETag);
      return this.#opened(Readable.from([]), 0, request, signal, head.$metadata.httpStatusCode);
    }
    const range = rangeHeader(start, request.end);
    const object =
      (await this.#directGet(normal, url, range, ifMatch, signal)) ??
      (await this.#sdkGet(normal, url, range, ifMatch, signal));
    try {
      const length = checkRangeResponse(request, object);
      return this.#opened(object.body, length, request, signal, object.statusCode);
    } catch (error) {
      object.body.destroy();
      throw error;
    }
  }

  async readText(key: string, options: ReadTextOptions = {}): Promise<string> {
    return readAllText(await this.read(key, options), key, options.maxBytes);
  }

  async writeText(key: string, text: string, options: SignalOptions = {}): Promise<void> {
    const body = Buffer.from(text, 'utf8');
    await this.write(key, body, { size: body.length, signal: options.signal });
  }

  /**
   * One PutObject up to the part size (8 MiB, or more for objects over 80 GB), else a
   * multipart upload of 4 parts at once, buffering at most 4 × part size. A body that is
   * not exactly `size` bytes fails the upload (and aborts a multipart one).
   */
  async write(
    key: string,
    body: Readable | Uint8Array,
    options: WriteOptions,
  ): Promise<{ etag?: string }> {
    const { signal, size } = options;
    throwIfAborted(signal);
    const normal = checkKey(key);
    const objectKey = this.#root + normal;
    const partSize = Math.max(this.#partSize ?? MIN_PART_SIZE, Math.ceil(size / MAX_PARTS));
    if (body instanceof Uint8Array && body.length !== size) {
      throw lengthMismatch(normal, body.length, size);
    }
    // The SDK pipes a stream body into the request without watching it for errors, so a
    // body that fails (too short, too long, a read error) must abort the request itself.
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    let bodyError: unknown;
    let checked: Uint8Array | Readable = body;
    if (body instanceof Readable) {
      checked = Readable.from(exactly(body, size, normal));
      checked.once('error', (error) => {
        bodyError = error;
        controller.abort(error);
      });
    }
    try {
      if (size <= partSize) {
        const put = await this.#send(normal, controller.signal, (client, s3) =>
          client.send(
            new s3.PutObjectCommand({
              Bucket: this.#bucket,
              Key: objectKey,
              Body: checked,
              ContentLength: size,
            }),
            {
              abortSignal: controller.signal,
            },
          ),
        );
        return put.ETag === undefined ? {} : { etag: put.ETag };
      }
      const [{ Upload }, s3] = await Promise.all([import('@aws-sdk/lib-storage'), loadSdk()]);
      this.#client ??= newClient(s3, this.#config);
      const upload = new Upload({
        client: this.#client,
        params: { Bucket: this.#bucket, Key: objectKey, Body: checked, ContentLength: size },
        partSize,
        queueSize: UPLOAD_QUEUE,
        leavePartsOnError: false,
        abortController: controller,
      });
      this.metrics.requests += Math.ceil(size / partSize) + 2;
      const done = await upload.done();
      return done.ETag === undefined ? {} : { etag: done.ETag };
    } catch (error) {
      if (bodyError !== undefined) throw bodyError;
      if (signal?.aborted) throw new AbortError(signal.reason);
      throw this.#error(error, normal, signal);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      if (body instanceof Readable) body.destroy();
    }
  }

  async handoff(): Promise<Handoff> {
    this.#direct ??= this.#resolveDirect();
    const direct = await this.#direct.catch((error: unknown) => {
      throw this.#error(error, undefined, undefined);
    });
    if (direct === undefined) return { options: this.#options };
    const grant = await direct.grant();
    return {
      options: { ...this.#options, s3ReadGrant: grant },
      expiresAt: grant.credentials.expiration,
    };
  }

  async close(): Promise<void> {
    this.#client?.destroy();
    this.#agents.http.destroy();
    this.#agents.https.destroy();
  }

  /** GetObject through the SDK. */
  async #sdkGet(
    key: string,
    url: string,
    range: string | undefined,
    ifMatch: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<GetResult> {
    const object = await this.#send(key, signal, (client, s3) =>
      client.send(
        new s3.GetObjectCommand({
          Bucket: this.#bucket,
          Key: this.#root + key,
          Range: range,
          IfMatch: ifMatch,
        }),
        { abortSignal: signal },
      ),
    );
    const body = object.Body;
    if (!(body instanceof Readable)) {
      throw new FerryError('FERRY_BAD_RESPONSE', `GetObject for ${url} returned no body stream`, {
        key,
        url,
        hint: 'This is a bug in ferry or the SDK; please report it with the SDK version.',
      });
    }
    return {
      body,
      statusCode: object.$metadata.httpStatusCode,
      etag: object.ETag,
      contentRange: object.ContentRange,
      contentLength: object.ContentLength,
    };
  }

  /**
   * GetObject through `S3DirectGet`; `undefined` when this source's reads must use the SDK
   * (a configuration it cannot address, or a region redirect, after which the SDK's
   * redirect handling serves this source's reads).
   */
  async #directGet(
    key: string,
    url: string,
    range: string | undefined,
    ifMatch: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<GetResult | undefined> {
    throwIfAborted(signal);
    let res: IncomingMessage;
    try {
      this.#direct ??= this.#resolveDirect();
      const direct = await this.#direct;
      if (direct === undefined) return undefined;
      this.metrics.requests += 1;
      const request = await direct.sign(this.#root + key, { range, ifMatch });
      res = await direct.send(request, signal, this.#timeoutMs);
    } catch (error) {
      throw this.#error(error, key, signal);
    }
    const status = res.statusCode ?? 0;
    if (status === 200 || status === 206) return { body: res, ...rangeResponse(res) };
    const failure = await readFailure(res, signal);
    if (status === 301 || (failure.code !== undefined && REGION_REDIRECTS.has(failure.code))) {
      this.#direct = Promise.resolve(undefined);
      return undefined;
    }
    throw remoteError({ ...failure, key, url, bucket: this.#bucket, endpoint: this.#endpoint });
  }

  async #resolveDirect(): Promise<S3DirectGet | undefined> {
    try {
      const s3 = await loadSdk();
      this.#client ??= newClient(s3, this.#config);
      return await S3DirectGet.resolve(this.#client, this.#bucket, this.#agents);
    } catch (error) {
      // Not cached: a missing region or profile may be fixed for the next call.
      this.#direct = undefined;
      throw error;
    }
  }

  #opened(
    body: Readable,
    length: number | undefined,
    request: RangeRequest,
    signal: AbortSignal | undefined,
    statusCode: number | undefined,
  ): OpenedRange {
    const { key, url } = request;
    return {
      body,
      length,
      mapError: (error) => this.#error(error, key, signal),
      ...httpBodyErrors(key, url, statusCode),
    };
  }

  #url(key: string): string {
    return `s3://${this.#bucket}/${this.#root}${key}`;
  }

  /** Runs one SDK call, counting it and mapping its failure. */
  async #send<Output>(
    key: string | undefined,
    signal: AbortSignal | undefined,
    call: (client: S3Client, s3: S3Sdk) => Promise<Output>,
  ): Promise<Output> {
    throwIfAborted(signal);
    this.metrics.requests += 1;
    try {
      const s3 = await loadSdk();
      this.#client ??= newClient(s3, this.#config);
      return await call(this.#client, s3);
    } catch (error) {
      throw this.#error(error, key, signal);
    }
  }

  #error(error: unknown, key: string | undefined, signal: AbortSignal | undefined): Error {
    if (isFerryError(error) || error instanceof AbortError) return error;
    if (signal?.aborted) return new AbortError(signal.reason);
    const url = key === undefined ? this.uri : this.#url(key);
    const status = sdkStatus(error);
    if (status !== undefined && status > 0) {
      return remoteError({
        status,
        code: sdkField(error, 'Code') ?? sdkField(error, 'name'),
        key,
        url,
        bucket: this.#bucket,
        endpoint: this.#endpoint,
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
    return networkError(error, {
      endpoint: this.#endpoint,
      key,
      url,
      endpointVariable: 'AWS_ENDPOINT_URL',
    });
  }
}

/**
 * S3 lists in UTF-8 byte order and pages by it; a store that lists in another order (s3rver
 * walks its directories, so `a/b` comes before `a-b`) can repeat or skip keys across
 * pages, which must not pass silently.
 */
function outOfOrder(uri: string, last: string, key: string): FerryError {
  return new FerryError(
    'FERRY_BAD_RESPONSE',
    `The listing of ${uri} is out of key order: ${JSON.stringify(key)} came after ${JSON.stringify(last)}`,
    {
      key,
      url: uri,
      hint: 'The store does not list keys in byte order, so its pages can repeat or skip keys; publish a manifest (ferry publish) or use a store that lists in order.',
    },
  );
}

/** Yields `body` unchanged, failing when it is not exactly `size` bytes. */
async function* exactly(body: Readable, size: number, key: string): AsyncGenerator<Buffer> {
  let seen = 0;
  for await (const chunk of body) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
    seen += buffer.length;
    if (seen > size) throw lengthMismatch(key, seen, size);
    yield buffer;
  }
  if (seen !== size) throw lengthMismatch(key, seen, size);
}

function lengthMismatch(key: string, seen: number, size: number): FerryError {
  return new FerryError(
    'FERRY_INTEGRITY',
    `The body for ${key} has ${seen > size ? 'more than ' : ''}${seen} bytes, not the ${size} given`,
    {
      key,
      hint: 'The data being published changed or was cut short; check the input file and publish again.',
    },
  );
}

function checksumMode(
  option: SourceOptions['checksums'],
  endpoint: string | undefined,
): 'WHEN_REQUIRED' | 'WHEN_SUPPORTED' {
  const value = option ?? env('FERRY_S3_CHECKSUMS');
  if (value === undefined) return endpoint === undefined ? 'WHEN_SUPPORTED' : 'WHEN_REQUIRED';
  if (value === 'when-required') return 'WHEN_REQUIRED';
  if (value === 'when-supported') return 'WHEN_SUPPORTED';
  throw new FerryError('FERRY_BAD_CONFIG', `FERRY_S3_CHECKSUMS is "${value}"`, {
    hint: 'Set FERRY_S3_CHECKSUMS to "when-required" or "when-supported", or unset it.',
  });
}

/** `FERRY_S3_PATH_STYLE`: overrides the path-style default (on with a custom endpoint). */
function pathStyle(): boolean | undefined {
  const value = env('FERRY_S3_PATH_STYLE');
  if (value === undefined) return undefined;
  if (value === '1' || value === 'true') return true;
  if (value === '0' || value === 'false') return false;
  throw new FerryError('FERRY_BAD_CONFIG', `FERRY_S3_PATH_STYLE is "${value}"`, {
    hint: 'Set FERRY_S3_PATH_STYLE to 1 (path-style: <endpoint>/<bucket>/<key>) or 0 (virtual-hosted: <bucket>.<endpoint>), or unset it.',
  });
}

function env(name: string): string | undefined {
  const value = process.env[name];
  return value === undefined || value === '' ? undefined : value;
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
