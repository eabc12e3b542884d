import { unpublish } from '@ferry/engine';
import type { Command } from '../command.js';
import { parseCommandArgs, usageError } from '../command-args.js';
import { shortVersion } from '../pull-summary.js';
import { splitSourceRef } from '../source-ref.js';
import { COMMON_FLAGS_HELP } from './pull-options.js';
import { sourceArg } from './refs.js';

const HELP = `Usage: ferry unpublish <source>@<ref> [flags]

Removes a ref from <source>. Its version stays stored (other refs, of this prefix or of
other prefixes in the same store, may share its content) until \`ferry gc --remote\` finds
that nothing needs it, which is never before the grace period (24h) since this command;
until then a pull of its version id still works.

Flags:
${COMMON_FLAGS_HELP}

With --json: {"type":"done","result":{"source","ref","versionId"}}.

Examples:
  ferry unpublish s3://models/llama@v3`;

export const unpublishCommand: Command = {
  name: 'unpublish',
  summary: 'remove a published ref (its content stays until gc --remote)',
  help: HELP,
  async run(args, ctx) {
    const { values, positionals } = parseCommandArgs('unpublish', args, {}, 1);
    const split = positionals[0] === undefined ? undefined : splitSourceRef(positionals[0]);
    if (split?.ref === undefined) {
      throw usageError(
        'unpublish',
        'give a source and the ref to remove: ferry unpublish <source>@<ref>',
      );
    }
    const source = sourceArg('unpublish', split.source, ctx.io.cwd, 'give the source before "@"');
    const versionId = await unpublish({ source, ref: split.ref, signal: ctx.signal });
    if (values.json) {
      ctx.io.stdout.write(
        `${JSON.stringify({ type: 'done', result: { source, ref: split.ref, versionId } })}\n`,
      );
    } else if (!values.quiet) {
      ctx.io.stdout.write(
        `unpublished ${split.ref} (was ${shortVersion(versionId)}) at ${source}; \`ferry gc --remote ${source}\` frees what nothing else needs\n`,
      );
    }
    return 0;
  },
};
