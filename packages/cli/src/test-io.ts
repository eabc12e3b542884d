import type { CliIo, InterruptSignal } from './cli-io.js';

export interface FakeIoOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** stderr is a terminal. @default false */
  tty?: boolean;
  columns?: number;
}

/** A CliIo that records what is written and lets a test send signals and move the clock. */
export function fakeIo(options: FakeIoOptions = {}) {
  const written = { stdout: '', stderr: '' };
  const handlers = new Set<(signal: InterruptSignal) => void>();
  const exits: number[] = [];
  type Waiter = {
    stream: 'stdout' | 'stderr';
    test: (text: string) => boolean;
    resolve: () => void;
  };
  const waiters: Waiter[] = [];
  const wrote = () => {
    for (const w of [...waiters]) {
      if (w.test(written[w.stream])) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  let clock = 0;
  const io: CliIo = {
    stdout: {
      write: (text) => {
        written.stdout += text;
        wrote();
      },
      isTTY: false,
    },
    stderr: {
      write: (text) => {
        written.stderr += text;
        wrote();
      },
      isTTY: options.tty ?? false,
      ...(options.columns === undefined ? {} : { columns: options.columns }),
    },
    env: options.env ?? {},
    cwd: options.cwd ?? process.cwd(),
    onInterrupt(handler) {
      handlers.add(handler);
      return () => handlers.delete(handler);
    },
    exit: (code) => void exits.push(code),
    now: () => clock,
  };
  return {
    io,
    stdout: () => written.stdout,
    stderr: () => written.stderr,
    /** Lines of stdout parsed as JSON. */
    jsonLines: (): Array<Record<string, unknown>> =>
      written.stdout
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    /** Resolves once what `stream` received passes `test` (or contains it): a barrier, not a sleep. */
    waitFor: (stream: 'stdout' | 'stderr', test: string | ((text: string) => boolean)) =>
      new Promise<void>((resolve) => {
        waiters.push({
          stream,
          test: typeof test === 'string' ? (text) => text.includes(test) : test,
          resolve,
        });
        wrote();
      }),
    interrupt: (signal: InterruptSignal = 'SIGINT') => {
      for (const h of handlers) h(signal);
    },
    listeners: () => handlers.size,
    advance: (ms: number) => {
      clock += ms;
    },
    exits,
  };
}
