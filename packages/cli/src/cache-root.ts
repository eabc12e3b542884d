import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';

/** The system-wide cache, used when the user may write it. */
export const SYSTEM_CACHE_ROOT = '/var/cache/ferry';

export interface CacheRootOptions {
  /** `--to` or a `<dir>` argument. */
  flag?: string;
  /** `download_files_to` from model.json, already absolute. */
  config?: string;
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
  /** Whether ferry may create or write `path`. @default a check of the real file system */
  isWritable?: (path: string) => Promise<boolean>;
}

/**
 * The cache root: `--to`, then model.json's `download_files_to`, then `FERRY_CACHE`, then
 * `/var/cache/ferry` when writable, else `$XDG_CACHE_HOME/ferry` or `~/.cache/ferry`.
 */
export async function resolveCacheRoot(options: CacheRootOptions): Promise<string> {
  const { env, cwd } = options;
  if (options.flag !== undefined) return resolve(cwd, options.flag);
  if (options.config !== undefined) return options.config;
  const fromEnv = env.FERRY_CACHE;
  if (fromEnv !== undefined && fromEnv !== '') return resolve(cwd, fromEnv);
  const isWritable = options.isWritable ?? writable;
  if (await isWritable(SYSTEM_CACHE_ROOT)) return SYSTEM_CACHE_ROOT;
  const xdg = env.XDG_CACHE_HOME;
  if (xdg?.startsWith('/')) return join(xdg, 'ferry');
  return join(env.HOME ?? cwd, '.cache', 'ferry');
}

/**
 * The cache root holding `dir`: `dir` itself or the nearest folder above it with a
 * `.ferry` directory, so `ferry status /cache/models/m` means the cache `/cache`. When
 * none has one, `dir` (and the command reports that no cache is there).
 */
export async function findCacheRoot(dir: string): Promise<string> {
  const start = resolve(dir);
  for (let current = start; ; current = dirname(current)) {
    if (await isDirectory(join(current, '.ferry'))) return current;
    if (dirname(current) === current) return start;
  }
}

async function isDirectory(path: string): Promise<boolean> {
  return stat(path).then(
    (st) => st.isDirectory(),
    () => false,
  );
}

/** Writable if it exists and may be written, or does not exist and its parent may be. */
async function writable(path: string): Promise<boolean> {
  const ok = (p: string) =>
    access(p, constants.W_OK).then(
      () => true,
      () => false,
    );
  if (await isDirectory(path)) return ok(path);
  const exists = await stat(path).then(
    () => true,
    () => false,
  );
  return !exists && (await ok(dirname(path)));
}
