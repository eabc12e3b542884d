import { relative, resolve, sep } from 'node:path';
import { removeFolder } from '@ferry/engine';
import { formatBytes } from '../byte-size.js';
import { findCacheRoot } from '../cache-root.js';
import type { Command } from '../command.js';
import { parseCommandArgs, usageError } from '../command-args.js';
import { files } from '../pull-summary.js';
import { COMMON_FLAGS_HELP } from './pull-options.js';

const HELP = `Usage: ferry rm <root> <folder> [flags]
       ferry rm <path of the folder> [flags]

Takes a pulled folder out of the cache: the files ferry wrote there, its partial files and
its records (so status, verify and gc no longer count it). A file changed since ferry wrote
it, and any file ferry did not write, is kept and listed. Also forgets a folder already
deleted by hand.

<folder> is as \`ferry status\` shows it (llama/v3); with one argument, the folder's path
(/cache/llama/v3), whose cache root is found upwards.

Flags:
${COMMON_FLAGS_HELP}

With --json: {"type":"done","result":{"dir","removedFiles","freedBytes","kept":[…]}}.

Examples:
  ferry rm /var/cache/models llama/v3
  ferry rm /var/cache/models/llama/v3`;

export const rmCommand: Command = {
  name: 'rm',
  summary: "remove a pulled folder's files and records from a cache",
  help: HELP,
  async run(args, ctx) {
    const { values, positionals } = parseCommandArgs('rm', args, {}, 2);
    const [first, second] = positionals;
    if (first === undefined) {
      throw usageError('rm', 'give the folder to remove: ferry rm <root> <folder>');
    }
    let root: string;
    let dir: string;
    if (second !== undefined) {
      root = await findCacheRoot(resolve(ctx.io.cwd, first));
      dir = second;
    } else {
      const path = resolve(ctx.io.cwd, first);
      root = await findCacheRoot(path);
      dir = relative(root, path).split(sep).join('/');
      if (dir === '') {
        throw usageError(
          'rm',
          `${path} is the cache root, not a folder in it`,
          'Name the folder: ferry rm <root> <folder> (`ferry status` lists them).',
        );
      }
    }
    const result = await removeFolder({ root, dir });
    if (values.json) {
      ctx.io.stdout.write(`${JSON.stringify({ type: 'done', result })}\n`);
    } else if (!values.quiet) {
      ctx.io.stdout.write(
        `removed ${result.dir === '' ? root : result.dir} from ${root}: ${files(result.removedFiles)}, ${formatBytes(result.freedBytes)} freed\n`,
      );
      if (result.kept.length > 0) {
        ctx.io.stdout.write(
          `kept ${files(result.kept.length)} changed since ferry wrote them: ${result.kept.join(', ')}\n`,
        );
      }
    }
    return 0;
  },
};
