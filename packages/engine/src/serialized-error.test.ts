import { AbortError, FerryError, type FerryErrorDetails } from '@ferry/manifest';
import { describe, expect, it } from 'vitest';
import { deserializeError, serializeError } from './serialized-error.js';

/** Through structured clone, as across a worker thread. */
const roundTrip = (error: unknown) => deserializeError(structuredClone(serializeError(error)));

describe('serialized errors', () => {
  it('keeps a FerryError’s code and the details it has, and no others', () => {
    const back = roundTrip(
      new FerryError('FERRY_THROTTLED', 'slow down', {
        statusCode: 503,
        key: 'a.bin',
        retryable: true,
      }),
    );
    expect(back).toBeInstanceOf(FerryError);
    expect(back).toMatchObject({
      code: 'FERRY_THROTTLED',
      message: 'slow down',
      statusCode: 503,
      key: 'a.bin',
      retryable: true,
    });
    expect((back as FerryError).hint).toBeUndefined();
  });

  it('keeps every detail a FerryError can carry, its cause included', () => {
    // Typed as every field: a detail added to FerryError fails to compile here until tested.
    const details: Required<FerryErrorDetails> = {
      hint: 'wait',
      statusCode: 503,
      key: 'a.bin',
      url: 's3://b/a.bin',
      requestId: 'req-1',
      remoteCode: 'SlowDown',
      retryable: true,
      retryAfterSeconds: 7,
      cause: new FerryError('FERRY_THROTTLED', 'slow down (attempt 1)', {
        statusCode: 503,
        retryAfterSeconds: 3,
        cause: Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }),
      }),
    };
    const back = roundTrip(new FerryError('FERRY_THROTTLED', 'slow down', details));
    expect(back).toBeInstanceOf(FerryError);
    const { cause: _cause, ...fields } = details;
    expect(back).toMatchObject(fields);
    const cause = back.cause;
    expect(cause).toBeInstanceOf(FerryError);
    expect(cause).toMatchObject({
      code: 'FERRY_THROTTLED',
      message: 'slow down (attempt 1)',
      statusCode: 503,
      retryAfterSeconds: 3,
    });
    // Under it, an error from elsewhere comes back plain: its message and stack, no code.
    const socket = (cause as FerryError).cause;
    expect(socket).toBeInstanceOf(Error);
    expect(socket).not.toBeInstanceOf(FerryError);
    expect(socket).toMatchObject({ message: 'read ECONNRESET' });
  });

  it('turns file system errors into FERRY_IO, aborts into AbortError, bugs into plain errors', () => {
    const enospc = Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
    expect(roundTrip(enospc)).toMatchObject({ code: 'FERRY_IO', message: enospc.message });
    expect(roundTrip(new AbortError('stop'))).toBeInstanceOf(AbortError);
    const bug = roundTrip(new TypeError('x is undefined'));
    expect(bug).not.toBeInstanceOf(FerryError);
    expect(bug.message).toBe('x is undefined');
  });
});
