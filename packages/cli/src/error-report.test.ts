import { AbortError, FerryError } from '@ferry/manifest';
import { describe, expect, it } from 'vitest';
import { describeError, isAbort, reportError } from './error-report.js';
import { fakeIo } from './test-io.js';

describe('describeError', () => {
  it('maps usage-type codes to exit 2 and the rest to exit 1', () => {
    for (const code of [
      'FERRY_USAGE',
      'FERRY_BAD_CONFIG',
      'FERRY_BAD_SOURCE',
      'FERRY_BAD_REF',
    ] as const) {
      expect(describeError(new FerryError(code, 'x')).exitCode).toBe(2);
    }
    expect(describeError(new FerryError('FERRY_NOT_FOUND', 'x')).exitCode).toBe(1);
    expect(describeError(new AbortError('stop'))).toMatchObject({
      code: 'FERRY_ABORTED',
      exitCode: 130,
    });
  });

  it('keeps a multi-line message to one line', () => {
    expect(describeError(new FerryError('FERRY_IO', 'disk\n  failed')).message).toBe('disk failed');
  });

  it('reports a local system error with the path to check, not as a bug', () => {
    const error = Object.assign(new Error("ENOSPC: no space left on device, write '/c/x'"), {
      code: 'ENOSPC',
      syscall: 'write',
      path: '/c/x',
    });
    expect(describeError(error)).toEqual({
      code: 'FERRY_IO',
      message: "ENOSPC: no space left on device, write '/c/x'",
      hint: 'Check /c/x: permissions, free space and that the disk is mounted.',
      exitCode: 1,
    });
  });

  it('calls anything unexpected a bug', () => {
    expect(describeError(new TypeError('x is undefined'))).toEqual({
      code: 'FERRY_INTERNAL',
      message: 'x is undefined',
      hint: 'This is a bug in ferry; rerun with --debug and report the output.',
      exitCode: 1,
    });
  });

  it('recognises aborts from the engine and from the platform', () => {
    expect(isAbort(new AbortError())).toBe(true);
    expect(isAbort(new DOMException('stop', 'AbortError'))).toBe(true);
    expect(isAbort(new Error('x'))).toBe(false);
  });
});

describe('reportError', () => {
  it('prints the message, the hint and, with --debug, the chain of causes', () => {
    const fake = fakeIo();
    const cause = new Error('socket hang up');
    const code = reportError(
      new FerryError('FERRY_TRANSIENT', 'Connection failed', { cause, hint: 'Retry.' }),
      {
        io: fake.io,
        json: false,
        debug: true,
      },
    );
    expect(code).toBe(1);
    const lines = fake.stderr().split('\n');
    expect(lines.slice(0, 3)).toEqual([
      'ferry: Connection failed',
      'hint: Retry.',
      'FerryError: Connection failed',
    ]);
    expect(fake.stderr()).toContain('caused by: Error: socket hang up\n');
  });
});
