import { join } from 'node:path';
import { formatBytes } from '@ferry/manifest';
import type { BenchContext, PublishedDataset } from '../lib/context.js';
import { checkTree } from '../lib/dataset.js';
import { type CacheCounters, startNginxCache } from '../lib/nginx-cache.js';
import { findNginx } from '../lib/nginx-origin.js';
import type { Origin } from '../lib/origin.js';
import { type BenchResult, median, type Scenario } from '../lib/scenario.js';
import { alternate, runSync } from '../lib/sync-run.js';
import { ferryTool, type SyncTool } from '../lib/sync-tools.js';

/** Pulls started at once: a fleet of machines booting the same model. */
const FLEET = 8;

/** The target: with the cache, the origin serves the fleet about one copy of the set. */
const MIRROR_LIMIT = 1.1;

type Mode = 'with --mirror' | 'without --mirror';

/** One fleet of {@link FLEET} concurrent pulls, measured as a whole. */
interface FleetSample {
  /** From the first spawn to the last exit. */
  wallMs: number;
  /** What the origin's meter counted for the whole fleet (cache misses included). */
  originBytes: number;
  originRequests: number;
  /** The cache's access log, with --mirror. */
  cache?: CacheCounters;
  /** Sum of the pulls' user + system CPU, when GNU time measured every one. */
  cpuMs?: number;
  peakRssBytes: number;
  /** ferry's `retry` events with `attempt` ≥ 1 (a mirror that failed is one). */
  retries: number;
  problems: string[];
}

/** ferry pulling `<origin URI>@latest`, through `mirror` first when given. */
function fleetTool(context: BenchContext, mirror: string | undefined): SyncTool {
  const ferry = ferryTool(context.ferry, context.config.concurrency);
  return {
    ...ferry,
    async command(origin, prefix, dest) {
      const command = await ferry.command(origin, prefix, dest);
      return mirror === undefined
        ? command
        : { ...command, args: [...command.args, '--mirror', mirror] };
    },
  };
}

async function runFleet(
  context: BenchContext,
  origin: Origin,
  published: PublishedDataset,
  mode: Mode,
  run: number,
): Promise<FleetSample> {
  const { prefix } = published;
  const base = origin.httpBase?.(prefix);
  if (base === undefined) throw new Error(`fleet: ${origin.name} has no plain-HTTP URL`);
  const url = new URL(base);
  // Started for each fleet in an emptied folder: the cache is cold every time.
  const cache =
    mode === 'with --mirror'
      ? await startNginxCache({
          dir: join(context.config.workDir, 'fleet-cache'),
          upstream: url.origin,
        })
      : undefined;
  try {
    // The published prefix's URL as seen through the cache.
    const mirror = cache === undefined ? undefined : `${cache.endpoint}${url.pathname}/`;
    const tool = fleetTool(context, mirror);
    // No per-pull meter: the pulls overlap, so only the fleet's total is the origin's.
    const pulled: Origin = {
      ...origin,
      ferryUri: (p) => `${origin.ferryUri(p)}@latest`,
      counters: async () => undefined,
    };
    const roots: string[] = [];
    for (let i = 0; i < FLEET; i++) {
      roots.push(await context.freshDir('fleet', `${run}-${mode.replaceAll(' ', '')}`, `${i}`));
    }
    const before = await origin.counters();
    const t0 = performance.now();
    // Files are checked after every pull has ended: hashing 8 copies while others still
    // pull would slow the fleet down and count in its wall time.
    const samples = await Promise.all(roots.map((root) => runSync(tool, pulled, prefix, root)));
    const wallMs = performance.now() - t0;
    const after = await origin.counters();
    if (before === undefined || after === undefined) throw new Error('fleet: no origin meter');
    const problems: string[] = [];
    for (const [i, sample] of samples.entries()) {
      problems.push(...sample.problems.map((p) => `pull ${i}: ${p}`));
      if (sample.problems.length > 0) continue;
      const dir = sample.result?.dir ?? tool.filesDir(roots[i] as string, prefix);
      problems.push(...(await checkTree(dir, published.files)).map((p) => `pull ${i}: ${p}`));
    }
    const cpu = samples.map((s) => s.cpuMs);
    const sample: FleetSample = {
      wallMs,
      originBytes: after.bytes - before.bytes,
      originRequests: after.requests - before.requests,
      ...(cache === undefined ? {} : { cache: await cache.counters() }),
      ...(cpu.every((c) => c !== undefined)
        ? { cpuMs: cpu.reduce((a: number, c) => a + (c ?? 0), 0) }
        : {}),
      peakRssBytes: Math.max(...samples.map((s) => s.peakRssBytes ?? 0)),
      retries: samples.reduce((n, s) => n + (s.retries ?? 0), 0),
      problems,
    };
    const c = sample.cache;
    context.log(
      `${mode}: ${(wallMs / 1000).toFixed(2)} s, origin sent ${formatBytes(sample.originBytes)} in ${sample.originRequests} requests (${(sample.originBytes / published.bytes).toFixed(2)}× the set)${c === undefined ? '' : `; cache: ${c.requests} requests, ${c.hits} hits, ${c.misses} misses, ${c.other} other, ${formatBytes(c.bytes)} sent`}; ${sample.retries} retries${problems.length > 0 ? ` WRONG ${problems[0]}` : ''}`,
    );
    for (const root of roots) await context.discard(root);
    return sample;
  } finally {
    await cache?.close();
  }
}

