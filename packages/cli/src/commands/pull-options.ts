import type { PullOptions } from '@ferry/engine';
import { normalizePath } from '@ferry/manifest';
import { parseSize } from '../byte-size.js';
import type { CommandContext } from '../command.js';
import { parseChoice, parseCount, parseSeconds, usageError } from '../command-args.js';
import type { ModelConfig } from '../model-config.js';
import { resolvePullTarget } from '../pull-target.js';
import { shellQuote } from '../shell-quote.js';

/** Flags `pull` and `bake` share. */
export const PULL_FLAGS = {
  to: { type: 'string' },
  config: { type: 'string' },
  source: { type: 'string' },
  concurrency: { type: 'string' },
  workers: { type: 'string' },
  'part-size': { type: 'string' },
  verify: { type: 'string' },
  durable: { type: 'boolean' },
  'stall-timeout': { type: 'string' },
  'hedge-after': { type: 'string' },
  offline: { type: 'boolean' },
  'allow-empty': { type: 'boolean' },
  mirror: { type: 'string', multiple: true },
  include: { type: 'string', multiple: true },
  exclude: { type: 'string', multiple: true },
  only: { type: 'string', multiple: true },
  bwlimit: { type: 'string' },
  'no-fallback': { type: 'boolean' },
} as const;

export const PULL_FLAGS_HELP = `  --to <dir>            cache root; files land in <dir>/<folder>/, state in <dir>/.ferry/
                        (default: model.json's download_files_to, FERRY_CACHE,
                        /var/cache/ferry if writable, else ~/.cache/ferry)
  --config <file>       model.json to read (default: ./model.json when present)
  --source <uri>        the store model.json's download_files_from is in (s3://bucket);
                        also model.json's "source" key or FERRY_SOURCE
  --concurrency <n>     ranged requests in flight (default 16, or 2 per core above 8)
  --workers <n>         worker threads that fetch, hash and write, beside the main
                        thread (default: a thread per core, the main thread one of
                        them, no more than the transfer can use; 0: the main thread
                        alone; also FERRY_WORKERS)
  --part-size <size>    bytes per request for unpublished prefixes: 16MiB, 64MB, 1GiB
                        or bytes (default 16MiB; a published manifest's own size wins)
  --verify <mode>       how files already in the cache are trusted:
                        size (right size), stat (size and mtime as recorded, default),
                        hash (re-hash everything)
  --durable             make each file durable on disk (fsync) before it appears, so a
                        power cut cannot leave a recorded file incomplete; costs the disk's
                        write time (also FERRY_DURABLE=1; bake always does)
  --stall-timeout <s>   a body silent this long is read again from its last byte
                        (default 10)
  --hedge-after <s>     a body silent this long while the others flow is raced by a
                        second request for its rest (default 2; 0: never)
  --offline             no network: serve the version this cache holds for the ref (or a
                        version id), or fail naming what is missing (also FERRY_OFFLINE=1)
  --no-fallback         when the source cannot be reached, fail instead of serving the
                        version this cache holds for the ref (with a warning)
  --allow-empty         accept a source with no files (else exit 1: a typo'd prefix lists none)
  --mirror <url>        read content through this HTTP cache or CDN first (the published
                        prefix's URL through it), falling back to the source; repeatable,
                        also FERRY_MIRRORS=url,url
  --include <glob>      pull only the files matching a glob (*.safetensors, onnx/**);
                        repeatable; a glob without "/" matches names in any folder
  --exclude <glob>      do not pull the files matching a glob (wins over --include);
                        repeatable. The folder then holds that subset, and later
                        verify, status and gc judge it by the same globs
  --bwlimit <rate>      cap the pull's download rate, all requests together: 50MiB, 10MB/s
                        (also FERRY_BWLIMIT)
  --only <path>         pull this one file of the version (its path in the folder, exact);
                        repeatable, combines with --include`;

/** Flags every command takes, for the help texts. */
export const COMMON_FLAGS_HELP = `  --json                one JSON object per line on stdout (events, then the result)
  -q, --quiet           print errors only
  --debug               stack traces and retry details (also FERRY_DEBUG=1)
  -h, --help            this help`;

export interface PullFlagValues {
  to?: string;
  config?: string;
  source?: string;
  concurrency?: string;
  workers?: string;
  'part-size'?: string;
  verify?: string;
  durable?: boolean;
  'stall-timeout'?: string;
  'hedge-after'?: string;
  offline?: boolean;
  'no-fallback'?: boolean;
  'allow-empty'?: boolean;
  mirror?: string[];
  include?: string[];
  exclude?: string[];
  only?: string[];
  bwlimit?: string;
}

