import { resolve } from 'node:path';
import { findCacheRoot, resolveCacheRoot } from '../cache-root.js';
import type { CliIo } from '../cli-io.js';
import { loadModelConfig } from '../model-config.js';

/** Flags of the commands that work on a cache root. */
export const CACHE_DIR_FLAGS = { config: { type: 'string' } } as const;

export const CACHE_DIR_HELP = `<dir> is a cache root (the --to of a pull) or any folder inside one. Without it:
model.json's download_files_to (--config, or ./model.json), FERRY_CACHE,
/var/cache/ferry when writable, else ~/.cache/ferry.`;

/** The cache root a `status`/`verify`/`gc`/`resume` works on. */
export async function cacheDir(
  dir: string | undefined,
  config: string | undefined,
  io: CliIo,
): Promise<string> {
  if (dir !== undefined) return findCacheRoot(resolve(io.cwd, dir));
  const model = await loadModelConfig({
    ...(config === undefined ? {} : { path: config }),
    cwd: io.cwd,
  });
  return resolveCacheRoot({
    ...(model?.downloadFilesTo === undefined ? {} : { config: model.downloadFilesTo }),
    env: io.env,
    cwd: io.cwd,
  });
}
