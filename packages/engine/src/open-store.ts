import { setTimeout as delay } from 'node:timers/promises';
import { AbortError, isFerryError, ManifestStore } from '@ferry/manifest';
import type { CacheLayout } from './cache-layout.js';

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
