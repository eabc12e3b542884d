/** The seed of the resume scenario's kill points: the same fractions in every run of the bench. */
export const KILL_POINT_SEED = 9;

/** The span the kill points fall in: not so early that nothing moved, nor so late that it finished. */
export const KILL_SPAN = { from: 0.05, to: 0.95 } as const;

// mulberry32: a tiny seeded PRNG, good enough to place points, the same on every machine.
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/**
 * `count` fractions in ascending order over {@link KILL_SPAN}, one at a seeded random place
 * in each of `count` equal slices of it, so they are spread over the whole span (no two in
 * one corner) yet not on a regular grid that could line up with part or checkpoint
 * boundaries. Rounded to 0.1 %.
 */
export function killPoints(count: number, seed: number = KILL_POINT_SEED): number[] {
  const random = mulberry32(seed);
  const width = (KILL_SPAN.to - KILL_SPAN.from) / count;
  return Array.from(
    { length: count },
    (_, i) => Math.round((KILL_SPAN.from + (i + random()) * width) * 1000) / 1000,
  );
}
