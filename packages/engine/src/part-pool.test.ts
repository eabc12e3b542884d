import { describe, expect, it } from 'vitest';
import { defaultWorkers, hashingWorkers } from './part-pool.js';

const MiB = 2 ** 20;

describe('defaultWorkers', () => {
  it.each([
    // bytes, concurrency, cores → workers
    [10 * MiB, 16, 16, 1], // a small update: one worker is enough
    [768 * MiB, 16, 2, 2], // a model on two cores: both
    [768 * MiB, 16, 16, 3], // 256 MiB of work each
    [64 * MiB, 16, 2, 1], // many small files: their cost is the main thread's, not a worker's
    [100 * 1024 * MiB, 16, 64, 8], // two requests in flight each at least
    [100 * 1024 * MiB, 256, 64, 64], // a large box is not capped by a constant
    [0, 1, 8, 1],
  ])('%d bytes, concurrency %d, %d cores: %d', (bytes, concurrency, cores, want) => {
    expect(defaultWorkers({ bytes }, concurrency, cores)).toBe(want);
  });
});

describe('hashingWorkers', () => {
  it.each([
    // bytes, cores → workers
    [4 * MiB, 16, 1], // a small publish boots one thread, not one per core
    [768 * MiB, 2, 2],
    [768 * MiB, 16, 3],
    [100 * 1024 * MiB, 64, 64], // every core for a large model
    [0, 8, 1],
  ])('%d bytes, %d cores: %d', (bytes, cores, want) => {
    expect(hashingWorkers(bytes, cores)).toBe(want);
  });
});
