import { verify } from '@ferry/engine';
import { FerryError } from '@ferry/manifest';
import { formatBytes } from '../byte-size.js';
import type { Command } from '../command.js';
import { parseCommandArgs } from '../command-args.js';
import { outputMode, progressView } from '../output-mode.js';
import { snapshotOf } from '../progress-view.js';
import { files } from '../pull-summary.js';
import { shellQuote } from '../shell-quote.js';
import { formatTable } from '../table.js';
import { CACHE_DIR_FLAGS, CACHE_DIR_HELP, cacheDir } from './cache-dir.js';
import { COMMON_FLAGS_HELP, globs } from './pull-options.js';

const HELP = `Usage: ferry verify [<dir>] [--deep] [flags]

Checks every file of every folder in the cache against the version ferry recorded for it
and lists what is wrong: missing, wrong size, modified (mtime changed since ferry wrote it),
or corrupt (--deep: content does not hash to the recorded digest). Exit status 1 if any
file is wrong.

${CACHE_DIR_HELP}

Flags:
  --deep                re-hash every file (parallel, at disk speed) instead of comparing
                        size and mtime with what ferry recorded
  --include <glob>      check only the files matching a glob (their path in the folder, as
                        \`pull --include\` reads it; repeatable)
  --exclude <glob>      leave out the files matching a glob (repeatable; wins)
  --config <file>       model.json whose download_files_to names the cache
${COMMON_FLAGS_HELP}

With --json: a {"type":"file-checked",…} line per file, then
{"type":"done","result":{"files","bytes","problems":[{"path","problem","detail"}]}}.

Examples:
  ferry verify /cache
  ferry verify /cache --deep`;

export const verifyCommand: Command = {
  name: 'verify',
  summary: 'check the cached files against their recorded versions (--deep re-hashes)',
  help: HELP,
  async run(args, ctx) {
    const { values, positionals } = parseCommandArgs(
      'verify',
      args,
      {
        ...CACHE_DIR_FLAGS,
        deep: { type: 'boolean' },
        include: { type: 'string', multiple: true },
        exclude: { type: 'string', multiple: true },
      },
      1,
    );
    const root = await cacheDir(positionals[0], values.config, ctx.io);
    const mode = outputMode(ctx.io, values);
    const out = ctx.io.stdout;
    const view = progressView(ctx.io, mode);
    ctx.setCleanup(() => view.close());
    let report: Awaited<ReturnType<typeof verify>>;
    try {
      report = await verify({
        root,
        deep: values.deep === true,
        ...(values.include === undefined
          ? {}
          : { include: globs(values.include, '--include', 'verify') }),
        ...(values.exclude === undefined
          ? {}
          : { exclude: globs(values.exclude, '--exclude', 'verify') }),
        signal: ctx.signal,
        onEvent: (event) => {
          if (mode === 'json') {
            out.write(`${JSON.stringify(event)}\n`);
            return;
          }
          if (event.type === 'progress') view.update(snapshotOf(event));
        },
      });
    } finally {
      view.close();
    }
    if (mode === 'json') {
      out.write(`${JSON.stringify({ type: 'done', result: report })}\n`);
    } else if (mode !== 'quiet') {
      if (report.problems.length > 0) {
        out.write(
          formatTable(
            report.problems.map((p) => [
              p.problem,
              p.path,
              p.problem === 'folder-missing'
                ? `the folder was deleted: \`${forget(root, p.path)}\` forgets it, a pull restores it`
                : p.detail,
            ]),
            '',
          ),
        );
      }
      const how = values.deep ? 're-hashed' : 'checked size and mtime of';
      out.write(
        `${how} ${files(report.files)} (${formatBytes(report.bytes)}) in ${root}: ${report.problems.length === 0 ? 'all as pulled' : `${report.problems.length} wrong`}\n`,
      );
    }
    if (report.problems.length === 0) return 0;
    const [first] = report.problems;
    throw new FerryError(
      'FERRY_INTEGRITY',
      `${files(report.problems.length)} in ${root} ${report.problems.length === 1 ? 'is' : 'are'} not as pulled${first === undefined ? '' : ` (first: ${first.path}, ${first.problem})`}`,
      {
        key: first?.path,
        hint:
          first?.problem === 'folder-missing'
            ? `Run \`${forget(root, first.path)}\` if it is gone for good, or pull it again.`
            : 'Pull the folder again to repair it: `ferry pull <source> --verify hash` re-checks and refetches what is wrong.',
      },
    );
  },
};

function forget(root: string, dir: string): string {
  return `ferry rm ${shellQuote(root)} ${shellQuote(dir)}`;
}
