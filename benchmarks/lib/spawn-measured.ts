import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/** GNU time: user and system CPU and max RSS of a command, measured from outside it. */
export const GNU_TIME = '/usr/bin/time';

/** How to get GNU time where it is missing (the CPU column stays blank without it). */
export const GNU_TIME_INSTALL = 'apt-get install -y time';

/** Whether CPU can be measured here: GNU time at /usr/bin/time. */
export function hasGnuTime(): boolean {
  return existsSync(GNU_TIME);
}

/** A finished child process with its wall time, CPU and peak resident memory. */
export interface MeasuredProcess {
  wallMs: number;
  /**
   * Peak RSS in bytes: the larger of the command's VmHWM as last polled from /proc and GNU
   * time's max RSS (which also covers the children it waited for); 0 if neither was read.
   */
  peakRssBytes: number;
  /**
   * User + system CPU of the command and of every child it waited for, in ms (GNU time's
   * `%U + %S`); undefined without /usr/bin/time.
   */
  cpuMs?: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

export interface SpawnMeasuredOptions {
  env: Record<string, string | undefined>;
  cwd?: string;
  /** Each stdout line; call `kill()` to SIGKILL the process (the resume scenario). */
  onLine?: (line: string, kill: () => void) => void;
  /**
   * Called once the process is spawned, with the same `kill()`: for a caller that decides
   * when to kill from something other than the output (the origin's byte meter).
   */
  onStart?: (kill: () => void) => void;
  /**
   * Called with the command's pid between the SIGSTOP and the SIGKILL that `kill()` sends
   * (the SIGKILL waits for a returned promise): a last look at the process, frozen as the
   * kill finds it, its connections still open.
   */
  onKill?: (pid: number) => void | Promise<void>;
}

// Often enough that the last read is close to the process's exit; VmHWM only grows, so a
// missed read loses nothing but the last few milliseconds of growth.
const RSS_POLL_MS = 20;

async function readHwm(pid: number): Promise<number | undefined> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => undefined);
  const kb = status === undefined ? undefined : /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
  return kb === undefined ? undefined : Number(kb) * 1024;
}

// The command GNU time forked: its only child (needs CONFIG_PROC_CHILDREN, as Debian has).
function onlyChild(pid: number): number | undefined {
  try {
    const first = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ')[0];
    return first === undefined || first === '' ? undefined : Number(first);
  } catch {
    return undefined;
  }
}

interface TimeReport {
  cpuMs: number;
  maxRssBytes: number;
  /** GNU time exits 128 + n for a command killed by signal n: this gives the signal back. */
  signal: NodeJS.Signals | null;
}

// `-f '%U %S %M'` writes that line last; before it GNU time may add "Command exited with
// non-zero status N" or "Command terminated by signal N".
function parseTimeReport(text: string): TimeReport | undefined {
  const lines = text.trim().split('\n');
  const figures = /^(\d+(?:\.\d+)?) (\d+(?:\.\d+)?) (\d+)$/.exec(lines.at(-1) ?? '');
  if (figures === null) return undefined;
  const bySignal = /terminated by signal (\d+)/.exec(text)?.[1];
  const signal =
    bySignal === undefined
      ? null
      : ((Object.entries(constants.signals).find(([, n]) => n === Number(bySignal))?.[0] ??
          null) as NodeJS.Signals | null);
  return {
    cpuMs: (Number(figures[1]) + Number(figures[2])) * 1000,
    maxRssBytes: Number(figures[3]) * 1024,
    signal,
  };
}

let reports = 0;

/**
 * Runs a command to its end, timing it. Under GNU time when /usr/bin/time exists
 * (`time -f '%U %S %M' -o <file> command…`), which gives user + system CPU of the command
 * and the children it waited for, and their max RSS; the command's VmHWM is polled from
 * /proc as well (threads such as piscina workers are in the same process) and the larger
 * peak is reported.
 */
export function spawnMeasured(
  command: string,
  args: string[],
  options: SpawnMeasuredOptions,
): Promise<MeasuredProcess> {
  const timed = hasGnuTime();
  const report = join(tmpdir(), `ferry-bench-time-${process.pid}-${reports++}.txt`);
  const started = performance.now();
  const child = timed
    ? spawn(GNU_TIME, ['-f', '%U %S %M', '-o', report, command, ...args], {
        env: options.env,
        cwd: options.cwd,
        stdio: ['ignore', 'pipe', 'pipe'],
      })
    : spawn(command, args, {
        env: options.env,
        cwd: options.cwd,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
  let peak = 0;
  // Under GNU time the command is time's child, found on the first polls.
  let commandPid = timed ? undefined : child.pid;
  const findCommand = () => {
    if (commandPid === undefined && child.pid !== undefined) commandPid = onlyChild(child.pid);
    return commandPid;
  };
  const poll =
    child.pid === undefined
      ? undefined
      : setInterval(() => {
          const pid = findCommand();
          if (pid === undefined) return;
          void readHwm(pid).then((hwm) => {
            if (hwm !== undefined && hwm > peak) peak = hwm;
          });
        }, RSS_POLL_MS);
  // SIGKILL the command itself: killing GNU time would leave the command running, orphaned.
  // Stopped first, so that what `onKill` sees is what the kill loses: a running process
  // would go on reading (and writing) while /proc is read.
  const kill = () => {
    const pid = findCommand();
    if (pid === undefined) {
      child.kill('SIGKILL');
      return;
    }
    const send = (signal: NodeJS.Signals) => {
      try {
        process.kill(pid, signal);
      } catch {
        // Already gone: nothing left to stop or kill.
      }
    };
    send('SIGSTOP');
    void (async () => {
      try {
        await options.onKill?.(pid);
      } finally {
        send('SIGKILL');
      }
    })();
  };
  const lines = createInterface({ input: child.stdout });
  lines.on('line', (line) => options.onLine?.(line, kill));
  options.onStart?.(kill);
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    // Enough to explain a failure, bounded so a chatty tool cannot fill memory.
    if (stderr.length < 64 * 1024) stderr += chunk.toString();
  });
  return new Promise((resolve, reject) => {
    child.once('error', (error) => {
      clearInterval(poll);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearInterval(poll);
      const wallMs = performance.now() - started;
      if (!timed) {
        resolve({ wallMs, peakRssBytes: peak, code, signal, stderr });
        return;
      }
      void (async () => {
        const text = await readFile(report, 'utf8').catch(() => '');
        await rm(report, { force: true });
        const parsed = parseTimeReport(text);
        if (parsed === undefined) {
          resolve({ wallMs, peakRssBytes: peak, code, signal, stderr });
          return;
        }
        resolve({
          wallMs,
          peakRssBytes: Math.max(peak, parsed.maxRssBytes),
          cpuMs: parsed.cpuMs,
          code: parsed.signal === null ? code : null,
          signal: parsed.signal ?? signal,
          stderr,
        });
      })();
    });
  });
}
