import { constants } from 'node:fs';
import { access, chmod, cp, mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { AbortError, FerryError, isFerryError } from '@ferry/manifest';
import { CacheIndex } from '@ferry/manifest/store';
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
): Promise<CacheIndex> {
  let told = false;
  for (;;) {
    try {
      return await CacheIndex.open(layout.dbDir);
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

/** A store opened for one command, and whether writes can reach the cache root. */
export interface OpenedStore {
  store: CacheIndex;
  /**
   * The root cannot be written (a read-only image or mount) or the command must not write
   * (a dry run): `store` is a private copy of the root's store, dropped by `close()`.
   */
  readOnly: boolean;
  close(): Promise<void>;
}

/**
 * Whether `path` can be written, as the kernel says (EROFS, EACCES). A path that does not
 * exist yet is created with its missing parents: the nearest folder that exists decides.
 */
async function writable(path: string): Promise<boolean> {
  let target = path;
  while (!(await exists(target))) {
    const parent = dirname(target);
    if (parent === target) return false;
    target = parent;
  }
  return access(target, constants.W_OK).then(
    () => true,
    () => false,
  );
}

function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/**
 * Opens the store a pull works with. A root that cannot be written (a container's
 * read-only root filesystem, an image mounted read-only, another user's cache) and a dry
 * run get a private copy of the store in the system's temp folder instead: the pull can
 * then still verify and plan, and nothing under the root is ever written.
 */
export async function openPullStore(
  layout: CacheLayout,
  options: {
    wait: boolean;
    dryRun: boolean;
    signal?: AbortSignal;
    onWait?: (holder: string) => void;
  },
): Promise<OpenedStore> {
  const root = await stat(layout.root).catch(() => undefined);
  if (root !== undefined && !root.isDirectory()) {
    throw new FerryError('FERRY_IO', `the cache root ${layout.root} is a file, not a folder`, {
      key: layout.root,
      hint: 'Give --to a folder (ferry creates it when it does not exist).',
    });
  }
  if (!options.dryRun && (await writable(layout.root))) {
    await mkdir(layout.stateDir, { recursive: true });
    if (await writable(layout.dbDir)) {
      const store = await openStore(layout, options);
      return { store, readOnly: false, close: () => store.close() };
    }
  }
  return openSnapshot(layout);
}

/** A private copy of the root's store (or an empty one), removed when closed. */
async function openSnapshot(layout: CacheLayout): Promise<OpenedStore> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-store-'));
  const copy = join(dir, 'db');
  const exists = await stat(layout.dbDir).then(
    (st) => st.isDirectory(),
    () => false,
  );
  // The LOCK file says nothing about the copy: LevelDB takes its own.
  if (exists) {
    await cp(layout.dbDir, copy, { recursive: true, filter: (src) => !src.endsWith('LOCK') });
    // The copy keeps the originals' modes: a read-only image's files would stay read-only.
    await chmod(copy, 0o700);
    // (Its manifests folder too: a folder must stay searchable.)
    for (const entry of await readdir(copy, { withFileTypes: true })) {
      await chmod(join(copy, entry.name), entry.isDirectory() ? 0o700 : 0o600);
    }
  }
  try {
    const store = await CacheIndex.open(copy);
    return {
      store,
      readOnly: true,
      close: async () => {
        await store.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/**
 * Opens the store of a cache root that must already exist (status, verify, gc): a typo in
 * the path gets a clear error instead of a new empty cache. Fails fast when locked. With
 * `readOnlyCopy`, a store that cannot be opened for writing — a read-only image, a pull
 * holding it, a full disk — is read through a private copy in the temp folder instead
 * (`status` and `verify` always answer).
 */
export async function openExistingStore(
  root: string,
  options: { readOnlyCopy: boolean } = { readOnlyCopy: false },
): Promise<OpenedStore> {
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
  if (options.readOnlyCopy && !(await writable(layout.dbDir))) return openSnapshot(layout);
  try {
    const store = await openStore(layout, { wait: false });
    return { store, readOnly: false, close: () => store.close() };
  } catch (error) {
    // A reader need not wait for a pull, nor fail on a full disk: it reads a copy instead.
    const readable =
      isFerryError(error, 'FERRY_STORE_LOCKED') || isFerryError(error, 'FERRY_STORE_FAILED');
    if (!options.readOnlyCopy || !readable) throw error;
    return openSnapshot(layout);
  }
}