/** The engine options for `pull` or `bake`, and the resume hint for an interrupt. */
export async function pullOptionsFrom(
  command: string,
  arg: string | undefined,
  values: PullFlagValues,
  ctx: CommandContext,
): Promise<PullOptions> {
  // Flag values first: a typo in --part-size is reported before any file is read.
  const partSize =
    values['part-size'] === undefined ? undefined : parseSize(values['part-size'], '--part-size');
  const concurrency =
    values.concurrency === undefined
      ? undefined
      : parseCount(values.concurrency, '--concurrency', 1024);
  const workers = workersFrom(values.workers, ctx.io.env.FERRY_WORKERS);
  const stallTimeoutMs =
    values['stall-timeout'] === undefined
      ? undefined
      : parseSeconds(values['stall-timeout'], '--stall-timeout', false);
  const hedgeAfterMs =
    values['hedge-after'] === undefined
      ? undefined
      : parseSeconds(values['hedge-after'], '--hedge-after', true);
  const bandwidthLimit = bandwidthFrom(values.bwlimit, ctx.io.env.FERRY_BWLIMIT);
  const verify =
    values.verify === undefined
      ? undefined
      : parseChoice(values.verify, '--verify', ['size', 'stat', 'hash'] as const);
  const target = await resolvePullTarget({
    command,
    ...(arg === undefined ? {} : { arg }),
    ...(values.to === undefined ? {} : { to: values.to }),
    ...(values.config === undefined ? {} : { config: values.config }),
    ...(values.source === undefined ? {} : { source: values.source }),
    io: ctx.io,
  });
  ctx.setResumeHint(
    `run \`ferry resume ${shellQuote(target.root)}\` (or the same \`ferry ${command}\` again) to continue; finished parts are kept.`,
  );
  return {
    source: target.source,
    root: target.root,
    ...(target.ref === undefined ? {} : { ref: target.ref }),
    ...(target.subdir === undefined ? {} : { subdir: target.subdir }),
    ...(partSize === undefined ? {} : { partSize }),
    ...(concurrency === undefined ? {} : { concurrency }),
    ...(workers === undefined ? {} : { workers }),
    ...(bandwidthLimit === undefined ? {} : { bandwidthLimit }),
    ...(verify === undefined ? {} : { verify }),
    ...(values.durable === true || ctx.io.env.FERRY_DURABLE === '1' ? { durable: true } : {}),
    ...(stallTimeoutMs === undefined ? {} : { stallTimeoutMs }),
    ...(hedgeAfterMs === undefined ? {} : { hedgeAfterMs }),
    ...(values.offline === true || ctx.io.env.FERRY_OFFLINE === '1' ? { offline: true } : {}),
    ...(values['no-fallback'] === true ? { fallback: false } : {}),
    ...(values['allow-empty'] === true ? { allowEmpty: true } : {}),
    ...mirrorsFrom(values.mirror, ctx.io.env.FERRY_MIRRORS),
    ...filterFrom(values, target.config, command),
    signal: ctx.signal,
  };
}

/** `--workers`, else `FERRY_WORKERS`: worker threads of the pull. */
export function workersFrom(flag: string | undefined, env: string | undefined): number | undefined {
  const text = flag ?? env;
  if (text === undefined || text === '') return undefined;
  // 0: no worker thread, parts run on the main thread.
  return parseCount(text, flag === undefined ? 'FERRY_WORKERS' : '--workers', 256, 0);
}

/** `--bwlimit`, else `FERRY_BWLIMIT`: a size per second (`50MiB`, `10MB/s`). */
export function bandwidthFrom(
  flag: string | undefined,
  env: string | undefined,
): number | undefined {
  const text = flag ?? env;
  if (text === undefined || text === '') return undefined;
  return parseSize(text.replace(/\/s$/i, ''), flag === undefined ? 'FERRY_BWLIMIT' : '--bwlimit');
}

/** `--mirror` values, else `FERRY_MIRRORS` (comma-separated); each must be an http(s) URL. */
function mirrorsFrom(flags: string[] | undefined, env: string | undefined): { mirrors?: string[] } {
  const mirrors = (flags ?? env?.split(',') ?? []).map((m) => m.trim()).filter((m) => m !== '');
  for (const mirror of mirrors) {
    if (!/^https?:\/\/[^/]/.test(mirror)) {
      throw usageError('pull', `--mirror: ${JSON.stringify(mirror)} is not an http(s) URL`);
    }
  }
  return mirrors.length === 0
    ? {}
    : { mirrors: mirrors.map((m) => (m.endsWith('/') ? m : `${m}/`)) };
}

/** `--include` / `--exclude`, each else model.json's key of the same name. */
function filterFrom(
  values: PullFlagValues,
  config: ModelConfig | undefined,
  command: string,
): Pick<PullOptions, 'include' | 'exclude' | 'only'> {
  const pick = (key: 'include' | 'exclude'): { [k: string]: string[] } => {
    const flag = values[key];
    if (flag !== undefined) return { [key]: globs(flag, `--${key}`, command) };
    const configured = config?.[key];
    if (configured === undefined) return {};
    return { [key]: globs(configured, `"${key}" in ${config?.path ?? 'model.json'}`, command) };
  };
  const only = values.only?.map((path) => {
    try {
      return normalizePath(path);
    } catch {
      throw usageError(
        command,
        `--only: ${JSON.stringify(path)} is not a path in the folder (like "config.json" or "onnx/model.onnx")`,
      );
    }
  });
  return { ...pick('include'), ...pick('exclude'), ...(only === undefined ? {} : { only }) };
}

/** Globs are matched against manifest paths: relative, `/`-separated, no `..`. */
export function globs(values: string[], flag: string, command: string): string[] {
  for (const glob of values) {
    if (
      glob.trim() === '' ||
      glob.startsWith('/') ||
      glob.includes('\\') ||
      glob.split('/').includes('..')
    ) {
      throw usageError(
        command,
        `${flag}: ${JSON.stringify(glob)} is not a glob over paths in the folder (like "*.safetensors" or "onnx/**")`,
      );
    }
  }
  return values;
}
