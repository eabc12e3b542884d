/**
 * `Promise.all(items.map(fn))` with at most `limit` calls running at once: a plan over a
 * hundred thousand files would otherwise hold a hundred thousand pending stats and closures.
 * Results keep the order of `items`; the first rejection rejects (the running calls finish).
 */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return results;
}
