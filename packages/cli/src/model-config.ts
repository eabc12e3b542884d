import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { FerryError, normalizePath } from '@ferry/manifest';

/** What a `model.json` tells ferry. Other keys in the file are left to other tools. */
export interface ModelConfig {
  /** Absolute path of the file read. */
  path: string;
  /** `source`: the store the folder is in (`s3://bucket`), when the file names it. */
  source?: string;
  /** `download_files_from`: the folder in the store, and the folder under the cache root. */
  downloadFilesFrom?: string;
  /** `download_files_to`: the cache root, absolute (relative values resolve against the file's folder). */
  downloadFilesTo?: string;
  /** `include` / `exclude`: globs selecting the files to pull, as `--include` / `--exclude`. */
  include?: string[];
  exclude?: string[];
}

export interface LoadModelConfigOptions {
  /** `--config`: must exist. Without it, `<cwd>/model.json` is read when present. */
  path?: string;
  cwd: string;
}

const KEYS = ['source', 'download_files_from', 'download_files_to'] as const;

/**
 * Reads and checks `model.json`. Unknown keys are ignored (the file is shared with other
 * tools); the keys ferry reads must be strings.
 *
 * @throws FerryError `FERRY_BAD_CONFIG` naming the file, and the key when one is wrong.
 */
export async function loadModelConfig(
  options: LoadModelConfigOptions,
): Promise<ModelConfig | undefined> {
  const explicit = options.path !== undefined;
  const path = resolve(options.cwd, options.path ?? 'model.json');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (!explicit && code === 'ENOENT') return undefined;
    throw new FerryError('FERRY_BAD_CONFIG', `cannot read ${path} (${code ?? String(error)})`, {
      key: path,
      cause: error,
      hint: 'Check the path given to --config.',
    });
  }
  return parseModelConfig(text, path);
}

/** Checks the text of a model.json read from `path`. */
export function parseModelConfig(text: string, path: string): ModelConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw bad(path, `is not valid JSON: ${reason}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw bad(path, 'must hold a JSON object ({"download_files_from": …})');
  }
  const record = json as Record<string, unknown>;
  const values: Partial<Record<(typeof KEYS)[number], string>> = {};
  for (const key of KEYS) {
    const value = record[key];
    if (value === undefined) continue;
    if (typeof value !== 'string') {
      throw bad(path, `"${key}" must be a string, not ${describe(value)}`, key);
    }
    values[key] = value;
  }
  const config: ModelConfig = { path };
  for (const key of ['include', 'exclude'] as const) {
    const value = record[key];
    if (value === undefined) continue;
    if (!Array.isArray(value) || !value.every((g): g is string => typeof g === 'string')) {
      throw new FerryError(
        'FERRY_BAD_CONFIG',
        `${path}: "${key}" must be an array of glob strings, not ${describe(value)}`,
        { key, hint: `Fix "${key}" in ${path}, e.g. ["*.safetensors", "tokenizer/**"].` },
      );
    }
    config[key] = value;
  }
  if (values.source !== undefined) {
    if (values.source.trim() === '') throw bad(path, '"source" is empty', 'source');
    config.source = values.source;
  }
  if (values.download_files_from !== undefined) {
    config.downloadFilesFrom = checkFolder(path, values.download_files_from);
  }
  if (values.download_files_to !== undefined) {
    if (values.download_files_to.trim() === '') {
      throw bad(path, '"download_files_to" is empty', 'download_files_to');
    }
    config.downloadFilesTo = resolve(dirname(path), values.download_files_to);
  }
  return config;
}

/** The folder is both an object prefix and a local path: it gets the manifest path rules. */
function checkFolder(path: string, value: string): string {
  const trimmed = value.replace(/\/+$/, '');
  if (trimmed === '') return '';
  try {
    return normalizePath(trimmed);
  } catch {
    throw bad(
      path,
      `"download_files_from" must be a relative folder like "models/llama", not ${JSON.stringify(value)}`,
      'download_files_from',
    );
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value} (${JSON.stringify(value)})`;
}

function bad(path: string, what: string, key?: string): FerryError {
  return new FerryError('FERRY_BAD_CONFIG', `${path}: ${what}`, {
    key: key ?? path,
    hint:
      key === undefined
        ? 'Fix the file, or point --config at another one.'
        : `Fix "${key}" in ${path}; ferry reads "source", "download_files_from" and "download_files_to" as strings.`,
  });
}
