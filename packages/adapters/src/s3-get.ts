import { Readable } from 'node:stream';
import { FerryError, throwIfAborted } from '@ferry/manifest';
import { type RangeResponse, rangeResponse, readFailure } from './http-response.js';
import type { HttpResponse } from './raw-http.js';
import { readAllText } from './read-all-text.js';
import { remoteError } from './remote-error.js';
import type { S3Connection } from './s3-connection.js';
import { S3DirectGet, type S3ReadGrant, type SignedGet } from './s3-direct-get.js';
import { type ListPage, parseListPage } from './s3-list-page.js';

/** What a GetObject answered, whichever path sent it: the body, not yet read, and its headers. */
export interface S3GetResult extends RangeResponse {
  body: Readable;
}

/** S3's answers to a request signed for the wrong region; the SDK re-sends those. */
const REGION_REDIRECTS = new Set(['PermanentRedirect', 'AuthorizationHeaderMalformed']);

/**
 * GetObject and ListObjectsV2 for one S3 source. They go through `S3DirectGet` — signed like
 * the SDK, sent over node:http on the connection's own agents — unless the configuration is
 * one that cannot address exactly or S3 answers with a region redirect; then this source's
 * reads go through the SDK, whose redirect handling serves them from then on.
 */
export class S3Get {
  readonly #connection: S3Connection;
  /** The direct path, once resolved; `undefined` inside means reads use the SDK. */
  #direct: Promise<S3DirectGet | undefined> | undefined;

  /** With a `grant` (from another thread's `handoff()`), reads sign with it and never load the SDK. */
  constructor(connection: S3Connection, grant: S3ReadGrant | undefined) {
    this.#connection = connection;
    if (grant !== undefined) this.#direct = S3DirectGet.fromGrant(grant, connection.config.agents);
  }

  /**
   * GETs `key` (relative to the source root) with `range` as the `Range` header and
   * `ifMatch` as `If-Match`. Failures are mapped; the response's headers are not judged.
   */
  async get(
    key: string,
    range: string | undefined,
    ifMatch: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<S3GetResult> {
    return (
      (await this.#directGet(key, range, ifMatch, signal)) ??
      (await this.#sdkGet(key, range, ifMatch, signal))
    );
  }

  /**
   * One page of ListObjectsV2 under `prefix` (the full prefix in the bucket): on the direct
   * path, signed, sent and read by ferry (no SDK loaded, a tenth of its parsing CPU); else,
   * or after a region redirect, through the SDK.
   */
  async listPage(
    prefix: string,
    token: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<ListPage> {
    const connection = this.#connection;
    const url = connection.url(prefix.slice(connection.root.length));
    const res = await this.#sendDirect(
      (direct) => direct.signList(prefix, connection.config.pageSize, token),
      undefined,
      url,
      signal,
    );
    if (res === undefined) return this.#sdkListPage(prefix, token, signal);
    let xml: string;
    try {
      xml = await readAllText(res, url);
    } catch (error) {
      throw connection.error(error, undefined, signal);
    }
    return parseListPage(xml, url);
  }

  async #sdkListPage(
    prefix: string,
    token: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<ListPage> {
    const connection = this.#connection;
    const page = await connection.send(undefined, signal, (client, s3, request) =>
      client.send(
        new s3.ListObjectsV2Command({
          Bucket: connection.bucket,
          Prefix: prefix,
          MaxKeys: connection.config.pageSize,
          ContinuationToken: token,
        }),
        request,
      ),
    );
    return {
      objects: (page.Contents ?? []).map((object) => ({
        key: object.Key ?? '',
        size: object.Size ?? 0,
        etag: object.ETag,
        lastModified: object.LastModified,
      })),
      nextToken: page.IsTruncated ? page.NextContinuationToken : undefined,
    };
  }

  /** The direct path reads take, resolving it on first use; `undefined` when they use the SDK. */
  directPath(): Promise<S3DirectGet | undefined> {
    this.#direct ??= this.#resolveDirect();
    return this.#direct;
  }

  async #sdkGet(
    key: string,
    range: string | undefined,
    ifMatch: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<S3GetResult> {
    const connection = this.#connection;
    const object = await connection.send(key, signal, (client, s3, request) =>
      client.send(
        new s3.GetObjectCommand({
          Bucket: connection.bucket,
          Key: connection.root + key,
          Range: range,
          IfMatch: ifMatch,
        }),
        request,
      ),
    );
    const body = object.Body;
    if (!(body instanceof Readable)) {
      const url = connection.url(key);
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

  /** `undefined` when this read must go through the SDK. */
  async #directGet(
    key: string,
    range: string | undefined,
    ifMatch: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<S3GetResult | undefined> {
    const connection = this.#connection;
    const res = await this.#sendDirect(
      (direct) => direct.sign(connection.root + key, { range, ifMatch }),
      key,
      connection.url(key),
      signal,
    );
    return res === undefined ? undefined : { body: res, ...rangeResponse(res) };
  }

  /**
   * Sends one request on the direct path, signed by `sign`: the response once S3 answered 200
   * or 206 (its body unread), `undefined` when the SDK must send it (no direct path; or a
   * region redirect, after which the SDK sends them all). Other answers and failures are
   * thrown, mapped, about `key` (or the listing) at `url`.
   */
  async #sendDirect(
    sign: (direct: S3DirectGet) => Promise<SignedGet>,
    key: string | undefined,
    url: string,
    signal: AbortSignal | undefined,
  ): Promise<HttpResponse | undefined> {
    throwIfAborted(signal);
    const connection = this.#connection;
    let res: HttpResponse;
    try {
      const direct = await this.directPath();
      if (direct === undefined) return undefined;
      connection.count();
      res = await direct.send(await sign(direct), signal, connection.config.timeoutMs);
    } catch (error) {
      throw connection.error(error, key, signal);
    }
    const status = res.statusCode ?? 0;
    if (status === 200 || status === 206) return res;
    const failure = await readFailure(res, signal);
    if (status === 301 || (failure.code !== undefined && REGION_REDIRECTS.has(failure.code))) {
      this.#direct = Promise.resolve(undefined);
      return undefined;
    }
    throw remoteError({
      ...failure,
      key,
      url,
      bucket: connection.bucket,
      endpoint: connection.config.endpoint,
    });
  }

  async #resolveDirect(): Promise<S3DirectGet | undefined> {
    const { config, bucket } = this.#connection;
    // Loading and building the SDK costs ~60 ms of CPU, a third of a warm start from S3.
    const settled =
      config.direct === undefined
        ? undefined
        : S3DirectGet.fromSettings(config.direct, bucket, config.agents);
    if (settled !== undefined) return settled;
    try {
      const { client } = await this.#connection.sdk();
      return await S3DirectGet.resolve(
        client,
        this.#connection.bucket,
        this.#connection.config.agents,
      );
    } catch (error) {
      // Not cached: a missing region or profile may be fixed for the next call.
      this.#direct = undefined;
      throw error;
    }
  }
}
