import { describe, expect, it } from 'vitest';
import { defaultWorkers } from './part-pool.js';

const MiB = 2 ** 20;

describe('defaultWorkers', () => {
  it.each([
    // bytes, files, concurrency, cores → workers
    [10 * MiB, 3, 16, 16, 1], // a small update: one worker is enough
    [768 * MiB, 3, 16, 2, 2], // a model on two cores: both
    [768 * MiB, 3, 16, 16, 4], // 256 MiB of work each (a file counts as 1 MiB more)
    [64 * MiB, 1000, 16, 2, 2], // many small files count as work
    [100 * 1024 * MiB, 40, 16, 64, 8], // two requests in flight each at least
    [100 * 1024 * MiB, 40, 256, 64, 64], // a large box is not capped by a constant
    [0, 0, 1, 8, 1],
  ])(
    '%d bytes in %d files, concurrency %d, %d cores: %d',
    (bytes, files, concurrency, cores, want) => {
      expect(defaultWorkers({ bytes, files }, concurrency, cores)).toBe(want);
    },
  );
});
