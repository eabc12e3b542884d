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
