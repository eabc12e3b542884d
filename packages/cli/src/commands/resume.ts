import { resume } from '@ferry/engine';
import type { Command } from '../command.js';
import { parseCommandArgs, parseCount } from '../command-args.js';
import { outputMode } from '../output-mode.js';
import { PullReporter } from '../pull-reporter.js';
import { shellQuote } from '../shell-quote.js';
import { CACHE_DIR_FLAGS, CACHE_DIR_HELP, cacheDir } from './cache-dir.js';
import { bandwidthFrom, COMMON_FLAGS_HELP, workersFrom } from './pull-options.js';

const HELP = `Usage: ferry resume [<dir>] [flags]

Finishes every pull that started in the cache and did not complete (interrupted, killed,
failed), each at the exact version it was pulling, keeping the parts already on disk.

${CACHE_DIR_HELP}

Flags:
  --config <file>       model.json whose download_files_to names the cache
  --concurrency <n>     ranged requests in flight (default 16)
  --workers <n>         worker threads that fetch, hash and write, beside the main
                        thread (default: a thread per core, the main thread one of
                        them, no more than the transfer can use; 0: the main thread
                        alone; also FERRY_WORKERS)
  --bwlimit <rate>      cap the download rate, all requests together: 50MiB, 10MB/s
                        (also FERRY_BWLIMIT)
${COMMON_FLAGS_HELP}

With --json, the pulls' events and a last line {"type":"resumed","root":…,"results":[…]}.

Examples:
  ferry resume /cache
  ferry resume            # the default cache`;

export const resumeCommand: Command = {
  name: 'resume',
  summary: 'finish the interrupted pulls of a cache',
  help: HELP,
  async run(args, ctx) {
    const { values, positionals } = parseCommandArgs(
      'resume',
      args,
      {
        ...CACHE_DIR_FLAGS,
        concurrency: { type: 'string' },
        workers: { type: 'string' },
        bwlimit: { type: 'string' },
      },
      1,
    );
    const concurrency =
      values.concurrency === undefined
        ? undefined
        : parseCount(values.concurrency, '--concurrency', 1024);
    const workers = workersFrom(values.workers, ctx.io.env.FERRY_WORKERS);
    const bandwidthLimit = bandwidthFrom(values.bwlimit, ctx.io.env.FERRY_BWLIMIT);
    const root = await cacheDir(positionals[0], values.config, ctx.io);
    ctx.setResumeHint(
      `run \`ferry resume ${shellQuote(root)}\` again to continue; finished parts are kept.`,
    );
    const mode = outputMode(ctx.io, values);
    const reporter = new PullReporter({ io: ctx.io, mode, debug: values.debug === true });
    ctx.setCleanup(() => reporter.close());
    let results: Awaited<ReturnType<typeof resume>>;
    try {
      results = await resume({
        root,
        ...(concurrency === undefined ? {} : { concurrency }),
        ...(workers === undefined ? {} : { workers }),
        ...(bandwidthLimit === undefined ? {} : { bandwidthLimit }),
        signal: ctx.signal,
        onEvent: reporter.event,
      });
    } finally {
      reporter.close();
    }
    if (mode === 'json') {
      ctx.io.stdout.write(`${JSON.stringify({ type: 'resumed', root, results })}\n`);
    } else if (mode !== 'quiet' && results.length === 0) {
      ctx.io.stdout.write(`nothing to resume in ${root}\n`);
    }
    return 0;
  },
};
