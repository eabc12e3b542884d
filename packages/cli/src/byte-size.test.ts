import { describe, expect, it } from 'vitest';
import { formatBytes, parseSize } from './byte-size.js';

describe('parseSize', () => {
  it.each([
    ['1048576', 1048576],
    ['16MiB', 16 * 1024 ** 2],
    ['16mib', 16 * 1024 ** 2],
    ['64MB', 64_000_000],
    ['1GiB', 1024 ** 3],
    ['1.5GiB', 1.5 * 1024 ** 3],
    ['4 KiB', 4096],
    ['10kB', 10_000],
    ['512B', 512],
    ['2TiB', 2 * 1024 ** 4],
  ])('%s is %d bytes', (text, bytes) => {
    expect(parseSize(text, '--part-size')).toBe(bytes);
  });

  it.each(['', '0', '16XB', 'MiB', '-1MiB', '0.5B', '1e6', '16 MiBs', 'ten'])(
    'refuses %j naming the flag and the accepted forms',
    (text) => {
      expect(() => parseSize(text, '--part-size')).toThrow(
        expect.objectContaining({
          code: 'FERRY_USAGE',
          message: `--part-size: ${JSON.stringify(text)} is not a size`,
          hint: expect.stringContaining('16MiB, 64MB, 1GiB'),
        }),
      );
    },
  );
});

describe('formatBytes', () => {
  it.each([
    [0, '0 B'],
    [1023, '1023 B'],
    [1024, '1.00 KiB'],
    [1536, '1.50 KiB'],
    [16 * 1024 ** 2, '16.0 MiB'],
    [250 * 1024 ** 2, '250 MiB'],
    [1.2 * 1024 ** 3, '1.20 GiB'],
  ])('%d → %s', (bytes, text) => {
    expect(formatBytes(bytes)).toBe(text);
  });
});
