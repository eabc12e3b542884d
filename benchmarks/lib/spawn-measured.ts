import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';

/** A finished child process with its wall time and peak resident memory. */
export interface MeasuredProcess {
  wallMs: number;
  /** VmHWM of the process as last read before it exited, in bytes (0 if never read). */
  peakRssBytes: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

export interface SpawnMeasuredOptions {
  env: Record<string, string | undefined>;
  cwd?: string;
  /** Each stdout line; call `kill()` to SIGKILL the process (the resume scenario). */
  onLine?: (line: string, kill: () => void) => void;
}

// Often enough that the last read is close to the process's exit; VmHWM only grows, so a
// missed read loses nothing but the last few milliseconds of growth.
const RSS_POLL_MS = 20;

async function readHwm(pid: number): Promise<number | undefined> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => undefined);
  const kb = status === undefined ? undefined : /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
  return kb === undefined ? undefined : Number(kb) * 1024;
}

/**
 * Runs a command to its end, timing it and polling its peak RSS from /proc (threads such as
 * piscina workers are in the same process; child processes are not counted).
 */
export function spawnMeasured(
  command: string,
  args: string[],
  options: SpawnMeasuredOptions,
): Promise<MeasuredProcess> {
  const started = performance.now();
  const child = spawn(command, args, {
    env: options.env,
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let peak = 0;
  const pid = child.pid;
  const poll =
    pid === undefined
      ? undefined
      : setInterval(() => {
          void readHwm(pid).then((hwm) => {
            if (hwm !== undefined && hwm > peak) peak = hwm;
          });
        }, RSS_POLL_MS);
  const kill = () => child.kill('SIGKILL');
  const lines = createInterface({ input: child.stdout });
  lines.on('line', (line) => options.onLine?.(line, kill));
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
      resolve({ wallMs: performance.now() - started, peakRssBytes: peak, code, signal, stderr });
    });
  });
}
