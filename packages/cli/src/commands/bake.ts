import { bake } from '@ferry/engine';
import type { Command } from '../command.js';
import { parseCommandArgs } from '../command-args.js';
import { outputMode } from '../output-mode.js';
import { PullReporter } from '../pull-reporter.js';
import { COMMON_FLAGS_HELP, PULL_FLAGS, PULL_FLAGS_HELP, pullOptionsFrom } from './pull-options.js';

const HELP = `Usage: ferry bake <source>[@<ref>] --to <dir> [flags]

Pulls, then leaves the cache ready to be copied into a container image: no partial files,
no interrupted pulls, every file recorded with its size and mtime, and made durable. A
\`ferry pull\` of the same version from the image then transfers nothing and reads no file
content, also after COPY, tar or an OCI layer cut the mtimes to whole seconds and gave the
files new inodes and owners. An image that rewrites mtimes altogether (a fixed
SOURCE_DATE_EPOCH) needs \`--verify size\` at start-up, or one \`ferry verify --deep\`.

Flags:
${PULL_FLAGS_HELP}
${COMMON_FLAGS_HELP}

Examples:
  ferry bake s3://models/llama@v3 --to ./image/cache
  # Dockerfile: COPY image/cache /var/cache/ferry`;

export const bakeCommand: Command = {
  name: 'bake',
  summary: 'pull and leave the cache ready for a container image',
  help: HELP,
  async run(args, ctx) {
    const { values, positionals } = parseCommandArgs('bake', args, PULL_FLAGS, 1);
    const options = await pullOptionsFrom('bake', positionals[0], values, ctx);
    const mode = outputMode(ctx.io, values);
    const reporter = new PullReporter({ io: ctx.io, mode, debug: values.debug === true });
    ctx.setCleanup(() => reporter.close());
    try {
      await bake({ ...options, onEvent: reporter.event });
    } finally {
      reporter.close();
    }
    if (mode !== 'json' && mode !== 'quiet') {
      ctx.io.stdout.write(
        `baked: ${options.root} has no partial files and every file is recorded; copy it into the image as is\n`,
      );
    }
    return 0;
  },
};
