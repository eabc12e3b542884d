import type { Agent as HttpAgent } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import type { S3Client } from '@aws-sdk/client-s3';
import type { HttpResponse, RawHttpPool } from './raw-http.js';
import { sendRequest } from './send-request.js';
import { canonicalQuery, EMPTY_SHA256, escapeUri, SigV4Get } from './sigv4-get.js';

/** Regions of the `aws` partition, whose endpoints are `s3.<region>.amazonaws.com`. */
const AWS_REGION = /^(?:af|ap|ca|eu|il|me|mx|sa|us)-[a-z]+-\d+$/;
/** Buckets the SDK addresses as `<bucket>.s3.<region>.amazonaws.com` over https (no dots). */
const VIRTUAL_HOSTABLE = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;
/** The operation marker the SDK adds to GetObject's query; it is part of the signature. */
const QUERY = { 'x-id': 'GetObject' };

/** The agents the S3 client was given, shared so both paths use one socket pool. */
export interface S3Agents {
  http: HttpAgent;
  https: HttpsAgent;
  /** Plain-HTTP GETs of the direct path, when no proxy is in the way (see `sourceAgents`). */
  raw?: RawHttpPool | undefined;
}

/** A GetObject request ready to send: everything the SDK would put on the wire that matters. */
export interface SignedGet {
  protocol: 'http:' | 'https:';
  hostname: string;
  port: number | undefined;
  /** Escaped path plus query, as sent. */
  path: string;
  headers: Record<string, string>;
}

/** Conditions of one GET: `range` as the `Range` header value, `ifMatch` as `If-Match`. */
export interface DirectGetHeaders {
  range?: string | undefined;
  ifMatch?: string | undefined;
}

interface Address {
  protocol: 'http:' | 'https:';
  hostname: string;
  port: number | undefined;
  /** Escaped path of the bucket (`/bucket` path-style, `''` virtual-hosted). */
  bucketPath: string;
}

/** A custom endpoint, as the SDK resolves it. */
interface Endpoint {
  protocol: string;
  hostname: string;
  port?: number | undefined;
  path?: string | undefined;
  query?: Record<string, unknown> | undefined;
}

/** What a GET needs, when the environment alone decides it: see `S3Config.direct`. */
export interface DirectSettings {
  region: string;
  /** The custom endpoint; `undefined` for AWS's own. */
  endpoint: string | undefined;
  forcePathStyle: boolean;
  credentials: S3GrantCredentials;
}

/**
 * Where the SDK sends GetObject for `bucket`, or `undefined` when this cannot say exactly: a
 * custom endpoint with virtual-hosted addressing or a base path; regions outside the `aws`
 * partition; buckets that are not plain DNS labels (dots, upper case, `--` as in directory
 * buckets and access-point aliases).
 */
function addressOf(
  bucket: string,
  region: string,
  endpoint: Endpoint | undefined,
  forcePathStyle: boolean,
): Address | undefined {
  if (bucket.includes('--')) return undefined;
  if (endpoint !== undefined) {
    const { protocol } = endpoint;
    if (!forcePathStyle || (protocol !== 'http:' && protocol !== 'https:')) return undefined;
    if ((endpoint.path ?? '/') !== '/' || Object.keys(endpoint.query ?? {}).length > 0) {
      return undefined;
    }
    return {
      protocol,
      hostname: endpoint.hostname,
      port: endpoint.port,
      bucketPath: `/${escapeUri(bucket)}`,
    };
  }
  if (!AWS_REGION.test(region)) return undefined;
  if (forcePathStyle) {
    return {
      protocol: 'https:',
      hostname: `s3.${region}.amazonaws.com`,
      port: undefined,
      bucketPath: `/${escapeUri(bucket)}`,
    };
  }
  if (!VIRTUAL_HOSTABLE.test(bucket)) return undefined;
  return {
    protocol: 'https:',
    hostname: `${bucket}.s3.${region}.amazonaws.com`,
    port: undefined,
    bucketPath: '',
  };
}

/** Static credentials as the SDK resolves them; `expiration` in ms since the epoch. */
export interface S3GrantCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string | undefined;
  expiration?: number | undefined;
}

