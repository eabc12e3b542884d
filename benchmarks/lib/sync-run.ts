import type { PullResult } from '@ferry/engine';
import { checkTree, type FileFacts } from './dataset.js';
import type { Origin } from './origin.js';
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
}

export interface SyncRunOptions {
  /** The files `dest` must hold afterwards; undefined skips the check (a killed run). */
  expected?: Map<string, FileFacts>;
  /** SIGKILL ferry once this fraction of the bytes to transfer is done. */
  killAtFraction?: number;
}

type FerryLine =
  | { type: 'done'; result: PullResult }
  | { type: 'progress'; transferredBytes: number; totalBytes: number }
  | { type: string };

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
  let killed = false;
  const measured = await spawnMeasured(command, args, {
    env,
    onLine(line, kill) {
      if (tool.kind !== 'ferry' || !line.startsWith('{')) return;
      const event = JSON.parse(line) as FerryLine;
      if (event.type === 'done' && 'result' in event) result = event.result;
      if (
        options.killAtFraction !== undefined &&
        !killed &&
        'transferredBytes' in event &&
        event.totalBytes > 0 &&
        event.transferredBytes >= event.totalBytes * options.killAtFraction
      ) {
        killed = true;
        kill();
      }
    },
  });
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
    ...(killed ? { killed } : {}),
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
