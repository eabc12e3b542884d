import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_PART_SIZE } from '@ferry/manifest';
import { type Dataset, type DatasetSpec, type FileFacts, generateDataset } from './dataset.js';
import { envOrigin, envPrefix } from './env-origin.js';
import type { FerryDriver } from './ferry-driver.js';
import { findNginx, type NginxServer, nginxOrigin, startNginx } from './nginx-origin.js';
import type { Origin, OriginName } from './origin.js';
import { uploadPlainCopy } from './plain-copy.js';
import { startS3rverOrigin } from './s3rver-origin.js';
import { awsV2, ferryTool, type PeerInfo, type SyncTool } from './sync-tools.js';

/** The runner's flags. */
export interface BenchConfig {
  /** Runs per tool, median reported. @default 3 */
  runs: number;
  /** Total bytes of the model dataset's shards. @default 256 MiB */
  size: number;
  /** Shards the model dataset is cut into. @default 4 */
  shards: number;
  /** Files of 64 KiB in the many-small-files dataset. @default 1000 */
  smallFiles: number;
  /** Size of the one-large-file dataset. @default 512 MiB */
  largeSize: number;
  /** Origins to run against. @default s3rver, nginx (when installed), env (when set) */
  origins: OriginName[];
  /** `--concurrency` for ferry and the ceiling's parallel ranges. @default 16 */
  concurrency: number;
  /** Kills per prefix in the resume scenario, at seeded fractions over 5–95 %. @default 10 */
  killPoints: number;
  /** Where data, origins and caches go; removed at the end unless `keep`. */
  workDir: string;
  keep: boolean;
}

/** The datasets scenarios share, generated once per run of the runner. */
export type DatasetKind = 'model' | 'small-files' | 'large-file';

/** A dataset as published on one origin: where to pull it from and what must arrive. */
export interface PublishedDataset {
  prefix: string;
  /** Expected files; for a bucket from the environment only sizes are known (sha256 ''). */
  files: Map<string, FileFacts>;
  bytes: number;
}

/** Shared state of one `pnpm bench`: flags, lazily started origins, datasets, tools. */
export class BenchContext {
  readonly config: BenchConfig;
  readonly ferry: FerryDriver;
  readonly peers: PeerInfo[];
  readonly partSize = DEFAULT_PART_SIZE;
  readonly #origins = new Map<OriginName, Promise<Origin>>();
  #nginx: Promise<NginxServer> | undefined;
  readonly #datasets = new Map<string, Promise<Dataset>>();
  readonly #published = new Map<string, Promise<PublishedDataset>>();
  readonly #plain = new Map<string, Promise<PublishedDataset | undefined>>();
  readonly notes: string[] = [];

  constructor(config: BenchConfig, ferry: FerryDriver, peers: PeerInfo[]) {
    this.config = config;
    this.ferry = ferry;
    this.peers = peers;
  }

  /** ferry and every installed peer that can read `origin`, ferry first. */
  tools(origin: Origin): SyncTool[] {
    return [
      ferryTool(this.ferry, this.config.concurrency),
      ...this.peers.filter((p) => p.installed && p.tool.supports(origin)).map((p) => p.tool),
    ];
  }

  /** The chosen origins, started on first use. */
  async origins(): Promise<Origin[]> {
    const started: Origin[] = [];
    for (const name of this.config.origins) started.push(await this.origin(name));
    return started;
  }

  origin(name: OriginName): Promise<Origin> {
    let origin = this.#origins.get(name);
    if (origin === undefined) {
      origin = this.#start(name);
      this.#origins.set(name, origin);
    }
    return origin;
  }

  async #start(name: OriginName): Promise<Origin> {
    switch (name) {
      case 's3rver':
        return startS3rverOrigin(this.config.workDir);
      case 'nginx':
      case 'nginx-s3':
        if (findNginx() === undefined)
          throw new Error('nginx is not installed: apt-get install -y nginx');
        this.#nginx ??= startNginx(this.config.workDir);
        return nginxOrigin(await this.#nginx, name === 'nginx' ? 'http' : 's3');
      case 'env': {
        const origin = envOrigin();
        if (origin === undefined) throw new Error('--origin env needs FERRY_BENCH_S3_URI');
        return origin;
      }
    }
  }

