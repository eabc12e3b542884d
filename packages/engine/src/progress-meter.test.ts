import { afterEach, describe, expect, it, vi } from 'vitest';
import { PartTally, ProgressMeter } from './progress-meter.js';
import type { ProgressEvent } from './types.js';

afterEach(() => vi.restoreAllMocks());

/** A meter over a clock and a byte counter the test moves. */
function meter(totalBytes: number) {
  let now = 0;
  let bytes = 0;
  vi.spyOn(performance, 'now').mockImplementation(() => now);
  const events: ProgressEvent[] = [];
  const m = new ProgressMeter(
    totalBytes,
    () => ({ transferredBytes: bytes, active: [] }),
    (e) => events.push(e),
  );
  return {
    start(ms: number) {
      now = ms;
      m.start(60_000);
    },
    finish(ms: number, transferred: number) {
      now = ms;
      bytes = transferred;
      m.finish();
      return events.at(-1);
    },
    at(ms: number, transferred: number) {
      now = ms;
      bytes = transferred;
      m.tick();
      return events.at(-1);
    },
  };
}

describe('ProgressMeter', () => {
  it('shows no ETA until bytes have flowed for two seconds, then one from the flowing rate', () => {
    const MB = 1_000_000;
    const m = meter(400 * MB);
    // Workers start for 1.5 s: nothing moves.
    expect(m.at(0, 0)?.etaSeconds).toBeUndefined();
    expect(m.at(1_500, 0)?.etaSeconds).toBeUndefined();
    expect(m.at(2_000, 50 * MB)?.etaSeconds).toBeUndefined();
    expect(m.at(3_000, 150 * MB)?.etaSeconds).toBeUndefined();
    // 200 MB in the 2.5 s since the idle baseline: 80 MB/s, 200 MB to go.
    const settled = m.at(4_000, 200 * MB);
    expect(settled?.rate).toBeCloseTo(80 * MB);
    expect(settled?.etaSeconds).toBeCloseTo(2.5);
    expect(m.at(5_000, 400 * MB)?.etaSeconds).toBe(0);
  });
});

describe('ProgressMeter, a transfer over before its first tick', () => {
  it('reports the rate since it started, not 0 B/s', () => {
    const m = meter(16_000_000);
    m.start(1_000);
    expect(m.finish(1_200, 16_000_000)?.rate).toBeCloseTo(80_000_000);
  });
});

describe('PartTally', () => {
  it('counts bytes part by part and lists only the files part-way through', () => {
    const tally = new PartTally();
    tally.add('big.bin', 30, 10);
    tally.add('small.bin', 5, 5);
    expect(tally.sample()).toEqual({
      transferredBytes: 15,
      active: [{ path: 'big.bin', transferredBytes: 10, totalBytes: 30 }],
    });
    tally.add('big.bin', 30, 20);
    // A file already counted whole (its last part came in) is not brought back by a zero.
    tally.add('big.bin', 30, 0);
    tally.add('empty.bin', 0, 0);
    expect(tally.sample()).toEqual({ transferredBytes: 35, active: [] });
  });
});
