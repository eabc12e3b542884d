import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The built binary: end-to-end tests run what users run (`pnpm build` first). */
export const FERRY_BIN = fileURLToPath(new URL('../../packages/cli/dist/bin.js', import.meta.url));

export interface FerryRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface FerryOptions {
  env: Record<string, string>;
  cwd?: string;
  /** Run as `nobody` (uid/gid 65534, via setpriv), as a container's unprivileged user would. */
  asNobody?: boolean;
}

/** A running `ferry` whose output can be awaited line by line. */
export interface FerryChild {
  child: ChildProcess;
  /** Resolves once stdout passes `test`: a barrier on what ferry printed, not a sleep. */
  waitForStdout(test: (stdout: string) => boolean): Promise<void>;
  /** Resolves when the process has exited. */
  done: Promise<FerryRun>;
}

/**
 * A clean environment: nothing from the developer's AWS profile or ferry settings leaks
 * into a test, and HOME points at the test's own folder.
 */
export function cleanEnv(home: string, extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, ...extra };
}

export function startFerry(args: string[], options: FerryOptions): FerryChild {
  if (!existsSync(FERRY_BIN)) throw new Error(`${FERRY_BIN} is missing: run \`pnpm build\` first`);
  const command = options.asNobody
    ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath]
    : [process.execPath];
  const child = spawn(command[0] as string, [...command.slice(1), FERRY_BIN, ...args], {
    env: options.env,
    cwd: options.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const waiters: Array<{ test: (s: string) => boolean; resolve: () => void }> = [];
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    for (const w of [...waiters]) {
      if (w.test(stdout)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const done = once(child, 'close').then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as NodeJS.Signals | null,
    stdout,
    stderr,
  }));
  return {
    child,
    done,
    waitForStdout: (test) =>
      new Promise<void>((resolve, reject) => {
        if (test(stdout)) return resolve();
        waiters.push({ test, resolve });
        done.then((run) =>
          reject(
            new Error(
              `ferry exited (${run.code ?? run.signal}) first:\n${run.stdout}\n${run.stderr}`,
            ),
          ),
        );
      }),
  };
}

/** Runs `ferry <args>` to the end. */
export function runFerry(args: string[], options: FerryOptions): Promise<FerryRun> {
  return startFerry(args, options).done;
}

/** stdout of a `--json` run, one object per line; throws if any line is not JSON. */
export function jsonLines(stdout: string): Array<Record<string, unknown> & { type: string }> {
  return stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown> & { type: string });
}

/** The `result` of the last line of a `--json` run, which must be `{"type":"done"}`. */
export function doneResult<T = Record<string, unknown>>(stdout: string): T {
  const last = jsonLines(stdout).at(-1);
  if (last?.type !== 'done') throw new Error(`last line is not a done event:\n${stdout}`);
  return last.result as T;
}

/** True once a `--json` progress line reports at least `bytes` transferred. */
export function progressAtLeast(stdout: string, bytes: number): boolean {
  return stdout
    .split('\n')
    .filter((line) => line.startsWith('{"type":"progress"'))
    .some((line) => (JSON.parse(line) as { transferredBytes: number }).transferredBytes >= bytes);
}
