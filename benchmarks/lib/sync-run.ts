import type { PlanSummary, PullResult } from '@ferry/engine';
import { checkTree, type FileFacts } from './dataset.js';
import type { Origin } from './origin.js';
import { type SocketQueues, socketQueues } from './socket-queues.js';
import { spawnMeasured } from './spawn-measured.js';
import type { SyncTool } from './sync-tools.js';

/** One run of one tool (or of the ceiling), as measured. */
export interface SyncSample {
  tool: string;
  kind: 'ferry' | 'peer' | 'floor' | 'ceiling';
  wallMs: number;
  peakRssBytes?: number;
  /** User + system CPU of the tool's process tree (GNU time), when measurable. */
  cpuMs?: number;
  /** Bytes the origin sent (its own meter), else what the tool reported. */
  sourceBytes?: number;
  requests?: number;
  /** Empty when the tool finished and left exactly the expected files. */
  problems: string[];
  /** ferry's own account of the pull, from its `done` line. */
  result?: PullResult;
  /** Set when the run was SIGKILLed on purpose. */
  killed?: boolean;
  /** ferry's `retry` events with `attempt: 0`: a second request racing a stalled body. */
  hedges?: number;
  /** ferry's other `retry` events (a failed or timed-out read tried again). */
  retries?: number;
  /** ferry's plan, from its `plan` line: what it meant to fetch and what it resumed. */
  plan?: PlanSummary;
  /**
   * A killed run: bytes in its connections' socket buffers at the kill (sent by the
   * origin, never read by the tool); undefined where /proc cannot tell.
   */
  queuedAtKill?: SocketQueues;
}

export interface SyncRunOptions {
  /** The files `dest` must hold afterwards; undefined skips the check (a killed run). */
  expected?: Map<string, FileFacts>;
  /**
   * SIGKILL ferry once this fraction of the bytes to transfer is done: as soon as the
   * origin's meter (polled every {@link KILL_POLL_MS} ms) has sent that fraction of
   * `killOfBytes`, or ferry's own progress (a line every 250 ms, too coarse alone to place a
   * kill on a pull of 2 s) says so, whichever comes first.
   */
  killAtFraction?: number;
  /** The bytes `killAtFraction` is a fraction of, for the origin-meter trigger. */
  killOfBytes?: number;
}

/** How often the origin's meter is read while a kill is pending. */
export const KILL_POLL_MS = 10;

type FerryLine =
  | { type: 'done'; result: PullResult }
  | { type: 'progress'; transferredBytes: number; totalBytes: number }
  | { type: 'retry'; attempt: number }
  | { type: 'plan'; plan: PlanSummary }
  | { type: string };

/**
 * The socket queues of a stopped process once the origin has stopped sending to it: its
 * receive windows full, or its responses all sent. Until then the origin goes on filling
 * them, and the same would happen while a killed process is torn down (its memory goes
 * before its sockets), so every byte the origin's meter will count for the kill is either
 * in these queues or was read by the tool. Read every {@link KILL_POLL_MS} ms until three
 * reads agree, for at most a second.
 */
async function settledQueues(pid: number): Promise<SocketQueues | undefined> {
  let last = socketQueues(pid);
  let same = 0;
  for (let waited = 0; same < 2 && waited < 1000; waited += KILL_POLL_MS) {
    await new Promise((r) => setTimeout(r, KILL_POLL_MS));
    const now = socketQueues(pid);
    same = now?.unread === last?.unread && now?.unsent === last?.unsent ? same + 1 : 0;
    last = now;
  }
  return last;
}

/** Runs `tool` once against `origin`, metered by the origin where it can be. */
export async function runSync(
  tool: SyncTool,
  origin: Origin,
  prefix: string,
  dest: string,
  options: SyncRunOptions = {},
): Promise<SyncSample> {
  const { command, args, env } = await tool.command(origin, prefix, dest);
  const before = await origin.counters();
  let result: PullResult | undefined;
  let plan: PlanSummary | undefined;
  let killed = false;
  let hedges = 0;
  let retries = 0;
  let exited = false;
  let watching: Promise<void> | undefined;
  let queuedAtKill: SocketQueues | undefined;
  const { killAtFraction, killOfBytes } = options;
  const measured = await spawnMeasured(command, args, {
    env,
    async onKill(pid) {
      queuedAtKill = await settledQueues(pid);
    },
    onStart(kill) {
      if (killAtFraction === undefined || killOfBytes === undefined || before === undefined) return;
      const threshold = before.bytes + killAtFraction * killOfBytes;
      watching = (async () => {
        // One read at a time: the s3rver meter answers over one IPC channel, in order.
        while (!exited && !killed) {
          const now = await origin.counters();
          if (
            now !== undefined &&
            now.bytes >= threshold &&
            !exited &&
            !killed &&
            result === undefined
          ) {
            killed = true;
            kill();
            return;
          }
          await new Promise((r) => setTimeout(r, KILL_POLL_MS));
        }
      })();
    },
    onLine(line, kill) {
      if (tool.kind !== 'ferry' || !line.startsWith('{')) return;
      const event = JSON.parse(line) as FerryLine;
      if (event.type === 'done' && 'result' in event) result = event.result;
      if (event.type === 'plan' && 'plan' in event) plan = event.plan;
      if (event.type === 'retry' && 'attempt' in event) {
        if (event.attempt === 0) hedges++;
        else retries++;
      }
      if (
        killAtFraction !== undefined &&
        !killed &&
        result === undefined &&
        'transferredBytes' in event &&
        event.totalBytes > 0 &&
        event.transferredBytes >= event.totalBytes * killAtFraction
      ) {
        killed = true;
        kill();
      }
    },
  });
  exited = true;
  // The meter's last read must be answered before the final one is asked for.
  await watching;
  const after = await origin.counters();
  const problems: string[] = [];
  if (!killed && (measured.code !== 0 || measured.signal !== null)) {
    const tail = measured.stderr.trim().split('\n').slice(-3).join(' / ');
    problems.push(`exit ${measured.code ?? measured.signal}: ${tail}`);
  }
  if (problems.length === 0 && options.expected !== undefined) {
    const dir = result?.dir ?? tool.filesDir(dest, prefix);
    problems.push(...(await checkTree(dir, options.expected)));
  }
  const metered = before !== undefined && after !== undefined;
  const sourceBytes = metered ? after.bytes - before.bytes : result?.fetchedBytes;
  const requests = metered ? after.requests - before.requests : result?.requests;
  return {
    tool: tool.name,
    kind: tool.kind,
    wallMs: measured.wallMs,
    peakRssBytes: measured.peakRssBytes,
    ...(measured.cpuMs === undefined ? {} : { cpuMs: measured.cpuMs }),
    ...(sourceBytes === undefined ? {} : { sourceBytes }),
    ...(requests === undefined ? {} : { requests }),
    problems,
    ...(result === undefined ? {} : { result }),
    ...(plan === undefined ? {} : { plan }),
    ...(killed ? { killed } : {}),
    ...(killed && queuedAtKill !== undefined ? { queuedAtKill } : {}),
    ...(tool.kind === 'ferry' ? { hedges, retries } : {}),
  };
}

/** Runs `body` for every item, `runs` times, rotating the order each run so drift hits all alike. */
export async function alternate<T>(
  runs: number,
  items: T[],
  body: (item: T, run: number) => Promise<void>,
): Promise<void> {
  for (let run = 0; run < runs; run++) {
    for (let i = 0; i < items.length; i++) {
      await body(items[(i + run) % items.length] as T, run);
    }
  }
}