/**
 * What one direct path resolved, as plain data another thread can sign with: the address,
 * the region and the credentials of the moment. A worker given this never loads the SDK
 * (about 140 ms of CPU per thread); it holds secrets, so it is never persisted.
 */
export interface S3ReadGrant {
  address: Address;
  region: string;
  credentials: S3GrantCredentials;
  /** The SDK's clock correction when the grant was made. */
  clockOffsetMs: number;
}

/**
 * GetObject without the SDK's middleware: the request is built, addressed and signed the
 * way the S3 client would (SigV4 as the SDK signs it, the same credentials provider, region and clock
 * offset, checked byte for byte against the SDK in s3-direct-get.test.ts) and sent over
 * the client's own keep-alive agents. The SDK's per-request middleware stack and its body
 * wrapping cost about 0.15–0.2 CPU-seconds per GiB more than this on the hot path of a pull.
 *
 * `resolve` returns `undefined` for configurations whose addressing this does not
 * reproduce exactly; those reads stay on the SDK.
 */
export class S3DirectGet {
  readonly #address: Address;
  readonly #region: string;
  readonly #signer: SigV4Get;
  readonly #credentials: () => Promise<S3GrantCredentials>;
  readonly #clockOffset: () => number;
  readonly #agent: HttpAgent;
  readonly #raw: RawHttpPool | undefined;

  private constructor(
    address: Address,
    region: string,
    signer: SigV4Get,
    credentials: () => Promise<S3GrantCredentials>,
    clockOffset: () => number,
    agents: S3Agents,
  ) {
    this.#address = address;
    this.#region = region;
    this.#signer = signer;
    this.#credentials = credentials;
    this.#clockOffset = clockOffset;
    this.#agent = address.protocol === 'https:' ? agents.https : agents.http;
    this.#raw = agents.raw;
  }

  /** The direct path another thread can rebuild with `fromGrant`, signing as this one does now. */
  async grant(): Promise<S3ReadGrant> {
    return {
      address: this.#address,
      region: this.#region,
      credentials: await this.#credentials(),
      clockOffsetMs: this.#clockOffset(),
    };
  }

  /** The direct path of a grant, with its credentials fixed: no SDK is loaded. */
  static async fromGrant(grant: S3ReadGrant, agents: S3Agents): Promise<S3DirectGet> {
    const { credentials } = grant;
    return new S3DirectGet(
      grant.address,
      grant.region,
      new SigV4Get(grant.region),
      async () => credentials,
      () => grant.clockOffsetMs,
      agents,
    );
  }

  /**
   * The direct path for `bucket` on `client`, or `undefined` when the SDK must address it:
   * FIPS, dual-stack, accelerate or bucket endpoints; an endpoint from the profile's
   * `endpoint_url`; whatever `addressOf` cannot place.
   */
  static async resolve(
    client: S3Client,
    bucket: string,
    agents: S3Agents,
  ): Promise<S3DirectGet | undefined> {
    const config = client.config;
    if (config.useAccelerateEndpoint || config.bucketEndpoint) return undefined;
    if ((await config.useFipsEndpoint()) || (await config.useDualstackEndpoint())) return undefined;
    const region = await config.region();
    let endpoint: Endpoint | undefined;
    if (config.isCustomEndpoint === true) {
      if (config.endpoint === undefined) return undefined;
      endpoint = await config.endpoint();
    } else if ((await config.serviceConfiguredEndpoint?.()) !== undefined) return undefined;
    const address = addressOf(bucket, region, endpoint, config.forcePathStyle === true);
    if (address === undefined) return undefined;
    const provider = config.credentials;
    const credentials = async (): Promise<S3GrantCredentials> => {
      const identity = await provider();
      return {
        accessKeyId: identity.accessKeyId,
        secretAccessKey: identity.secretAccessKey,
        sessionToken: identity.sessionToken,
        expiration: identity.expiration?.getTime(),
      };
    };
    return new S3DirectGet(
      address,
      region,
      new SigV4Get(region),
      credentials,
      () => client.config.systemClockOffset,
      agents,
    );
  }

