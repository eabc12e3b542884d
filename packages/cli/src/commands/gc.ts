import { gc, gcRemote } from '@ferry/engine';
import { formatBytes } from '../byte-size.js';
import type { Command } from '../command.js';
import { parseCommandArgs, usageError } from '../command-args.js';
import { files } from '../pull-summary.js';
import { CACHE_DIR_FLAGS, CACHE_DIR_HELP, cacheDir } from './cache-dir.js';
import { COMMON_FLAGS_HELP } from './pull-options.js';
import { sourceArg } from './refs.js';

const HELP = `Usage: ferry gc [<dir>] [flags]
       ferry gc --remote <source> [--grace 24h] [--dry-run] [flags]

Removes what no recorded version needs: partial files of transfers that can no longer
resume, manifests nothing refers to, records of files no folder has. Never touches the
files of a folder, nor the partial files of an interrupted pull \`ferry resume\` can finish.

With --remote, cleans a published <source> instead: removes the stored parts and manifests
no version needs and that are older than --grace (default 24h). A version is needed while a
ref points at it, and for --grace after it was published or its ref was removed or moved.
Parts in a store shared by several prefixes (a bucket) are kept while any of them needs
them: gc reads the versions of every prefix published to the store. A publish running
meanwhile, to any prefix of the store, is safe as long as it finishes within half the grace.

${CACHE_DIR_HELP}

Flags:
  --config <file>       model.json whose download_files_to names the cache
  --remote              clean a published source (its URI or folder) instead of a cache
  --grace <time>        with --remote: keep unreferenced content younger than this
                        (30m, 24h, 7d; default 24h)
  --dry-run             with --remote: report what would go, remove nothing
${COMMON_FLAGS_HELP}

With --json: {"type":"done","result":{"removedPartials","freedBytes","removedManifests","removedRecords"}};
with --remote {"type":"done","result":{"refs","prefixes","stores","keptParts","removedParts","removedBytes","removedManifests","youngKept"}}.

Examples:
  ferry gc /cache
  ferry gc --remote s3://models/llama --dry-run`;

/** A duration such as `30m`, `24h`, `7d` (or seconds), in milliseconds. */
function parseGrace(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(s|m|h|d)?$/.exec(text.trim());
  const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match?.[2] ?? 's'] ?? 1_000;
  if (match === null) {
    throw usageError(
      'gc',
      `--grace: ${JSON.stringify(text)} is not a duration`,
      'Give e.g. --grace 24h, 30m or 7d.',
    );
  }
  return Number(match[1]) * unit;
}

export const gcCommand: Command = {
  name: 'gc',
  summary: 'remove partial files and records no version needs',
  help: HELP,
  async run(args, ctx) {
    const { values, positionals } = parseCommandArgs(
      'gc',
      args,
      {
        ...CACHE_DIR_FLAGS,
        remote: { type: 'boolean' },
        grace: { type: 'string' },
        'dry-run': { type: 'boolean' },
      },
      1,
    );
    if (values.remote === true) {
      const source = sourceArg(
        'gc',
        positionals[0],
        ctx.io.cwd,
        'give the source: ferry gc --remote <source>',
      );
      const graceMs = values.grace === undefined ? undefined : parseGrace(values.grace);
      const result = await gcRemote({
        source,
        ...(graceMs === undefined ? {} : { graceMs }),
        dryRun: values['dry-run'] === true,
        signal: ctx.signal,
      });
      if (values.json) {
        ctx.io.stdout.write(`${JSON.stringify({ type: 'done', result })}\n`);
      } else if (!values.quiet) {
        ctx.io.stdout.write(
          `gc ${source}: ${values['dry-run'] === true ? 'would remove' : 'removed'} ${result.removedParts} parts (${formatBytes(result.removedBytes)}) and ${result.removedManifests} manifests; ` +
            `kept ${result.keptParts} parts that ${result.refs} ${result.refs === 1 ? 'ref' : 'refs'} of ${result.prefixes} ${result.prefixes === 1 ? 'prefix' : 'prefixes'} need and ${result.youngKept} younger than the grace period` +
            (result.stores.length > 1 ? `; stores: ${result.stores.join(', ')}` : '') +
            '\n',
        );
      }
      return 0;
    }
    if (values.grace !== undefined || values['dry-run'] === true) {
      throw usageError('gc', '--grace and --dry-run go with --remote');
    }
    const root = await cacheDir(positionals[0], values.config, ctx.io);
    const result = await gc({ root });
    if (result.storeUnavailable !== undefined && !values.json) {
      ctx.io.stderr.write(
        `ferry: warning: the store could not be opened (${result.storeUnavailable}); removed every partial file to free space: run \`ferry gc\` again once the disk has room\n`,
      );
    }
    if (values.json) {
      ctx.io.stdout.write(`${JSON.stringify({ type: 'done', result })}\n`);
    } else if (!values.quiet) {
      ctx.io.stdout.write(
        `gc ${root}: freed ${formatBytes(result.freedBytes)}; removed ${files(result.removedPartials).replace('file', 'partial file')}, ` +
          `${result.removedManifests} ${result.removedManifests === 1 ? 'manifest' : 'manifests'}, ` +
          `${result.removedRecords} ${result.removedRecords === 1 ? 'record' : 'records'}` +
          (result.removedVersions === 0
            ? ''
            : `, ${result.removedVersions} ${result.removedVersions === 1 ? 'version folder' : 'version folders'} nothing shows`) +
          (result.removedFolders.length === 0
            ? ''
            : `; forgot ${result.removedFolders.length === 1 ? 'the folder' : 'the folders'} deleted by hand: ${result.removedFolders.join(', ')}`) +
          '\n',
      );
    }
    return 0;
  },
};
