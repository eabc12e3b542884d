import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { S3ClientConfig } from '@aws-sdk/client-s3';
import { FerryError } from '@ferry/manifest';
import { sourceAgents } from './proxy-agent.js';
import type { DirectSettings, S3Agents } from './s3-direct-get.js';
import type { SourceOptions } from './source.js';

const DEFAULT_MAX_SOCKETS = 64;
const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_PAGE_SIZE = 1000;

/** What an S3 source resolves from its options and the environment when it is opened. */
export interface S3Config {
  /** For the SDK client: its own retries off, agents, timeouts, addressing, checksums. */
  client: S3ClientConfig;
  /** The endpoint messages name: the custom one, else `https://s3.<region>.amazonaws.com`. */
  endpoint: string;
  /** One socket pool per source: the SDK client and the direct GETs share it. */
  agents: S3Agents;
  /** Connect and response-headers timeout of one request. */
  timeoutMs: number;
  /** `MaxKeys` of a listing page. */
  pageSize: number;
  /** `uploadPartSize` as given; the upload grows it for very large objects. */
  partSize: number | undefined;
  /**
   * What a GET needs, when the options and the environment alone decide it as the SDK's
   * chain would; then reads never load the SDK. `undefined`: resolve through the SDK.
   */
  direct: DirectSettings | undefined;
}

/**
 * Resolves an S3 source's settings: options win over environment variables, which win
 * over the SDK's chain. With a custom endpoint, path-style addressing and `WHEN_REQUIRED`
 * checksums are the defaults: s3rver stores the aws-chunked framing of checksummed stream
 * uploads as object bytes. The SDK's own retries are off (`maxAttempts: 1`): retry
 * composes around sources with `withRetry`. Throws FERRY_BAD_CONFIG for an unknown
 * `FERRY_S3_CHECKSUMS` or `FERRY_S3_PATH_STYLE`.
 */
export function s3Config(options: SourceOptions): S3Config {
  const endpoint = options.endpoint ?? env('AWS_ENDPOINT_URL_S3') ?? env('AWS_ENDPOINT_URL');
  const region =
    options.region ??
    env('AWS_REGION') ??
    env('AWS_DEFAULT_REGION') ??
    (endpoint === undefined ? undefined : 'us-east-1');
  const shownEndpoint = endpoint ?? `https://s3.${region ?? '<region>'}.amazonaws.com`;
  const checksums = checksumMode(options.checksums, endpoint);
  const timeoutMs = options.requestTimeoutMs ?? DEFAULT_TIMEOUT_MS;
  const agents = sourceAgents(new URL(shownEndpoint.replace('<region>', 'us-east-1')), {
    keepAlive: true,
    maxSockets: options.maxSockets ?? DEFAULT_MAX_SOCKETS,
    readBufferBytes: options.readBufferBytes,
  });
  const client: S3ClientConfig = {
    forcePathStyle: options.forcePathStyle ?? pathStyle() ?? endpoint !== undefined,
    followRegionRedirects: true,
    maxAttempts: 1,
    requestChecksumCalculation: checksums,
    responseChecksumValidation: checksums,
    requestHandler: {
      httpAgent: agents.http,
      httpsAgent: agents.https,
      connectionTimeout: timeoutMs,
      // Until the response headers; a stalled body is withRetry's stallTimeoutMs.
      requestTimeout: timeoutMs,
      throwOnRequestTimeout: true,
    },
  };
  if (endpoint !== undefined) client.endpoint = endpoint;
  if (region !== undefined) client.region = region;
  if (options.credentials !== undefined) client.credentials = options.credentials;
  const credentials = options.credentials ?? envCredentials();
  return {
    client,
    endpoint: shownEndpoint,
    agents: { http: agents.http, https: agents.https, raw: agents.raw },
    timeoutMs,
    pageSize: options.listPageSize ?? DEFAULT_PAGE_SIZE,
    partSize: options.uploadPartSize,
    direct:
      region === undefined || credentials === undefined || !plainAddressing()
        ? undefined
        : { region, endpoint, forcePathStyle: client.forcePathStyle === true, credentials },
  };
}

/**
 * Keys from `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`, where the SDK's default chain
 * would take them: it skips them when `AWS_PROFILE` is set, and keys with an expiry are
 * left to its refreshing.
 */
function envCredentials(): DirectSettings['credentials'] | undefined {
  const accessKeyId = env('AWS_ACCESS_KEY_ID');
  const secretAccessKey = env('AWS_SECRET_ACCESS_KEY');
  if (accessKeyId === undefined || secretAccessKey === undefined) return undefined;
  if (env('AWS_PROFILE') !== undefined || env('AWS_CREDENTIAL_EXPIRATION') !== undefined) {
    return undefined;
  }
  const sessionToken = env('AWS_SESSION_TOKEN');
  return sessionToken === undefined
    ? { accessKeyId, secretAccessKey }
    : { accessKeyId, secretAccessKey, sessionToken };
}

/**
 * Whether nothing outside the options and the variables ferry reads could change where the
 * SDK sends a GET: FIPS or dual-stack endpoints (variables, or the shared files) and
 * endpoints or service sections in those files. A file is judged by its words, not parsed:
 * one that mentions any of them sends the source through the SDK.
 */
function plainAddressing(): boolean {
  for (const name of ['AWS_USE_FIPS_ENDPOINT', 'AWS_USE_DUALSTACK_ENDPOINT']) {
    const value = env(name);
    if (value !== undefined && value !== 'false') return false;
  }
  // The SDK reads a profile's settings from both shared files.
  for (const file of [
    env('AWS_CONFIG_FILE') ?? join(homedir(), '.aws', 'config'),
    env('AWS_SHARED_CREDENTIALS_FILE') ?? join(homedir(), '.aws', 'credentials'),
  ]) {
    let shared: string;
    try {
      shared = readFileSync(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      return false;
    }
    if (/fips|dualstack|endpoint|services|accelerate/i.test(shared)) return false;
  }
  return true;
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

/** An environment variable, with an empty value taken as unset. */
function env(name: string): string | undefined {
  const value = process.env[name];
  return value === undefined || value === '' ? undefined : value;
}
