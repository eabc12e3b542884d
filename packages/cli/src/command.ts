import type { CliIo } from './cli-io.js';

/** What a command runs with. */
export interface CommandContext {
  io: CliIo;
  /** Aborted on SIGINT/SIGTERM. */
  signal: AbortSignal;
  /** Tells `main` what to suggest if the command is interrupted (`ferry resume /cache`). */
  setResumeHint(hint: string): void;
  /** Called on a second Ctrl-C right before the process exits, to restore the terminal. */
  setCleanup(cleanup: (() => void) | undefined): void;
}

/** One `ferry <name>` command. */
export interface Command {
  name: string;
  /** One line for `ferry --help`. */
  summary: string;
  /** The full `ferry <name> --help` text. */
  help: string;
  /** Resolves with the exit code; throws FerryError for failures. */
  run(args: string[], ctx: CommandContext): Promise<number>;
}
