import { formatBytes } from '../lib/byte-size.js';
import { type BenchResult, median, type Scenario } from '../lib/scenario.js';
import { runSync } from '../lib/sync-run.js';
import { ferryTool } from '../lib/sync-tools.js';

const scenario: Scenario = {
  name: 'resume',
  description:
    'ferry SIGKILLed at 50 % of a cold pull of the model dataset, then pulled again: waste = bytes fetched in total − dataset size',
  async run({ context }) {
    const rows: BenchResult[] = [];
    const ferry = ferryTool(context.ferry, context.config.concurrency);
    // Every part in flight at the kill may be lost, and no more.
    const bound = context.config.concurrency * context.partSize;
    for (const origin of await context.origins()) {
      const published = await context.published(origin, 'model');
      if (published === undefined) continue;
      if ((await origin.counters()) === undefined) {
        context.notes.push(`resume: skipped on ${origin.name} (no origin-side byte meter)`);
        continue;
      }
      const wastes: number[] = [];
      const walls: number[] = [];
      // CPU of the killed run and of the resumed one together: what the interrupted pull cost.
      const cpus: number[] = [];
      const problems: string[] = [];
      let peak = 0;
      for (let run = 0; run < context.config.runs; run++) {
        const dest = await context.freshDir('resume', origin.name);
        const killed = await runSync(ferry, origin, published.prefix, dest, {
          killAtFraction: 0.5,
        });
        if (!killed.killed) problems.push('finished before it could be killed at 50 %');
        const resumed = await runSync(ferry, origin, published.prefix, dest, {
          expected: published.files,
        });
        problems.push(...resumed.problems);
        const total = (killed.sourceBytes ?? 0) + (resumed.sourceBytes ?? 0);
        wastes.push(total - published.bytes);
        walls.push(resumed.wallMs);
        if (killed.cpuMs !== undefined && resumed.cpuMs !== undefined) {
          cpus.push(killed.cpuMs + resumed.cpuMs);
        }
        peak = Math.max(peak, killed.peakRssBytes ?? 0, resumed.peakRssBytes ?? 0);
        context.log(
          `resume on ${origin.name}: before kill ${formatBytes(killed.sourceBytes ?? 0)}, after ${formatBytes(resumed.sourceBytes ?? 0)}, waste ${formatBytes(total - published.bytes)}`,
        );
      }
      const waste = median(wastes);
      const cpuSeconds = cpus.length === 0 ? undefined : median(cpus) / 1000;
      rows.push({
        name: 'waste after SIGKILL at 50 %',
        origin: origin.name,
        tool: 'ferry',
        value: waste / 1e6,
        unit: 'MB waste',
        wallMs: median(walls),
        sourceBytes: published.bytes + waste,
        peakRssBytes: peak,
        ...(cpuSeconds === undefined
          ? {}
          : { cpuSeconds, cpuPerGiB: cpuSeconds / (published.bytes / 2 ** 30) }),
        correct: problems.length === 0,
        ...(problems.length === 0 ? {} : { problems: [...new Set(problems)] }),
        target: `waste ≤ in-flight parts (${formatBytes(bound)}): ${waste <= bound ? 'met' : 'MISSED'}`,
        extra: { wastes: wastes.map((w) => Math.round(w)).join(' '), inFlightBound: bound },
      });
    }
    return rows;
  },
};

export default scenario;
