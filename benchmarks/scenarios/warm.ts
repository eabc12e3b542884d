import type { Scenario } from '../lib/scenario.js';
import { summarize, withTarget } from '../lib/summarize.js';
import { alternate, runSync, type SyncSample } from '../lib/sync-run.js';

const scenario: Scenario = {
  name: 'warm',
  description:
    'the model dataset pulled again into a cache that already has it (no-op): time and requests, ferry vs the peers',
  async run({ context }) {
    const rows = [];
    for (const origin of await context.origins()) {
      const published = await context.published(origin, 'model');
      if (published === undefined) continue;
      const tools = context.tools(origin);
      const dests = new Map<string, string>();
      for (const tool of tools) {
        const dest = await context.freshDir('warm', origin.name, tool.name);
        dests.set(tool.name, dest);
        const setup = await runSync(tool, origin, published.prefix, dest);
        if (setup.problems.length > 0)
          context.log(`${tool.name} setup failed: ${setup.problems[0]}`);
      }
      const samples: SyncSample[] = [];
      await alternate(context.config.runs, tools, async (tool) => {
        const dest = dests.get(tool.name) as string;
        samples.push(
          await runSync(tool, origin, published.prefix, dest, { expected: published.files }),
        );
      });
      let summary = summarize(origin, samples, {
        measure: 'warm',
        unit: 's',
        bytes: published.bytes,
      });
      summary = withTarget(summary, '≤2 requests', (r) => (r.requests ?? Infinity) <= 2);
      if (summary.some((r) => r.vsBestPeer !== undefined)) {
        summary = withTarget(summary, '≥5× faster than best peer', (r) => (r.vsBestPeer ?? 0) >= 5);
      }
      rows.push(...summary);
    }
    return rows;
  },
};

export default scenario;
