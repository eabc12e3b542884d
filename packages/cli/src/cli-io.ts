/** A stream the CLI writes to: stdout or stderr, or a fake one in tests. */
export interface CliStream {
  write(text: string): void;
  /** True when a person is watching: live progress is drawn only then. */
  isTTY?: boolean;
  /** Terminal width; progress lines are cut to it so a redraw never wraps. */
  columns?: number;
}

/** A termination request the CLI turns into an abort. */
export type InterruptSignal = 'SIGINT' | 'SIGTERM';

/**
 * Everything the CLI touches outside itself, so `main` runs in-process in tests with
 * fake streams, environment and signals.
 */
export interface CliIo {
  stdout: CliStream;
  stderr: CliStream;
  env: Readonly<Record<string, string | undefined>>;
  /** Directory relative paths (and `./model.json`) resolve against. */
  cwd: string;
  /** Calls `handler` on each SIGINT/SIGTERM until the returned function is called. */
  onInterrupt(handler: (signal: InterruptSignal) => void): () => void;
  /** Ends the process at once: a second Ctrl-C does not wait for cleanup. */
  exit(code: number): void;
  /** Milliseconds on a monotonic clock, for rates and redraw throttling. */
  now(): number;
}

/** The real process: its streams, environment and signals. */
export function processIo(): CliIo {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    cwd: process.cwd(),
    onInterrupt(handler) {
      const onSigint = () => handler('SIGINT');
      const onSigterm = () => handler('SIGTERM');
      process.on('SIGINT', onSigint);
      process.on('SIGTERM', onSigterm);
      return () => {
        process.off('SIGINT', onSigint);
        process.off('SIGTERM', onSigterm);
      };
    },
    exit(code) {
      process.exit(code);
    },
    now: () => performance.now(),
  };
}
