import { stat } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { AbortError, FerryError, isFerryError, ManifestStore } from '@ferry/manifest';
import { type CacheLayout, cacheLayout } from './cache-layout.js';

/** How often a waiting pull tries the lock again. */
const LOCK_POLL_MS = 250;

/**
 * Opens the root's store, which is also the root's lock: LevelDB lets one process in at a
 * time and the lock dies with its holder, so a killed pull never blocks the next one.
 * With `wait`, polls until the holder is done (or `signal` aborts); otherwise the
 * FERRY_STORE_LOCKED error, naming the holder, goes to the caller.
 */
export async function openStore(
  layout: CacheLayout,
  options: { wait: boolean; signal?: AbortSignal; onWait?: (holder: string) => void },
): Promise<ManifestStore> {
  let told = false;
  for (;;) {
    try {
      return await ManifestStore.open(layout.dbDir);
    } catch (error) {
      if (!options.wait || !isFerryError(error, 'FERRY_STORE_LOCKED')) throw error;
      if (!told) {
        options.onWait?.(error.message);
        told = true;
      }
      try {
        await delay(LOCK_POLL_MS, undefined, { signal: options.signal });
      } catch {
        throw new AbortError(options.signal?.reason);
      }
    }
  }
}

/**
 * Opens the store of a cache root that must already exist (status, verify, gc): a typo in
 * the path gets a clear error instead of a new empty cache. Fails fast when locked.
 */
export async function openExistingStore(root: string): Promise<ManifestStore> {
  const layout = cacheLayout(root);
  const found = await stat(layout.dbDir).then(
    (st) => st.isDirectory(),
    () => false,
  );
  if (!found) {
    throw new FerryError('FERRY_NOT_FOUND', `no ferry cache at ${root} (no ${layout.dbDir})`, {
      key: root,
      hint: 'Name the directory given to `ferry pull --to`, or pull into it first.',
    });
  }
  return openStore(layout, { wait: false });
}
