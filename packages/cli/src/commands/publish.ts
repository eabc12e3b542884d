import { resolve } from 'node:path';
import { type PublishEvent, publish } from '@ferry/engine';
import { formatBytes, parseSize } from '../byte-size.js';
import type { Command } from '../command.js';
import { parseCommandArgs, parseCount, usageError } from '../command-args.js';
import { formatDuration } from '../format-duration.js';
import { outputMode, progressView } from '../output-mode.js';
import type { ActiveFile } from '../progress-view.js';
import { files, shortVersion } from '../pull-summary.js';
import { COMMON_FLAGS_HELP } from './pull-options.js';

const HELP = `Usage: ferry publish <dir> <dest> --ref <name> [flags]

Publishes a folder as a version: hashes its files in parallel, uploads those the
destination's current <name> does not already hold (large files in parts, in parallel),
then writes the manifest and moves the ref last, so nobody following the ref sees a
version whose files are not all there.

<dest> is s3://bucket/prefix or a local directory.

Flags:
  --ref <name>          the ref to move to the new version (v4, latest): A-Z a-z 0-9 . _ -
  --part-size <size>    part size of the content digests: 16MiB (default), 64MB, 1GiB, bytes
  --concurrency <n>     uploads in flight (default 4)
${COMMON_FLAGS_HELP}

With --json: {"type":"hashed"|"upload-start"|"upload-done"|"skipped",…} lines, then
{"type":"done","result":{"versionId","ref","files","bytes","uploadedFiles","uploadedBytes","durationMs"}}.

Examples:
  ferry publish ./llama s3://models/llama --ref v4
  ferry publish ./llama s3://models/llama --ref latest --part-size 64MiB`;

export const publishCommand: Command = {
  name: 'publish',
  summary: 'publish a folder as a version (uploads only what the store lacks)',
  help: HELP,
  async run(args, ctx) {
    const { values, positionals } = parseCommandArgs(
      'publish',
      args,
      { ref: { type: 'string' }, 'part-size': { type: 'string' }, concurrency: { type: 'string' } },
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
    const local = !/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(dest);
    const destination = local ? resolve(ctx.io.cwd, dest) : dest;
    ctx.setResumeHint('the ref was not moved; run the same `ferry publish` again.');
    const mode = outputMode(ctx.io, values);
    const view = progressView(ctx.io, mode);
    ctx.setCleanup(() => view.close());
    const active = new Map<string, ActiveFile>();
    let totalBytes = 0;
    let doneBytes = 0;
    let started = ctx.io.now();
    const onEvent = (event: PublishEvent) => {
      if (mode === 'json') {
        ctx.io.stdout.write(`${JSON.stringify(event)}\n`);
        return;
      }
      switch (event.type) {
        // Hashing a large folder takes a while: the same bar shows it, then the upload.
        case 'hash-start':
          totalBytes = event.bytes;
          break;
        case 'file-hashed':
          doneBytes += event.size;
          break;
        case 'hashed':
          doneBytes = 0;
          totalBytes = event.bytes;
          started = ctx.io.now();
          view.note(
            `hashed ${files(event.files)} (${formatBytes(event.bytes)}) in ${resolve(ctx.io.cwd, dir)}`,
          );
          break;
        case 'upload-start':
          active.set(event.path, { path: event.path, doneBytes: 0, totalBytes: event.size });
          break;
        case 'upload-done':
        case 'skipped':
          active.delete(event.path);
          doneBytes += event.size;
          break;
        case 'warning':
          // Even --quiet: the version has a property the publisher should know of.
          ctx.io.stderr.write(`ferry: warning: ${event.message}\n`);
          return;
      }
      const seconds = (ctx.io.now() - started) / 1000;
      const rate = seconds > 0 ? doneBytes / seconds : 0;
      view.update({
        doneBytes,
        totalBytes,
        rate,
        etaSeconds: rate > 0 ? (totalBytes - doneBytes) / rate : undefined,
        active: [...active.values()],
        retries: 0,
      });
    };
    let result: Awaited<ReturnType<typeof publish>>;
    try {
      result = await publish({
        dir: resolve(ctx.io.cwd, dir),
        dest: destination,
        ref: values.ref,
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
      ctx.io.stdout.write(
        `published ${destination}@${result.ref} (${shortVersion(result.versionId)}): ${files(result.files)}, ${formatBytes(result.bytes)}\n` +
          `uploaded ${files(result.uploadedFiles)} (${formatBytes(result.uploadedBytes)}), ${kept} already there, in ${formatDuration(result.durationMs)}\n`,
      );
    }
    return 0;
  },
};
