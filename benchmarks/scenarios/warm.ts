import type { Scenario } from '../lib/scenario.js';
import { summarize, withTarget } from '../lib/summarize.js';
import { alternate, runSync, type SyncSample } from '../lib/sync-run.js';
import type { SyncTool } from '../lib/sync-tools.js';

const scenario: Scenario = {
  name: 'warm',
  description:
    'the model dataset pulled again into a cache that already has it (no-op): time and requests, ferry vs the peers',
  async run({ context }) {
    const rows = [];
    for (const origin of await context.origins()) {
      const published = await context.published(origin, 'model');
      if (published === undefined) continue;
      const [ferry, ...peers] = context.tools(origin);
      // ferry pulls the published prefix; the peers the plain copy (files at their paths).
      const readable = peers.length === 0 ? undefined : await context.readable(origin, 'model');
      const prefixes = new Map<SyncTool, string>();
      if (ferry !== undefined) prefixes.set(ferry, published.prefix);
      if (readable !== undefined) for (const peer of peers) prefixes.set(peer, readable.prefix);
      const tools = [...prefixes.keys()];
      const dests = new Map<SyncTool, string>();
      for (const [tool, prefix] of prefixes) {
        const dest = await context.freshDir('warm', origin.name, tool.name);
        dests.set(tool, dest);
        const setup = await runSync(tool, origin, prefix, dest);
        if (setup.problems.length > 0)
          context.log(`${tool.name} setup failed: ${setup.problems[0]}`);
      }
      const samples: SyncSample[] = [];
      await alternate(context.config.runs, tools, async (tool) => {
        const dest = dests.get(tool) as string;
        const prefix = prefixes.get(tool) as string;
        samples.push(await runSync(tool, origin, prefix, dest, { expected: published.files }));
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