function summarizeFleet(
  origin: Origin,
  published: PublishedDataset,
  mode: Mode,
  runs: FleetSample[],
): BenchResult[] {
  const setBytes = published.bytes;
  const originBytes = median(runs.map((r) => r.originBytes));
  const times = originBytes / setBytes;
  const wallMs = median(runs.map((r) => r.wallMs));
  const problems = [...new Set(runs.flatMap((r) => r.problems))];
  const cpu = runs.map((r) => r.cpuMs).filter((c): c is number => c !== undefined);
  const cpuMs = cpu.length === runs.length && cpu.length > 0 ? median(cpu) : undefined;
  const worst = Math.max(...runs.map((r) => r.originBytes)) / setBytes;
  const target =
    mode === 'with --mirror'
      ? `origin ≤${MIRROR_LIMIT}× set: ${times.toFixed(2)}× (worst run ${worst.toFixed(2)}×), ${worst <= MIRROR_LIMIT ? 'met' : 'MISSED'}`
      : `baseline (≈${FLEET}× set): ${times.toFixed(2)}×`;
  const caches = runs.map((r) => r.cache).filter((c): c is CacheCounters => c !== undefined);
  const transfer: BenchResult = {
    name: `${FLEET} pulls ${mode}`,
    origin: origin.name,
    tool: 'ferry',
    // Every pull delivers the whole set: the fleet's MB/s.
    value: (FLEET * setBytes) / 1e6 / (wallMs / 1000),
    unit: 'MB/s',
    wallMs,
    sourceBytes: originBytes,
    requests: median(runs.map((r) => r.originRequests)),
    peakRssBytes: Math.max(...runs.map((r) => r.peakRssBytes)),
    ...(cpuMs === undefined
      ? {}
      : { cpuSeconds: cpuMs / 1000, cpuPerGiB: cpuMs / 1000 / ((FLEET * setBytes) / 2 ** 30) }),
    correct: problems.length === 0,
    ...(problems.length === 0 ? {} : { problems: problems.slice(0, 5) }),
    target,
    extra: {
      runs: runs.length,
      fleet: FLEET,
      setBytes,
      walls: runs.map((r) => Math.round(r.wallMs)).join(' '),
      originBytes: runs.map((r) => r.originBytes).join(' '),
      originRequests: runs.map((r) => r.originRequests).join(' '),
      retries: runs.map((r) => r.retries).join(' '),
      ...(caches.length === 0
        ? {}
        : {
            cacheHits: caches.map((c) => c.hits).join(' '),
            cacheMisses: caches.map((c) => c.misses).join(' '),
            cacheOther: caches.map((c) => c.other).join(' '),
          }),
    },
  };
  // The same figure next to the set's size, in the table of measures.
  const measure: BenchResult = {
    name: `origin bytes / set (${formatBytes(setBytes)}), ${FLEET} pulls ${mode}`,
    value: times,
    unit: '× set',
  };
  return [transfer, measure];
}

const scenario: Scenario = {
  name: 'fleet',
  description: `${FLEET} concurrent pulls of the model dataset from an nginx origin, through a cold nginx proxy_cache (--mirror) and without it: bytes the origin served`,
  async run({ context }) {
    if (findNginx() === undefined) {
      context.notes.push(
        'fleet skipped: nginx (origin and cache) is not installed: apt-get install -y nginx',
      );
      return [];
    }
    const origin = await context.origin('nginx');
    const published = await context.published(origin, 'model');
    if (published === undefined) throw new Error('fleet: the model dataset was not published');
    context.log(
      `fleet: ${FLEET} pulls of ${formatBytes(published.bytes)} at once from ${origin.describe}`,
    );
    const modes: Mode[] = ['with --mirror', 'without --mirror'];
    const samples = new Map<Mode, FleetSample[]>(modes.map((m) => [m, []]));
    await alternate(context.config.runs, modes, async (mode, run) => {
      samples.get(mode)?.push(await runFleet(context, origin, published, mode, run));
    });
    const rows: BenchResult[] = [];
    for (const mode of modes) {
      rows.push(...summarizeFleet(origin, published, mode, samples.get(mode) ?? []));
    }
    const mirrored = rows.find((r) => r.unit === '× set' && r.name.endsWith('with --mirror'));
    const plain = rows.find((r) => r.unit === '× set' && r.name.endsWith('without --mirror'));
    if (mirrored !== undefined && plain !== undefined) {
      mirrored.baseline = plain.name;
      mirrored.ratio = mirrored.value / plain.value;
    }
    return rows;
  },
};

export default scenario;
