import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type PublishResult, publish } from '@ferry/engine';
import { formatBytes } from '@ferry/manifest';
import { type Dataset, type DatasetSpec, describeDir, generateDataset } from '../lib/dataset.js';
import type { OriginCounters } from '../lib/origin.js';
import type { BenchResult, Scenario } from '../lib/scenario.js';
import { summarize, withTarget } from '../lib/summarize.js';
import { alternate, runSync, type SyncSample } from '../lib/sync-run.js';
import { ferryTool, type SyncTool } from '../lib/sync-tools.js';

const MiB = 2 ** 20;

/** One publish of the second model, as the origin's meter saw it. */
interface PublishSample {
  result: PublishResult;
  requests: number;
  /** What s3rver received, headers included. */
  bytesIn: number;
  wallMs: number;
}

const scenario: Scenario = {
  name: 'dedup',
  description:
    "two models sharing their first shard (the model dataset's size and shards: 64 MiB at the defaults) published to one bucket: what the second publish uploads into the bucket's store, next to the same publish into a prefix that keeps its own parts (as before stores); then cold pulls of both",
  async run({ context }) {
    const rows: BenchResult[] = [];
    for (const origin of await context.origins()) {
      const s3 = origin.s3;
      if (origin.name !== 's3rver' || s3 === undefined) {
        context.notes.push(`dedup: skipped on ${origin.name} (publishes to s3rver's bucket)`);
        continue;
      }
      const sourceOptions = {
        ...(s3.endpoint === undefined ? {} : { endpoint: s3.endpoint }),
        region: s3.region,
        ...(s3.credentials === undefined ? {} : { credentials: s3.credentials }),
      };
      const [a, b] = await twoModels(context.config.workDir, context.spec('model'));
      const shared = [...a.files].find(([path]) => path.endsWith('.safetensors'));
      context.log(
        `models of ${formatBytes(a.bytes)} and ${formatBytes(b.bytes)} sharing ${shared?.[0]} (${formatBytes(shared?.[1].size ?? 0)})`,
      );
      const publishB = async (prefix: string, store?: string): Promise<PublishSample> => {
        const before = (await origin.counters()) as OriginCounters;
        const started = performance.now();
        const result = await publish({
          dir: b.dir,
          dest: `s3://${s3.bucket}/${prefix}`,
          ref: 'latest',
          sourceOptions,
          ...(store === undefined ? {} : { store: `s3://${s3.bucket}/${store}` }),
        });
        const wallMs = performance.now() - started;
        const after = (await origin.counters()) as OriginCounters;
        return {
          result,
          requests: after.requests - before.requests,
          bytesIn: (after.bytesIn ?? 0) - (before.bytesIn ?? 0),
          wallMs,
        };
      };
      context.log('publishing the first model to the bucket');
      await publish({
        dir: a.dir,
        dest: `s3://${s3.bucket}/dedup-a`,
        ref: 'latest',
        sourceOptions,
      });
      context.log('publishing the second model: to the bucket store, then to its own prefix');
      const store = await publishB('dedup-b');
      const own = await publishB('dedup-b-own', 'dedup-b-own');
      const sample = (label: string, s: PublishSample): BenchResult[] => [
        {
          name: `second model publish: uploaded (${label})`,
          value: s.result.uploadedBytes / MiB,
          unit: 'MiB',
          baseline: 'own prefix',
          ratio: s.result.uploadedBytes / own.result.uploadedBytes,
          extra: {
            receivedByOrigin: s.bytesIn,
            uploadedParts: s.result.uploadedParts,
            store: s.result.store,
          },
        },
        {
          name: `second model publish: requests (${label})`,
          value: s.requests,
          unit: 'requests',
          baseline: 'own prefix',
          ratio: s.requests / own.requests,
          extra: { uploadedParts: s.result.uploadedParts },
        },
        {
          name: `second model publish: received by s3rver (${label})`,
          value: s.bytesIn / MiB,
          unit: 'MiB',
          baseline: 'own prefix',
          ratio: s.bytesIn / own.bytesIn,
        },
        {
          name: `second model publish: wall (${label})`,
          value: s.wallMs / 1000,
          unit: 's',
          baseline: 'own prefix',
          ratio: s.wallMs / own.wallMs,
        },
      ];
      rows.push(...sample('bucket store', store), ...sample('own prefix', own));

      // Cold pulls of the same version from both layouts: the part keys differ only in
      // their prefix, so throughput should not.
      const tools = new Map<SyncTool, string>([
        [ferryTool(context.ferry, context.config.concurrency, 'ferry (bucket store)'), 'dedup-b'],
        [ferryTool(context.ferry, context.config.concurrency, 'ferry (own prefix)'), 'dedup-b-own'],
      ]);
      const samples: SyncSample[] = [];
      await alternate(context.config.runs, [...tools.keys()], async (tool, run) => {
        const dest = await context.freshDir('dedup', tool.name.replace(/\W+/g, '-'), String(run));
        const prefix = tools.get(tool) as string;
        samples.push(await runSync(tool, origin, prefix, dest, { expected: b.files }));
      });
      const summary = summarize(origin, samples, {
        measure: 'cold pull of the second model',
        unit: 'MB/s',
        bytes: b.bytes,
      });
      const baseline = summary.find((r) => r.tool === 'ferry (own prefix)')?.value;
      rows.push(
        ...withTarget(
          summary,
          '≥0.90× own prefix',
          (r) => (baseline === undefined ? undefined : r.value >= 0.9 * baseline),
          ['ferry (bucket store)'],
        ),
      );
    }
    return rows;
  },
};

/**
 * The model dataset's shape twice, with bytes of their own (seeds far enough apart that no
 * file of one, nor of the other scenarios' datasets, repeats another: a dataset's files are
 * seeded from its seed plus up to 10,000 + file count), the second taking the first's first shard: a fine-tune that kept a shard, or two
 * models built on one base.
 */
async function twoModels(workDir: string, spec: DatasetSpec): Promise<[Dataset, Dataset]> {
  const a = await generateDataset(join(workDir, 'data', 'dedup-a'), { ...spec, seed: 20_000 });
  await generateDataset(join(workDir, 'data', 'dedup-b'), { ...spec, seed: 40_000 });
  const shard = [...a.files.keys()].find((p) => p.endsWith('.safetensors'));
  if (shard === undefined) throw new Error('dedup needs a dataset with shards');
  await copyFile(join(a.dir, shard), join(workDir, 'data', 'dedup-b', shard));
  return [a, await describeDir(join(workDir, 'data', 'dedup-b'))];
}

export default scenario;
