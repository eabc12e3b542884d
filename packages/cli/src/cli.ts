import { readFileSync } from 'node:fs';
import type { CliIo, InterruptSignal } from './cli-io.js';
import type { Command, CommandContext } from './command.js';
import { bakeCommand } from './commands/bake.js';
import { diffCommand } from './commands/diff.js';
import { gcCommand } from './commands/gc.js';
import { publishCommand } from './commands/publish.js';
import { pullCommand } from './commands/pull.js';
import { refsCommand } from './commands/refs.js';
import { resumeCommand } from './commands/resume.js';
import { rmCommand } from './commands/rm.js';
import { statusCommand } from './commands/status.js';
import { unpublishCommand } from './commands/unpublish.js';
import { verifyCommand } from './commands/verify.js';
import { didYouMean } from './did-you-mean.js';
import { EXIT, isAbort, reportError } from './error-report.js';

const COMMANDS: Command[] = [
  pullCommand,
  resumeCommand,
  statusCommand,
  verifyCommand,
  publishCommand,
  diffCommand,
  bakeCommand,
  gcCommand,
  rmCommand,
  refsCommand,
  unpublishCommand,
];

/** The package version, read once from package.json next to src/ and dist/. */
export function version(): string {
  const pkg: unknown = JSON.parse(
    readFileSync(new URL('../package.json', import.meta.url), 'utf8'),
  );
  return typeof pkg === 'object' &&
    pkg !== null &&
    'version' in pkg &&
    typeof pkg.version === 'string'
    ? pkg.version
    : 'unknown';
}

function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  const list = COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n');
  return `Usage: ferry <command> [flags]

ferry keeps large model files in a local cache filled from object storage, and moves
only what changed between versions.

Commands:
${list}

Every command takes --json, --quiet, --debug and --help.

Examples:
  ferry pull s3://models/llama@v3 --to /cache
  ferry publish ./llama s3://models/llama --ref v4
  ferry status /cache
  ferry pull --help

Exit status: 0 done, 1 failed, 2 usage, 130 interrupted.
Version ${version()}.`;
}

/** Flags before a `--`, where a value that looks like a flag is still a flag. */
function flagsOf(argv: string[]): string[] {
  const end = argv.indexOf('--');
  return end === -1 ? argv : argv.slice(0, end);
}

/**
 * Runs `ferry <argv…>` and resolves with the exit code: 0 done, 1 failed, 2 usage, 130
 * interrupted. Writes only through `io`, so tests run it in-process.
 */
export async function main(argv: string[], io: CliIo): Promise<number> {
  const flags = flagsOf(argv);
  const json = flags.includes('--json');
  const debug = flags.includes('--debug') || (io.env.FERRY_DEBUG ?? '') !== '';
  const [name, ...args] = argv;
  if (name === undefined) {
    io.stderr.write(`${mainHelp()}\n`);
    return EXIT.usage;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    const topic = COMMANDS.find((c) => c.name === args[0]);
    io.stdout.write(`${topic?.help ?? mainHelp()}\n`);
    return EXIT.ok;
  }
  if (name === '--version' || name === '-V' || name === '-v') {
    io.stdout.write(`${version()}\n`);
    return EXIT.ok;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (command === undefined) {
    const what = name.startsWith('-') ? `unknown flag ${name}` : `unknown command "${name}"`;
    const names = COMMANDS.map((c) => c.name);
    const guess = name.startsWith('-') ? undefined : didYouMean(name, names);
    io.stderr.write(
      `ferry: ${what}\nhint: ${guess === undefined ? '' : `Did you mean \`ferry ${guess}\`? `}Commands: ${names.join(', ')}; run \`ferry --help\`.\n`,
    );
    if (json) {
      io.stdout.write(`${JSON.stringify({ type: 'error', code: 'FERRY_USAGE', message: what })}\n`);
    }
    return EXIT.usage;
  }
  if (flags.includes('--help') || flags.includes('-h')) {
    io.stdout.write(`${command.help}\n`);
    return EXIT.ok;
  }
  return runCommand(command, args, io, {
    json,
    debug,
    quiet: flags.includes('--quiet') || flags.includes('-q'),
  });
}

async function runCommand(
  command: Command,
  args: string[],
  io: CliIo,
  flags: { json: boolean; debug: boolean; quiet: boolean },
): Promise<number> {
  const controller = new AbortController();
  let resumeHint: string | undefined;
  let cleanup: (() => void) | undefined;
  let interrupts = 0;
  const onInterrupt = (signal: InterruptSignal) => {
    interrupts++;
    if (interrupts > 1) {
      cleanup?.();
      io.stderr.write('ferry: stopped at once\n');
      io.exit(EXIT.interrupted);
      return;
    }
    if (!flags.quiet && !flags.json) {
      cleanup?.();
      io.stderr.write('ferry: stopping… (Ctrl-C again to quit at once)\n');
    }
    controller.abort(new Error(`interrupted by ${signal}`));
  };
  const ctx: CommandContext = {
    io,
    signal: controller.signal,
    setResumeHint: (hint) => {
      resumeHint = hint;
    },
    setCleanup: (fn) => {
      cleanup = fn;
    },
  };
  const unsubscribe = io.onInterrupt(onInterrupt);
  try {
    return await command.run(args, ctx);
  } catch (error) {
    if (controller.signal.aborted && isAbort(error)) {
      if (flags.json) {
        io.stdout.write(
          `${JSON.stringify({ type: 'error', code: 'FERRY_ABORTED', message: 'interrupted', ...(resumeHint === undefined ? {} : { hint: resumeHint }) })}\n`,
        );
      }
      io.stderr.write(
        `ferry: interrupted\n${resumeHint === undefined ? '' : `hint: ${resumeHint}\n`}`,
      );
      return EXIT.interrupted;
    }
    return reportError(error, { io, json: flags.json, debug: flags.debug });
  } finally {
    unsubscribe();
  }
}
