import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { throwIfAborted } from '@ferry/manifest';
import type { S3Config } from './s3-config.js';
import { s3Error } from './s3-errors.js';
import type { SourceMetrics } from './source.js';

/** The parts of the AWS SDK that S3 sources use. */
export type S3Sdk = typeof import('./s3-sdk.js');

let sdk: Promise<S3Sdk> | undefined;

/**
 * The AWS SDK takes a few hundred milliseconds to load: it is loaded on the first S3
 * request, so `--help`, HTTP and local sources, and warm starts that fail early never pay.
 */
function loadSdk(): Promise<S3Sdk> {
  sdk ??= import('./s3-sdk.js');
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

/**
 * What every S3 call of one source goes through: the bucket and prefix it addresses, the
 * SDK client (built on the first call), the request counter, and the one mapping of
 * failures to FerryErrors.
 */
export class S3Connection {
  readonly bucket: string;
  /** `prefix/` or `''`: prepended to every key. */
  readonly root: string;
  readonly config: S3Config;
  readonly #uri: string;
  readonly #metrics: SourceMetrics;
  #client: S3Client | undefined;

  constructor(bucket: string, root: string, uri: string, config: S3Config, metrics: SourceMetrics) {
    this.bucket = bucket;
    this.root = root;
    this.#uri = uri;
    this.config = config;
    this.#metrics = metrics;
  }

  /** Counts one request; every request this source sends is counted once. */
  count(requests = 1): void {
    this.#metrics.requests += requests;
  }

  /** The SDK and this source's client, loading and building them on first use. */
  async sdk(): Promise<{ s3: S3Sdk; client: S3Client }> {
    const s3 = await loadSdk();
    this.#client ??= newClient(s3, this.config.client);
    return { s3, client: this.#client };
  }

  /**
   * Runs one SDK call, counting it and mapping its failure. The call sends its command with
   * `request`, which carries `signal` (the SDK's options type has no room for an undefined one).
   */
  async send<Output>(
    key: string | undefined,
    signal: AbortSignal | undefined,
    call: (client: S3Client, s3: S3Sdk, request: { abortSignal?: AbortSignal }) => Promise<Output>,
  ): Promise<Output> {
    throwIfAborted(signal);
    this.count();
    try {
      const { s3, client } = await this.sdk();
      return await call(client, s3, signal === undefined ? {} : { abortSignal: signal });
    } catch (error) {
      throw this.error(error, key, signal);
    }
  }

  /** `error` as a FerryError about `key` (or the whole prefix), or the abort of `signal`. */
  error(error: unknown, key: string | undefined, signal: AbortSignal | undefined): Error {
    return s3Error(error, {
      key,
      url: key === undefined ? this.#uri : this.url(key),
      bucket: this.bucket,
      endpoint: this.config.endpoint,
      signal,
    });
  }

  /** `s3://bucket/prefix/key`, for messages. */
  url(key: string): string {
    return `s3://${this.bucket}/${this.root}${key}`;
  }

  close(): void {
    this.#client?.destroy();
    this.config.agents.http.destroy();
    this.config.agents.https.destroy();
    this.config.agents.raw?.destroy();
  }
}