  /**
   * The direct path from settings the environment alone decided (`S3Config.direct`), without
   * the SDK: what `resolve` would give a client built from them, or `undefined` where it
   * would give nothing. No clock offset is learned on this path, as on a worker's grant.
   */
  static fromSettings(
    settings: DirectSettings,
    bucket: string,
    agents: S3Agents,
  ): S3DirectGet | undefined {
    let endpoint: Endpoint | undefined;
    if (settings.endpoint !== undefined) {
      const url = new URL(settings.endpoint);
      endpoint = {
        protocol: url.protocol,
        hostname: url.hostname,
        port: url.port === '' ? undefined : Number(url.port),
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
      };
    }
    const address = addressOf(bucket, settings.region, endpoint, settings.forcePathStyle);
    if (address === undefined) return undefined;
    const { credentials } = settings;
    return new S3DirectGet(
      address,
      settings.region,
      new SigV4Get(settings.region),
      async () => credentials,
      () => 0,
      agents,
    );
  }

  /** The signed GET of `objectKey` (the full key in the bucket), signed now by the client's clock. */
  sign(objectKey: string, conditions: DirectGetHeaders = {}): Promise<SignedGet> {
    const path = `${this.#address.bucketPath}/${objectKey.split('/').map(escapeUri).join('/')}`;
    const headers: Record<string, string> = {};
    if (conditions.range !== undefined) headers.range = conditions.range;
    if (conditions.ifMatch !== undefined) headers['if-match'] = conditions.ifMatch;
    return this.#signed(path, QUERY, headers);
  }

  /**
   * The signed ListObjectsV2 of one page: keys under `prefix` (the full prefix in the
   * bucket), after `continuationToken`. The answer is `parseListPage`'s to read.
   */
  signList(
    prefix: string,
    maxKeys: number,
    continuationToken: string | undefined,
  ): Promise<SignedGet> {
    const query: Record<string, string> = {
      'list-type': '2',
      'max-keys': String(maxKeys),
      prefix,
    };
    if (continuationToken !== undefined) query['continuation-token'] = continuationToken;
    // The bucket's root, with its slash, as the SDK sends it.
    return this.#signed(`${this.#address.bucketPath}/`, query, {});
  }

  /** A GET of `path?query` with `headers`, the host and the empty payload's hash, signed now. */
  async #signed(
    path: string,
    query: Record<string, string>,
    headers: Record<string, string>,
  ): Promise<SignedGet> {
    const { protocol, hostname, port } = this.#address;
    const all = {
      host: port === undefined ? hostname : `${hostname}:${port}`,
      'x-amz-content-sha256': EMPTY_SHA256,
      ...headers,
    };
    // The SDK's clock: corrected by the offset it learns from a RequestTimeTooSkewed answer.
    const signingDate = new Date(Date.now() + this.#clockOffset());
    const signed = this.#signer.sign(
      { path, query, headers: all },
      await this.#credentials(),
      signingDate,
    );
    return { protocol, hostname, port, path: `${path}?${canonicalQuery(query)}`, headers: signed };
  }

  /**
   * Sends `request`; resolves once the response headers arrived (the body is left unread).
   * Fails with a `TimeoutError` after `timeoutMs` without headers, and with an AbortError
   * (destroying the socket) when `signal` aborts first.
   */
  send(
    request: SignedGet,
    signal: AbortSignal | undefined,
    timeoutMs: number,
  ): Promise<HttpResponse> {
    return sendRequest(
      {
        method: 'GET',
        protocol: request.protocol,
        hostname: request.hostname,
        port: request.port,
        path: request.path,
        headers: request.headers,
        agent: this.#agent,
      },
      {
        raw: this.#raw,
        signal,
        timeoutMs,
        timeoutError: () => {
          const error = new Error(`No response headers within ${timeoutMs} ms`);
          // The name the SDK's handler gives its request timeouts, so both map alike.
          error.name = 'TimeoutError';
          return error;
        },
        // Mapped by the S3 source, like the SDK's errors.
        mapError: (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
      },
    );
  }
}
