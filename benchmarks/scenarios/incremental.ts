import { formatBytes } from '@ferry/manifest';
import { changeDataset } from '../lib/dataset.js';
import type { BenchResult, Scenario } from '../lib/scenario.js';
import { summarize, withTarget } from '../lib/summarize.js';
import { runSync, type SyncSample } from '../lib/sync-run.js';
import type { SyncTool } from '../lib/sync-tools.js';

// The manifest and ref a published pull reads: kilobytes, allowed on top of the parts.
const METADATA_ALLOWANCE = 256 * 1024;

const scenario: Scenario = {
  name: 'incremental',
  description:
    'each run: 1 MiB changed inside one shard (same size) plus one new 3 MiB file, published, then every tool updates its copy',
  async run({ context }) {
    const rows: BenchResult[] = [];
    for (const origin of await context.origins()) {
      if (!origin.writable) {
        context.notes.push(`incremental: skipped on ${origin.name} (read-only)`);
        continue;
      }
      // A dataset of its own: the changes must not leak into the other scenarios' copy.
      const dataset = await context.dataset('model', `incremental-${origin.name}`);
      const prefix = 'incremental';
      await origin.publish(dataset, prefix);
      const [ferry, ...peers] = context.tools(origin);
      // ferry pulls the published prefix; the peers a plain copy (files at their paths), which
      // each run takes the same change as the published version: the files it touched,
      // written again before any tool runs.
      const plainPrefix = `${prefix}-plain`;
      const plain = peers.length > 0 && (await context.writePlain(origin, dataset, plainPrefix));
      const prefixes = new Map<SyncTool, string>();
      if (ferry !== undefined) prefixes.set(ferry, prefix);
      if (plain) for (const peer of peers) prefixes.set(peer, plainPrefix);
      const tools = [...prefixes.keys()];
      const dests = new Map<SyncTool, string>();
      for (const [tool, from] of prefixes) {
        const dest = await context.freshDir('incremental', origin.name, tool.name);
        dests.set(tool, dest);
        await runSync(tool, origin, from, dest);
      }
      const samples: SyncSample[] = [];
      let bound = 0;
      for (let run = 0; run < context.config.runs; run++) {
        const change = await changeDataset(dataset, run, context.partSize);
        await origin.publish(dataset, prefix);
        if (plain) await context.writePlain(origin, dataset, plainPrefix, change.paths);
        bound = 2 * context.partSize + change.addedBytes + METADATA_ALLOWANCE;
        for (let i = 0; i < tools.length; i++) {
          const tool = tools[(i + run) % tools.length];
          if (tool === undefined) continue;
          const dest = dests.get(tool) as string;
          const from = prefixes.get(tool) as string;
          samples.push(await runSync(tool, origin, from, dest, { expected: dataset.files }));
        }
      }
      const summary = summarize(origin, samples, {
        measure: 'incremental',
        unit: 's',
        bytes: dataset.bytes,
      });
      rows.push(
        ...withTarget(
          summary,
          `bytes ≤2 parts + new file (${formatBytes(bound)})`,
          (r) => (r.sourceBytes ?? Infinity) <= bound,
        ),
      );
    }
    return rows;
  },
};

export default scenario;
