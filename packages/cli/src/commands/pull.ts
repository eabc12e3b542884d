import { pull } from '@ferry/engine';
import type { Command } from '../command.js';
import { parseCommandArgs } from '../command-args.js';
import { outputMode } from '../output-mode.js';
import { PullReporter } from '../pull-reporter.js';
import { COMMON_FLAGS_HELP, PULL_FLAGS, PULL_FLAGS_HELP, pullOptionsFrom } from './pull-options.js';

const HELP = `Usage: ferry pull [<source>[@<ref>]] [flags]

Brings a folder of the cache to a version of <source>, fetching only what is missing or
changed, many ranged requests in parallel, every part verified.

<source> is s3://bucket/prefix, https://host/path or a local directory. <ref> is a ref
name (v3, latest) or a version id (sha256:…); without one, a published prefix's "latest".
The text after the last "@" is the ref only when it looks like one ([A-Za-z0-9._-]+ or
sha256:<hex>), so keys with "@" inside a path stay whole; end such a prefix with "/" to
keep a trailing "@name". "@v3" alone pulls model.json's folder at v3.

Flags:
${PULL_FLAGS_HELP}
  --dry-run             show what would be fetched, reused, skipped and removed; change nothing
${COMMON_FLAGS_HELP}

Examples:
  ferry pull s3://models/llama/v3 --to /cache     # files in /cache/llama/v3/
  ferry pull s3://models/llama@v4 --to /cache     # ref v4 of a published prefix
  ferry pull --config model.json --source s3://models
  FERRY_SOURCE=s3://models ferry pull @v4          # ./model.json's folder at v4
  ferry pull s3://models/llama --json | jq -c 'select(.type == "done")'

S3 endpoint and credentials come from the AWS SDK's usual variables and profiles
(AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_PROFILE, AWS_REGION).
Exit status: 0 done, 1 failed, 2 usage, 130 interrupted (rerun or \`ferry resume\`).`;

export const pullCommand: Command = {
  name: 'pull',
  summary: 'bring a cache folder to a version of a source (only what changed moves)',
  help: HELP,
  async run(args, ctx) {
    const { values, positionals } = parseCommandArgs(
      'pull',
      args,
      { ...PULL_FLAGS, 'dry-run': { type: 'boolean' } },
      1,
    );
    const options = await pullOptionsFrom('pull', positionals[0], values, ctx);
    const reporter = new PullReporter({
      io: ctx.io,
      mode: outputMode(ctx.io, values),
      debug: values.debug === true,
      dryRun: values['dry-run'] === true,
    });
    ctx.setCleanup(() => reporter.close());
    try {
      await pull({ ...options, dryRun: values['dry-run'] === true, onEvent: reporter.event });
    } finally {
      reporter.close();
    }
    return 0;
  },
};