  /** The spec of a shared dataset, from the flags. */
  spec(kind: DatasetKind): DatasetSpec {
    const { size, shards, smallFiles, largeSize } = this.config;
    switch (kind) {
      case 'model':
        return {
          shards,
          shardSize: Math.ceil(size / shards),
          smallFiles: 64,
          smallFileSize: 256 * 1024,
          extras: true,
          seed: 1,
        };
      case 'small-files':
        return {
          shards: 0,
          shardSize: 0,
          smallFiles,
          smallFileSize: 64 * 1024,
          extras: false,
          seed: 2,
        };
      case 'large-file':
        return {
          shards: 1,
          shardSize: largeSize,
          smallFiles: 0,
          smallFileSize: 0,
          extras: false,
          seed: 3,
        };
    }
  }

  /** A generated copy of a dataset under its own name (scenarios that change theirs). */
  dataset(kind: DatasetKind, name: string = kind): Promise<Dataset> {
    let dataset = this.#datasets.get(name);
    if (dataset === undefined) {
      dataset = (async () => {
        this.log(`generating dataset ${name}`);
        return generateDataset(join(this.config.workDir, 'data', name), this.spec(kind));
      })();
      this.#datasets.set(name, dataset);
    }
    return dataset;
  }

  /**
   * The dataset published on `origin` under the prefix `kind`, or undefined where it cannot
   * be (a read-only bucket holds only what it holds: its prefix stands for `model`).
   */
  published(origin: Origin, kind: DatasetKind): Promise<PublishedDataset | undefined> {
    if (!origin.writable) {
      return kind === 'model' ? this.#envDataset(origin) : Promise.resolve(undefined);
    }
    const key = `${origin.name}/${kind}`;
    let published = this.#published.get(key);
    if (published === undefined) {
      published = (async () => {
        const dataset = await this.dataset(kind);
        this.log(`publishing ${kind} to ${origin.name}`);
        await origin.publish(dataset, kind);
        return { prefix: kind, files: dataset.files, bytes: dataset.bytes };
      })();
      this.#published.set(key, published);
    }
    return published;
  }

  /**
   * A second copy of a dataset under `<kind>-plain`, uploaded as plain objects (no `.ferry/`
   * manifests): what `ferry (plain prefix)` pulls. Only on origins that list and that the
   * runner may write (s3rver); undefined elsewhere, and when aws-cli v2 (the uploader) is
   * missing, with the reason in `notes`.
   */
  plain(origin: Origin, kind: DatasetKind): Promise<PublishedDataset | undefined> {
    if (origin.s3 === undefined || !origin.writable) return Promise.resolve(undefined);
    const key = `${origin.name}/${kind}`;
    let plain = this.#plain.get(key);
    if (plain === undefined) {
      plain = (async () => {
        if (!awsV2()) {
          this.notes.push(
            `ferry (plain prefix): skipped on ${origin.name}, the plain copy is uploaded with aws-cli v2: apt-get install -y awscli`,
          );
          return undefined;
        }
        const dataset = await this.dataset(kind);
        const prefix = `${kind}-plain`;
        this.log(`uploading a plain copy of ${kind} to ${origin.name}/${prefix}`);
        await uploadPlainCopy(origin, dataset, prefix);
        return { prefix, files: dataset.files, bytes: dataset.bytes };
      })();
      this.#plain.set(key, plain);
    }
    return plain;
  }

  #envDataset(origin: Origin): Promise<PublishedDataset> {
    const key = `${origin.name}/model`;
    let published = this.#published.get(key);
    if (published === undefined) {
      published = (async () => {
        const prefix = envPrefix();
        const objects = await origin.objects(prefix);
        const files = new Map(objects.map((o) => [o.key, { size: o.size, sha256: '' }]));
        return { prefix, files, bytes: objects.reduce((n, o) => n + o.size, 0) };
      })();
      this.#published.set(key, published);
    }
    return published;
  }

  /** An empty directory under the work dir (emptied if it existed). */
  async freshDir(...parts: string[]): Promise<string> {
    const dir = join(this.config.workDir, 'dest', ...parts);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    return dir;
  }

  log(message: string): void {
    console.error(`  ${message}`);
  }

  async close(): Promise<void> {
    for (const origin of this.#origins.values())
      await (await origin.catch(() => undefined))?.close();
    await (await this.#nginx?.catch(() => undefined))?.close();
    if (!this.config.keep) await rm(this.config.workDir, { recursive: true, force: true });
  }
}
