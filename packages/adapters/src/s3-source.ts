import { Readable } from 'node:stream';
import { compareUtf8, FerryError } from '@ferry/manifest';
import { checkedRead } from './checked-body.js';
import {
  checkEtag,
  checkRangeRequest,
  checkRangeResponse,
  httpOpenedRange,
  type RangeRequest,
  rangeHeader,
} from './http-response.js';
import { readAllText } from './read-all-text.js';
import { s3Config } from './s3-config.js';
import { S3Connection } from './s3-connection.js';
import { S3Get } from './s3-get.js';
import { s3Upload } from './s3-upload.js';
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
 * `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` (`s3Config`). Every call goes through one
 * `S3Connection`, which counts it and maps its failure (`s3Error`). GETs with a body go
 * through `S3Get` (a direct signed GET, else the SDK) and are judged by the rules every
 * ranged read shares (`http-response.ts`); uploads are `s3Upload`.
 */
export class S3Source implements Source {
  readonly uri: string;
  readonly capabilities: SourceCapabilities = { list: true, rangeReads: true, write: true };
  readonly metrics: SourceMetrics = { requests: 0, bytesRead: 0 };
  readonly #connection: S3Connection;
  readonly #get: S3Get;
  /** As given, for `handoff()`. */
  readonly #options: SourceOptions;

  constructor(location: S3Location, options: SourceOptions = {}) {
    this.#options = options;
    this.uri =
      location.prefix === ''
        ? `s3://${location.bucket}`
        : `s3://${location.bucket}/${location.prefix}`;
    const root = location.prefix === '' ? '' : `${location.prefix}/`;
    this.#connection = new S3Connection(
      location.bucket,
      root,
      this.uri,
      s3Config(options),
      this.metrics,
    );
    this.#get = new S3Get(this.#connection, options.s3ReadGrant);
  }

  async *list(prefix?: string, options: SignalOptions = {}): AsyncIterable<ObjectInfo> {
    const wanted = checkPrefix(prefix);
    const { root } = this.#connection;
    let token: string | undefined;
    let last: string | undefined;
    do {
      const page = await this.#get.listPage(root + wanted, token, options.signal);
      for (const object of page.objects) {
        // Zero-byte `folder/` markers made by consoles are not files.
        if (object.key.endsWith('/') && object.size === 0) continue;
        const key = checkListedKey(object.key.slice(root.length), this.uri);
        if (last !== undefined && compareUtf8(key, last) <= 0)
          throw outOfOrder(this.uri, last, key);
        last = key;
        const info: ObjectInfo = { key, size: object.size };
        if (object.etag !== undefined) info.etag = object.etag;
        if (object.lastModified !== undefined) info.lastModified = object.lastModified;
        yield info;
      }
      token = page.nextToken;
    } while (token !== undefined);
  }

  async stat(key: string, options: SignalOptions = {}): Promise<ObjectInfo> {
    const normal = checkKey(key);
    const { bucket, root } = this.#connection;
    const head = await this.#connection.send(normal, options.signal, (client, s3, request) =>
      client.send(new s3.HeadObjectCommand({ Bucket: bucket, Key: root + normal }), request),
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
    const { bucket, root } = this.#connection;
    await this.#connection.send(normal, options.signal, (client, s3, request) =>
      client.send(new s3.DeleteObjectCommand({ Bucket: bucket, Key: root + normal }), request),
    );
  }

  async copy(from: string, to: string, options: SignalOptions = {}): Promise<void> {
    const source = checkKey(from);
    const normal = checkKey(to);
    const { bucket, root } = this.#connection;
    // The copy source is `<bucket>/<key>`, URL-encoded (S3 and s3rver decode it).
    const escaped = (root + source).split('/').map(encodeURIComponent).join('/');
    await this.#connection.send(source, options.signal, (client, s3, request) =>
      client.send(
        new s3.CopyObjectCommand({
          Bucket: bucket,
          Key: root + normal,
          CopySource: `${encodeURIComponent(bucket)}/${escaped}`,
        }),
        request,
      ),
    );
  }

  async openRange(key: string, options: ReadOptions = {}): Promise<OpenedRange> {
    const { signal, ifMatch } = options;
    const normal = checkKey(key);
    const url = this.#connection.url(normal);
    const start = options.start ?? 0;
    const request: RangeRequest = { key: normal, url, start, end: options.end, ifMatch };
    checkRangeRequest(request);
    if (request.end === start) {
      // Nothing to transfer, but the object must exist and still match.
      const { bucket, root } = this.#connection;
      const head = await this.#connection.send(normal, signal, (client, s3, request) =>
        client.send(
          new s3.HeadObjectCommand({ Bucket: bucket, Key: root + normal, IfMatch: ifMatch }),
          request,
        ),
      );
      checkEtag(request, head.ETag);
      return this.#opened(Readable.from([]), 0, request, signal, head.$metadata.httpStatusCode);
    }
    const object = await this.#get.get(normal, rangeHeader(start, request.end), ifMatch, signal);
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

  write(
    key: string,
    body: Readable | Uint8Array,
    options: WriteOptions,
  ): Promise<{ etag?: string }> {
    return s3Upload(this.#connection, key, body, options);
  }

  async handoff(): Promise<Handoff> {
    const direct = await this.#get.directPath().catch((error: unknown) => {
      throw this.#connection.error(error, undefined, undefined);
    });
    if (direct === undefined) return { options: this.#options };
    const grant = await direct.grant();
    return {
      options: { ...this.#options, s3ReadGrant: grant },
      expiresAt: grant.credentials.expiration,
    };
  }

  async close(): Promise<void> {
    this.#connection.close();
  }

  #opened(
    body: Readable,
    length: number | undefined,
    request: RangeRequest,
    signal: AbortSignal | undefined,
    statusCode: number | undefined,
  ): OpenedRange {
    const { key, url } = request;
    return httpOpenedRange(body, length, { key, url, statusCode }, (error) =>
      this.#connection.error(error, key, signal),
    );
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
