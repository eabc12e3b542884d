import { resolve } from 'node:path';
import { hasUriScheme, parseSourceUri } from '@ferry/adapters';
import { FerryError } from '@ferry/manifest';
import { resolveCacheRoot } from './cache-root.js';
import type { CliIo } from './cli-io.js';
import { loadModelConfig, type ModelConfig } from './model-config.js';
import { splitSourceRef } from './source-ref.js';

/** What to pull and where: the engine's `source`, `ref`, `root` and `subdir`. */
export interface PullTarget {
  source: string;
  ref?: string;
  root: string;
  /** Set when model.json's `download_files_from` names the folder. */
  subdir?: string;
  config?: ModelConfig;
}

export interface PullTargetOptions {
  /** The command, named in usage errors (`pull`, `bake`). */
  command: string;
  /** The `<source>[@<ref>]` argument, or `@<ref>` alone, or nothing (model.json). */
  arg?: string;
  /** `--to` */
  to?: string;
  /** `--config` */
  config?: string;
  /** `--source`: the store model.json's folder is in. */
  source?: string;
  io: CliIo;
  /** For tests: whether the system cache directory may be written. */
  isWritable?: (path: string) => Promise<boolean>;
}

/**
 * Works out the source, ref and cache root of a pull from the argument, the flags,
 * model.json and the environment:
 *
 * - `<source>[@<ref>]` names the whole source; files land under its default folder.
 * - Without it (or with `@<ref>` alone), the source is `<store>/<download_files_from>`,
 *   the store being `--source`, model.json's `source`, or `FERRY_SOURCE`; files land
 *   under `download_files_from`.
 * - Root: `--to`, `download_files_to`, `FERRY_CACHE`, then the default cache.
 */
export async function resolvePullTarget(options: PullTargetOptions): Promise<PullTarget> {
  const { io } = options;
  const config = await loadModelConfig({
    ...(options.config === undefined ? {} : { path: options.config }),
    cwd: io.cwd,
  });
  const split = options.arg === undefined ? { source: '' } : splitSourceRef(options.arg);
  const ref = split.ref;
  let source: string;
  let subdir: string | undefined;
  if (split.source !== '') {
    if (options.source !== undefined) {
      throw usage(
        options.command,
        '--source names the store of model.json\'s "download_files_from"; with a <source> argument, leave it out',
        'Use either `ferry pull s3://bucket/folder` or `ferry pull --source s3://bucket --config model.json`.',
      );
    }
    source = localToAbsolute(split.source, io.cwd);
  } else {
    const store = options.source ?? config?.source ?? nonEmpty(io.env.FERRY_SOURCE);
    const folder = config?.downloadFilesFrom;
    if (store === undefined) {
      throw usage(
        options.command,
        folder === undefined
          ? 'no source: give one, as in `ferry pull s3://bucket/folder`'
          : `${config?.path} sets "download_files_from" but not where the store is`,
        folder === undefined
          ? 'Give `ferry pull <source>`, or a model.json with "download_files_from" and a store (--source, its "source" key, or FERRY_SOURCE).'
          : 'Pass --source s3://bucket, add "source" to model.json, or set FERRY_SOURCE.',
      );
    }
    const base = localToAbsolute(store, io.cwd).replace(/\/+$/, '');
    source = folder === undefined || folder === '' ? base : `${base}/${folder}`;
    if (folder !== undefined) subdir = folder;
  }
  // Fail on a malformed URI before anything is created on disk.
  parseSourceUri(source);
  const root = await resolveCacheRoot({
    ...(options.to === undefined ? {} : { flag: options.to }),
    ...(config?.downloadFilesTo === undefined ? {} : { config: config.downloadFilesTo }),
    env: io.env,
    cwd: io.cwd,
    ...(options.isWritable === undefined ? {} : { isWritable: options.isWritable }),
  });
  return {
    source,
    ...(ref === undefined ? {} : { ref }),
    root,
    ...(subdir === undefined ? {} : { subdir }),
    ...(config === undefined ? {} : { config }),
  };
}

/** A local path resolves against the CLI's working directory, not the process's. */
function localToAbsolute(source: string, cwd: string): string {
  return hasUriScheme(source) ? source : resolve(cwd, source);
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}

function usage(command: string, message: string, hint: string): FerryError {
  return new FerryError('FERRY_USAGE', `${command}: ${message}`, { hint });
}
