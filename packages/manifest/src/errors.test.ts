import { describe, expect, it } from 'vitest';
import { AbortError, FerryError, isFerryError, throwIfAborted } from './errors.js';

describe('FerryError', () => {
  it('keeps code, cause and remote details', () => {
    const cause = new Error('socket hang up');
    const err = new FerryError('FERRY_TRANSIENT', 'GET a.bin failed', {
      cause,
      statusCode: 503,
      key: 'a.bin',
      retryable: true,
    });
    expect(err.code).toBe('FERRY_TRANSIENT');
    expect(err.cause).toBe(cause);
    expect(err.statusCode).toBe(503);
    expect(err.retryable).toBe(true);
    expect(isFerryError(err, 'FERRY_TRANSIENT')).toBe(true);
    expect(isFerryError(err, 'FERRY_NOT_FOUND')).toBe(false);
    expect(isFerryError(cause)).toBe(false);
  });

  it('throws an AbortError carrying the signal reason: a FerryError of code FERRY_ABORTED', () => {
    const controller = new AbortController();
    expect(() => throwIfAborted(controller.signal)).not.toThrow();
    controller.abort('stop');
    let thrown: unknown;
    try {
      throwIfAborted(controller.signal);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(AbortError);
    expect(thrown).toMatchObject({ name: 'AbortError', code: 'FERRY_ABORTED', cause: 'stop' });
    expect(isFerryError(thrown, 'FERRY_ABORTED')).toBe(true);
    expect((thrown as AbortError).retryable).toBe(false);
  });
});
