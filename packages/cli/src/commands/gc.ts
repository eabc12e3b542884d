import { gc } from '@ferry/engine';
import { formatBytes } from '../byte-size.js';
import type { Command } from '../command.js';
import { parseCommandArgs } from '../command-args.js';
import { files } from '../pull-summary.js';
import { CACHE_DIR_FLAGS, CACHE_DIR_HELP, cacheDir } from './cache-dir.js';
import { COMMON_FLAGS_HELP } from './pull-options.js';

const HELP = `Usage: ferry gc [<dir>] [flags]

Removes what no recorded version needs: partial files of transfers that can no longer
resume, manifests nothing refers to, records of files no folder has. Never touches the
files of a folder, nor the partial files of an interrupted pull \`ferry resume\` can finish.

${CACHE_DIR_HELP}

Flags:
  --config <file>       model.json whose download_files_to names the cache
${COMMON_FLAGS_HELP}

With --json: {"type":"done","result":{"removedPartials","freedBytes","removedManifests","removedRecords"}}.

Examples:
  ferry gc /cache`;

export const gcCommand: Command = {
  name: 'gc',
  summary: 'remove partial files and records no version needs',
  help: HELP,
  async run(args, ctx) {
    const { values, positionals } = parseCommandArgs('gc', args, CACHE_DIR_FLAGS, 1);
    const root = await cacheDir(positionals[0], values.config, ctx.io);
    const result = await gc({ root });
    if (values.json) {
      ctx.io.stdout.write(`${JSON.stringify({ type: 'done', result })}\n`);
    } else if (!values.quiet) {
      ctx.io.stdout.write(
        `gc ${root}: freed ${formatBytes(result.freedBytes)}; removed ${files(result.removedPartials).replace('file', 'partial file')}, ` +
          `${result.removedManifests} ${result.removedManifests === 1 ? 'manifest' : 'manifests'}, ` +
          `${result.removedRecords} ${result.removedRecords === 1 ? 'record' : 'records'}\n`,
      );
    }
    return 0;
  },
};
