import { resolve } from 'node:path';
import { hasUriScheme } from '@ferry/adapters';
import { diffVersions, type VersionDiff } from '@ferry/engine';
import { partLength } from '@ferry/manifest';
import { formatBytes } from '../byte-size.js';
import type { Command } from '../command.js';
import { parseCommandArgs, usageError } from '../command-args.js';
import { shortVersion } from '../pull-summary.js';
import { splitSourceRef } from '../source-ref.js';
import { formatTable } from '../table.js';
import { COMMON_FLAGS_HELP, globs } from './pull-options.js';

const HELP = `Usage: ferry diff <source>@<a> <b> [flags]

What changed between two published versions of a source: files added, removed, changed
(and how many bytes of each a pull moves, part by part), renamed, and how much a pull from
<a> to <b> transfers. <a> and <b> are refs (v3, latest) or version ids (sha256:…).

Flags:
  --include <glob>      compare only the files matching a glob, as \`pull --include\` would
                        pull them (repeatable)
  --exclude <glob>      leave out the files matching a glob (repeatable; wins)
${COMMON_FLAGS_HELP}

With --json: {"type":"done","result":{"source","from","to","transferBytes","added":[{"path","size"}],
"removed":[…],"changed":[{"path","size","changedBytes"}],"renamed":[{"from","to","size"}],
"unchanged":{"files","bytes"}}}.

Examples:
  ferry diff s3://models/llama@v3 v4
  ferry diff ./store/llama@v1 latest --json`;

/** The diff as JSON: paths and byte counts, not the full entries with their part digests. */
export function diffJson(source: string, d: VersionDiff) {
  return {
    source,
    from: d.from,
    to: d.to,
    transferBytes: d.transferBytes,
    added: d.added.map((e) => ({ path: e.path, size: e.size })),
    removed: d.removed.map((e) => ({ path: e.path, size: e.size })),
    changed: d.changed.map((c) => ({
      path: c.to.path,
      fromSize: c.from.size,
      size: c.to.size,
      changedBytes: changedBytes(c),
    })),
    renamed: d.renamed.map((r) => ({ from: r.from.path, to: r.to.path, size: r.to.size })),
    unchanged: { files: d.unchanged.length, bytes: d.unchanged.reduce((n, e) => n + e.size, 0) },
  };
}

/** Bytes of the new file a pull fetches: its changed parts, or all of it. */
function changedBytes(c: VersionDiff['changed'][number]): number {
  const parts = c.to.parts;
  if (c.changedParts === undefined || parts === undefined) return c.to.size;
  return c.changedParts.reduce((n, i) => n + partLength(c.to.size, parts.size, i), 0);
}

export const diffCommand: Command = {
  name: 'diff',
  summary: 'show what changed between two versions of a source',
  help: HELP,
  async run(args, ctx) {
    const { values, positionals } = parseCommandArgs(
      'diff',
      args,
      {
        include: { type: 'string', multiple: true },
        exclude: { type: 'string', multiple: true },
      },
      2,
    );
    const [first, to] = positionals;
    const split = first === undefined ? undefined : splitSourceRef(first);
    if (split?.ref === undefined || split.source === '' || to === undefined) {
      throw usageError(
        'diff',
        'give a source with a version and a second version: ferry diff <source>@<a> <b>',
      );
    }
    const source = hasUriScheme(split.source) ? split.source : resolve(ctx.io.cwd, split.source);
    const d = await diffVersions({
      source,
      from: split.ref,
      to,
      ...(values.include === undefined
        ? {}
        : { include: globs(values.include, '--include', 'diff') }),
      ...(values.exclude === undefined
        ? {}
        : { exclude: globs(values.exclude, '--exclude', 'diff') }),
      signal: ctx.signal,
    });
    const json = diffJson(source, d);
    const out = ctx.io.stdout;
    if (values.json) {
      out.write(`${JSON.stringify({ type: 'done', result: json })}\n`);
      return 0;
    }
    if (values.quiet) return 0;
    out.write(
      `${source}: ${split.ref} (${shortVersion(d.from)}) → ${to} (${shortVersion(d.to)})\n`,
    );
    const rows = [
      ...json.changed.map((c) => [
        'changed',
        c.path,
        c.fromSize === c.size
          ? formatBytes(c.size)
          : `${formatBytes(c.fromSize)} → ${formatBytes(c.size)}`,
        `${formatBytes(c.changedBytes)} to fetch`,
      ]),
      ...json.added.map((e) => ['added', e.path, formatBytes(e.size), '']),
      ...json.removed.map((e) => ['removed', e.path, formatBytes(e.size), '']),
      ...json.renamed.map((r) => ['renamed', `${r.from} → ${r.to}`, formatBytes(r.size), '']),
    ];
    if (rows.length > 0) out.write(formatTable(rows));
    out.write(
      `${json.changed.length} changed, ${json.added.length} added, ${json.removed.length} removed, ` +
        `${json.renamed.length} renamed, ${json.unchanged.files} unchanged (${formatBytes(json.unchanged.bytes)}); ` +
        `a pull from ${split.ref} to ${to} fetches ${formatBytes(d.transferBytes)}\n`,
    );
    return 0;
  },
};
