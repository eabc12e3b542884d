import { resolve } from 'node:path';
import { hasUriScheme } from '@ferry/adapters';
import { listRefs } from '@ferry/engine';
import { formatBytes } from '../byte-size.js';
import type { Command } from '../command.js';
import { parseCommandArgs, usageError } from '../command-args.js';
import { shortVersion } from '../pull-summary.js';
import { formatTable } from '../table.js';
import { COMMON_FLAGS_HELP } from './pull-options.js';

const HELP = `Usage: ferry refs <source> [flags]

Lists the refs published at <source> (an s3:// prefix or a local folder): each with the
version it points at, when that version was published, its files and size, and how its
content is stored (store: immutable parts in a store shared by the prefixes published to
it; parts: immutable parts under the prefix itself, published before stores; paths: files
at their paths, published before content addressing).

Flags:
${COMMON_FLAGS_HELP}

With --json: {"type":"done","result":[{"ref","versionId","publishedAt","files","bytes","layout","store"?}]}.

Examples:
  ferry refs s3://models/llama
  ferry refs ./store/llama --json`;

/** `ferry <command> <source>` takes a URI or a path; a path is made absolute. */
export function sourceArg(
  command: string,
  arg: string | undefined,
  cwd: string,
  usage: string,
): string {
  if (arg === undefined || arg === '') throw usageError(command, usage);
  return hasUriScheme(arg) ? arg : resolve(cwd, arg);
}

export const refsCommand: Command = {
  name: 'refs',
  summary: 'list the refs published at a source, with their versions',
  help: HELP,
  async run(args, ctx) {
    const { values, positionals } = parseCommandArgs('refs', args, {}, 1);
    const source = sourceArg(
      'refs',
      positionals[0],
      ctx.io.cwd,
      'give the source: ferry refs <source>',
    );
    const refs = await listRefs({ source, signal: ctx.signal });
    if (values.json) {
      ctx.io.stdout.write(`${JSON.stringify({ type: 'done', result: refs })}\n`);
      return 0;
    }
    if (values.quiet) return 0;
    if (refs.length === 0) {
      ctx.io.stdout.write(`no refs published at ${source}\n`);
      return 0;
    }
    const rows = [
      ['REF', 'VERSION', 'PUBLISHED', 'FILES', 'SIZE', 'LAYOUT'],
      ...refs.map((r) => [
        r.ref,
        shortVersion(r.versionId),
        r.publishedAt?.replace(/\.\d+Z$/, 'Z') ?? '-',
        String(r.files),
        formatBytes(r.bytes),
        r.layout,
      ]),
    ];
    ctx.io.stdout.write(formatTable(rows, ''));
    return 0;
  },
};
