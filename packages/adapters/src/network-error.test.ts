import { isFerryError } from '@ferry/manifest';
import { describe, expect, it } from 'vitest';
import { networkError } from './network-error.js';
import { s3Error } from './s3-errors.js';

const context = {
  endpoint: 'http://127.0.0.1:9000',
  key: 'a.bin',
  url: 'http://127.0.0.1:9000/a.bin',
};

describe('networkError', () => {
  it('retries what a socket raises', () => {
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    const mapped = networkError(reset, context);
    expect(isFerryError(mapped, 'FERRY_TRANSIENT') && mapped.retryable).toBe(true);
    // Node's HTTP client raises TypeErrors with a code for bad headers: still its failure.
    const header = Object.assign(new TypeError('Invalid character in header content'), {
      code: 'ERR_INVALID_CHAR',
    });
    expect(isFerryError(networkError(header, context), 'FERRY_TRANSIENT')).toBe(true);
  });

  it('fails at once on a certificate it does not trust, naming what to do', () => {
    const https = { ...context, endpoint: 'https://minio.lan:9000' };
    const untrusted = Object.assign(new Error('self-signed certificate'), {
      code: 'DEPTH_ZERO_SELF_SIGNED_CERT',
    });
    const mapped = networkError(untrusted, https);
    expect(isFerryError(mapped, 'FERRY_BAD_SOURCE') && !mapped.retryable).toBe(true);
    expect(mapped.message).toBe(
      'The TLS certificate of https://minio.lan:9000 is not trusted (DEPTH_ZERO_SELF_SIGNED_CERT)',
    );
    expect(isFerryError(mapped) && mapped.hint).toContain('NODE_EXTRA_CA_CERTS');
    const wrongName = Object.assign(
      new Error("Hostname/IP does not match certificate's altnames"),
      {
        code: 'ERR_TLS_CERT_ALTNAME_INVALID',
      },
    );
    const named = networkError(wrongName, https);
    expect(isFerryError(named, 'FERRY_BAD_SOURCE') && named.hint).toContain(
      'a name it was issued for',
    );
  });

  it('fails at once on an https:// endpoint that answers in plain HTTP, naming http://', () => {
    const https = { ...context, endpoint: 'https://127.0.0.1:9000' };
    const openssl =
      'write EPROTO 80AC8B2CDA7F0000:error:0A00010B:SSL routines:ssl3_get_record:wrong version number';
    for (const error of [
      Object.assign(new Error(openssl), { code: 'EPROTO' }),
      Object.assign(new Error('wrong version number'), { code: 'ERR_SSL_WRONG_VERSION_NUMBER' }),
    ]) {
      const mapped = networkError(error, https);
      expect(isFerryError(mapped, 'FERRY_BAD_SOURCE') && !mapped.retryable).toBe(true);
      expect(mapped.message).toMatch(/^https:\/\/127\.0\.0\.1:9000 does not speak TLS/);
      expect(isFerryError(mapped) && mapped.hint).toBe(
        'The port answers in plain HTTP: use http://127.0.0.1:9000 in the source URI.',
      );
    }
    // Other protocol errors are a connection that broke, and retried.
    const other = Object.assign(new Error('decryption failed or bad record mac'), {
      code: 'EPROTO',
    });
    expect(isFerryError(networkError(other, https), 'FERRY_TRANSIENT')).toBe(true);
  });

  it('lets a bug in the code through, neither retried nor called a broken connection', () => {
    for (const bug of [
      new TypeError('s3.S3Client is not a constructor'),
      new RangeError('Invalid array length'),
      new ReferenceError('x is not defined'),
    ]) {
      expect(networkError(bug, context)).toBe(bug);
      expect(
        s3Error(bug, {
          key: 'a.bin',
          url: 's3://b/a.bin',
          bucket: 'b',
          endpoint: context.endpoint,
          signal: undefined,
        }),
      ).toBe(bug);
    }
  });
});
