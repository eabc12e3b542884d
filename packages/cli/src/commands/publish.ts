import { resolve } from 'node:path';
import { hasUriScheme } from '@ferry/adapters';
import { type PublishEvent, publish } from '@ferry/engine';
import { formatBytes, parseSize } from '../byte-size.js';
import type { Command } from '../command.js';
import { parseCommandArgs, parseCount, usageError } from '../command-args.js';
import { formatDuration } from '../format-duration.js';
import { outputMode, progressView } from '../output-mode.js';
import { snapshotOf } from '../progress-view.js';
import { files, shortVersion } from '../pull-summary.js';
import { COMMON_FLAGS_HELP } from './pull-options.js';

const HELP = `Usage: ferry publish <dir> <dest> --ref <name> [flags]

Publishes a folder as a version: hashes its files in parallel, uploads the parts its store
does not hold yet (as immutable objects named by their digests, in parallel), then writes
the manifest and moves the ref last, so nobody following the ref sees a version whose
files are not all there, and every older ref stays pullable.

<dest> is s3://bucket/prefix or a local directory.

The store keeps the parts of every prefix published to it once: a shard two models share
is uploaded and stored once. It is the nearest folder at or above <dest> marked as a store,
else the bucket (s3://), else (a local directory) <dest> itself, unless --store names one;
the parts go to <store>/.ferry/store/parts/, and pullers find them from the manifest alone.

Flags:
  --ref <name>          the ref to move to the new version (v4, latest): A-Z a-z 0-9 . _ -
  --store <uri|dir>     the store: <dest> or a folder (bucket) above it; marks it, so later
                        publishes below it use it without the flag
  --part-size <size>    part size of the content digests: 16MiB (default), 64MB, 1GiB, bytes
  --concurrency <n>     uploads in flight (default 4)
${COMMON_FLAGS_HELP}

With --json: {"type":"store"|"hashed"|"upload-start"|"upload-done"|"skipped",…} lines, then
{"type":"done","result":{"versionId","ref","files","bytes","uploadedFiles","uploadedBytes",
"uploadedParts","copiedParts","copiedBytes","store","durationMs"}}.

Examples:
  ferry publish ./llama s3://models/llama --ref v4
  ferry publish ./llama s3://models/llama --ref latest --part-size 64MiB
  ferry publish ./llama /srv/models/llama --ref v1 --store /srv/models`;

export const publishCommand: Command = {
  name: 'publish',
  summary: 'publish a folder as a version (uploads only what the store lacks)',
  help: HELP,
  async run(args, ctx) {
    const { values, positionals } = parseCommandArgs(
      'publish',
      args,
      {
        ref: { type: 'string' },
        store: { type: 'string' },
        'part-size': { type: 'string' },
        concurrency: { type: 'string' },
      },
      2,
    );
    const [dir, dest] = positionals;
    if (dir === undefined || dest === undefined) {
      throw usageError(
        'publish',
        'give the folder and the destination: ferry publish <dir> <dest> --ref <name>',
      );
    }
    if (values.ref === undefined) {
      throw usageError('publish', '--ref is required: the name the new version gets (v4, latest)');
    }
    const partSize =
      values['part-size'] === undefined ? undefined : parseSize(values['part-size'], '--part-size');
    const concurrency =
      values.concurrency === undefined
        ? undefined
        : parseCount(values.concurrency, '--concurrency', 256);
    const uri = (arg: string) => (hasUriScheme(arg) ? arg : resolve(ctx.io.cwd, arg));
    const destination = uri(dest);
    if (values.store === '') throw usageError('publish', '--store needs a URI or folder');
    const store = values.store === undefined ? undefined : uri(values.store);
    ctx.setResumeHint('the ref was not moved; run the same `ferry publish` again.');
    const mode = outputMode(ctx.io, values);
    const view = progressView(ctx.io, mode);
    ctx.setCleanup(() => view.close());
    const onEvent = (event: PublishEvent) => {
      if (mode === 'json') {
        ctx.io.stdout.write(`${JSON.stringify(event)}\n`);
        return;
      }
      switch (event.type) {
        // Hashing a large folder takes a while: the same bar shows it, then the upload.
        case 'progress':
          view.update(snapshotOf(event));
          return;
        case 'hashed':
          view.note(
            `hashed ${files(event.files)} (${formatBytes(event.bytes)}) in ${resolve(ctx.io.cwd, dir)}`,
          );
          return;
        case 'warning':
          // Even --quiet: the version has a property the publisher should know of.
          ctx.io.stderr.write(`ferry: warning: ${event.message}\n`);
          return;
      }
    };
    let result: Awaited<ReturnType<typeof publish>>;
    try {
      result = await publish({
        dir: resolve(ctx.io.cwd, dir),
        dest: destination,
        ref: values.ref,
        ...(store === undefined ? {} : { store }),
        ...(partSize === undefined ? {} : { partSize }),
        ...(concurrency === undefined ? {} : { concurrency }),
        signal: ctx.signal,
        onEvent,
      });
    } finally {
      view.close();
    }
    if (mode === 'json') {
      ctx.io.stdout.write(`${JSON.stringify({ type: 'done', result })}\n`);
    } else if (mode !== 'quiet') {
      const kept = result.files - result.uploadedFiles;
      const copied =
        result.copiedParts === 0
          ? ''
          : `, copied ${result.copiedParts} ${result.copiedParts === 1 ? 'part' : 'parts'} (${formatBytes(result.copiedBytes)}) into the store`;
      ctx.io.stdout.write(
        `published ${destination}@${result.ref} (${shortVersion(result.versionId)}): ${files(result.files)}, ${formatBytes(result.bytes)}\n` +
          `uploaded ${files(result.uploadedFiles)} (${formatBytes(result.uploadedBytes)})${copied}, ${kept} already there, in ${formatDuration(result.durationMs)}; parts in ${result.store}\n`,
      );
    }
    return 0;
  },
};
