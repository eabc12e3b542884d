import { status } from '@ferry/engine';
import { formatBytes } from '../byte-size.js';
import type { Command } from '../command.js';
import { parseCommandArgs } from '../command-args.js';
import { files, shortVersion } from '../pull-summary.js';
import { shellQuote } from '../shell-quote.js';
import { formatTable } from '../table.js';
import { CACHE_DIR_FLAGS, CACHE_DIR_HELP, cacheDir } from './cache-dir.js';
import { COMMON_FLAGS_HELP } from './pull-options.js';

const HELP = `Usage: ferry status [<dir>] [flags]

What a cache holds: each folder's version, files and bytes, interrupted pulls, and partial
files with how much of each is done. Reads only ferry's database: fast on any cache size.

${CACHE_DIR_HELP}

Flags:
  --config <file>       model.json whose download_files_to names the cache
${COMMON_FLAGS_HELP}

With --json: {"type":"done","result":{"root","trees":[…],"partials":[…],"interrupted":[…]}}.

Examples:
  ferry status /cache
  ferry status --json | jq '.result.trees[].versionId'`;

export const statusCommand: Command = {
  name: 'status',
  summary: 'show the versions, files and partial transfers in a cache',
  help: HELP,
  async run(args, ctx) {
    const { values, positionals } = parseCommandArgs('status', args, CACHE_DIR_FLAGS, 1);
    const root = await cacheDir(positionals[0], values.config, ctx.io);
    const result = await status({ root, signal: ctx.signal });
    const out = ctx.io.stdout;
    if (values.json) {
      out.write(`${JSON.stringify({ type: 'done', result })}\n`);
      return 0;
    }
    if (values.quiet) return 0;
    out.write(`cache ${result.root}\n`);
    if (result.trees.length === 0) {
      out.write('  no folders pulled yet\n');
    } else {
      out.write(
        formatTable([
          ['FOLDER', 'VERSION', 'REF', 'FILES', 'SIZE', 'UPDATED', 'SOURCE'],
          ...result.trees.map((t) => [
            t.dir === '' ? '.' : t.dir,
            shortVersion(t.versionId),
            t.ref ?? '-',
            String(t.files),
            formatBytes(t.bytes),
            t.updatedAt.replace(/\.\d+Z$/, 'Z'),
            t.source,
          ]),
        ]),
      );
      for (const t of result.trees) {
        if (t.missing === true) {
          out.write(
            `  ${t.dir} was deleted: \`ferry rm ${shellQuote(result.root)} ${shellQuote(t.dir)}\` forgets it, a pull restores it\n`,
          );
        }
        if (t.previous !== undefined) {
          out.write(
            `  ${t.dir === '' ? '.' : t.dir} also keeps the version it showed before, ${shortVersion(t.previous)}: pulling it again switches back at once\n`,
          );
        }
        if (t.filter === undefined) continue;
        const globs = [
          ...(t.filter.include ?? []).map((g) => `--include ${shellQuote(g)}`),
          ...(t.filter.only ?? []).map((p) => `--only ${shellQuote(p)}`),
          ...(t.filter.exclude ?? []).map((g) => `--exclude ${shellQuote(g)}`),
        ];
        out.write(
          `  ${t.dir === '' ? '.' : t.dir} holds the files selected by ${globs.join(' ')}\n`,
        );
      }
    }
    if (result.interrupted.length > 0) {
      out.write(`interrupted pulls (\`ferry resume ${shellQuote(result.root)}\` finishes them):\n`);
      out.write(
        formatTable(
          result.interrupted.map((p) => [
            p.dir === '' ? '.' : p.dir,
            p.ref === undefined ? p.source : `${p.source}@${p.ref}`,
            `started ${p.startedAt.replace(/\.\d+Z$/, 'Z')}`,
          ]),
        ),
      );
    }
    if (result.partials.length > 0) {
      out.write(`partial ${files(result.partials.length)}:\n`);
      out.write(
        formatTable(
          result.partials.map((p) => [
            p.path,
            `${formatBytes(p.doneBytes)} of ${formatBytes(p.size)}`,
            `${p.doneParts}/${p.parts} parts`,
          ]),
        ),
      );
    }
    return 0;
  },
};
