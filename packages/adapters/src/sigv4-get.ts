import { createHash, createHmac } from 'node:crypto';

/** Static credentials of the moment (a provider may hand out new ones later). */
export interface SigningCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string | undefined;
}

/** A request as SigV4 sees it: `path` escaped as sent, `headers` with lower-case names. */
export interface RequestToSign {
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
}

/**
 * AWS Signature Version 4 for a GET with an empty payload, as the S3 client signs it
 * (`signingEscapePath: false`, the payload hash taken from `x-amz-content-sha256`; checked
 * header for header against the SDK in s3-direct-get.test.ts). The signing key depends only
 * on the day, the region and the secret, so it is derived once a day rather than per
 * request: one SHA-256 and one HMAC per request, against the SDK signer's four HMACs and
 * its middleware of promises, where a pull of many small files sends one request per file.
 */
export class SigV4Get {
  readonly #region: string;
  readonly #service: string;
  #key: { day: string; secret: string; key: Buffer } | undefined;

  constructor(region: string, service = 's3') {
    this.#region = region;
    this.#service = service;
  }

  /** `request`'s headers plus `x-amz-date`, the session token when there is one, and `authorization`. */
  sign(request: RequestToSign, credentials: SigningCredentials, at: Date): Record<string, string> {
    const amzDate = at
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d{3}/, '');
    const day = amzDate.slice(0, 8);
    const headers: Record<string, string> = { ...request.headers, 'x-amz-date': amzDate };
    if (credentials.sessionToken !== undefined) {
      headers['x-amz-security-token'] = credentials.sessionToken;
    }
    const names = Object.keys(headers).sort();
    const signedHeaders = names.join(';');
    const canonical = [
      'GET',
      request.path,
      canonicalQuery(request.query),
      ...names.map((name) => `${name}:${(headers[name] ?? '').trim().replace(/\s+/g, ' ')}`),
      '',
      signedHeaders,
      headers['x-amz-content-sha256'] ?? EMPTY_SHA256,
    ].join('\n');
    const scope = `${day}/${this.#region}/${this.#service}/aws4_request`;
    const stringToSign = [
      'AWS4-HMAC-SHA256',
      amzDate,
      scope,
      createHash('sha256').update(canonical).digest('hex'),
    ].join('\n');
    const signature = createHmac('sha256', this.#signingKey(day, credentials.secretAccessKey))
      .update(stringToSign)
      .digest('hex');
    headers.authorization = `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
    return headers;
  }

  #signingKey(day: string, secret: string): Buffer {
    const cached = this.#key;
    if (cached !== undefined && cached.day === day && cached.secret === secret) return cached.key;
    let key = hmac(`AWS4${secret}`, day);
    for (const part of [this.#region, this.#service, 'aws4_request']) key = hmac(key, part);
    this.#key = { day, secret, key };
    return key;
  }
}

/** SHA-256 of an empty payload. */
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

/** A query string as SigV4 signs it, which is also a valid one to send: sorted and escaped. */
export function canonicalQuery(query: Record<string, string>): string {
  return Object.keys(query)
    .sort()
    .map((k) => `${escapeUri(k)}=${escapeUri(query[k] ?? '')}`)
    .join('&');
}

/**
 * RFC 3986 escaping, as SigV4 wants query keys and values, and as the SDK escapes a key's
 * path segments and the bucket.
 */
export function escapeUri(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}
