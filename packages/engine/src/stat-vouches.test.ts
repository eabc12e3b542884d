import { describe, expect, it } from 'vitest';
import { statVouches } from './stat-vouches.js';

const record = { size: 100, mtimeMs: 1_764_561_234_567.891, digest: `sha256:${'a'.repeat(64)}` };

describe('statVouches', () => {
  it.each([
    [100, 1_764_561_234_567.891, true], // as ferry left it
    [100, 1_764_561_234_000, true], // an image layer cut it to whole seconds
    [101, 1_764_561_234_000, false], // another size
    [100, 1_764_561_235_000, false], // another second
    [100, 1_764_561_234_567, false], // milliseconds kept but not the same: something touched it
    [100, 1_764_561_234_567.892, false],
  ])('size %d, mtime %d: %s', (size, mtimeMs, want) => {
    expect(statVouches(record, { size, mtimeMs })).toBe(want);
  });
});
