import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ObjectInfo } from '@ferry/adapters';
import type { Origin } from './origin.js';
import { spawnMeasured } from './spawn-measured.js';

export interface CeilingRun {
  wallMs: number;
  bytes: number;
  requests: number;
  /** curl's user + system CPU (GNU time); undefined in-process or without /usr/bin/time. */
  cpuMs?: number;
  /** curl's peak RSS; undefined for the in-process reader. */
  peakRssBytes?: number;
  /** Why the run failed (curl's exit and stderr), empty when it finished. */
  problems: string[];
}

export interface CeilingOptions {
  partSize: number;
  concurrency: number;
  /** Scratch space for curl's config file. */
  workDir: string;
}

interface Range {
  key: string;
  start: number;
  end: number;
}

function ranges(objects: ObjectInfo[], partSize: number): Range[] {
  const out: Range[] = [];
  for (const object of objects) {
    for (let start = 0; start < object.size; start += partSize) {
      out.push({ key: object.key, start, end: Math.min(object.size, start + partSize) });
    }
  }
  return out;
}

/**
 * The ceiling: every data object of `prefix` read as `partSize` ranges, `concurrency` at a
 * time, bodies dropped: no disk, no hashing. ferry's default part size and concurrency, so
 * what separates a ferry pull from it is the work ferry does per byte.
 */
export async function measureCeiling(
  origin: Origin,
  prefix: string,
  options: CeilingOptions,
): Promise<CeilingRun> {
  const todo = ranges(await origin.objects(prefix), options.partSize);
  const base = origin.httpBase?.(prefix);
  return base === undefined
    ? readerCeiling(origin, prefix, todo, options.concurrency)
    : curlCeiling(base, todo, options, origin.env);
}

// One curl with --parallel: C all the way, ~1.8 GB/s from nginx here where a Node http
// client tops out near 0.5 GB/s, so the ceiling measures the origin, not the client.
async function curlCeiling(
  base: string,
  todo: Range[],
  options: CeilingOptions,
  env: Record<string, string>,
): Promise<CeilingRun> {
  const prefix = base.endsWith('/') ? base : `${base}/`;
  const config = join(options.workDir, 'ceiling.curlrc');
  await writeFile(
    config,
    todo
      .map((r) => {
        const url = prefix + r.key.split('/').map(encodeURIComponent).join('/');
        return [
          `url = "${url}"`,
          `range = "${r.start}-${r.end - 1}"`,
          'output = "/dev/null"',
          'write-out = "%{size_download}\\n"',
          'fail',
          'silent',
          'show-error',
          '',
        ].join('\n');
      })
      // `range` and `write-out` are not per-URL options: without `next` between transfers
      // the last range would apply to every URL.
      .join('next\n'),
  );
  // Measured like every tool (wall, CPU, RSS); each finished transfer prints its size.
  let bytes = 0;
  const run = await spawnMeasured(
    'curl',
    ['--parallel', '--parallel-max', String(options.concurrency), '--config', config],
    {
      env: { ...process.env, ...env },
      onLine(line) {
        if (line !== '') bytes += Number(line);
      },
    },
  );
  const failed = run.code !== 0 || run.signal !== null;
  return {
    wallMs: run.wallMs,
    bytes,
    requests: todo.length,
    ...(run.cpuMs === undefined ? {} : { cpuMs: run.cpuMs }),
    ...(run.peakRssBytes > 0 ? { peakRssBytes: run.peakRssBytes } : {}),
    problems: failed
      ? [`curl exit ${run.code ?? run.signal}: ${run.stderr.trim().slice(-200)}`]
      : [],
  };
}

async function readerCeiling(
  origin: Origin,
  prefix: string,
  todo: Range[],
  concurrency: number,
): Promise<CeilingRun> {
  const reader = origin.rangeReader?.(prefix);
  if (reader === undefined) throw new Error(`${origin.name} has no way to read ranges`);
  const started = performance.now();
  let bytes = 0;
  let next = 0;
  try {
    const lane = async () => {
      while (next < todo.length) {
        const range = todo[next++];
        if (range === undefined) return;
        // Add after the await: `bytes += await …` would read `bytes` before other lanes add.
        const got = await reader.read(range.key, range.start, range.end);
        bytes += got;
      }
    };
    await Promise.all(Array.from({ length: concurrency }, lane));
  } finally {
    await reader.close();
  }
  return { wallMs: performance.now() - started, bytes, requests: todo.length, problems: [] };
}
