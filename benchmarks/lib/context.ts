import { execFile } from 'node:child_process';
import { chmod, mkdir, readdir, rename, rm, statfs, truncate } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { DEFAULT_PART_SIZE } from '@ferry/manifest';
import { type Dataset, type DatasetSpec, type FileFacts, generateDataset } from './dataset.js';
import { envOrigin, envPrefix } from './env-origin.js';
import type { FerryDriver } from './ferry-driver.js';
import { findNginx, type NginxServer, nginxOrigin, startNginx } from './nginx-origin.js';
import type { Origin, OriginName } from './origin.js';
import { startS3rverOrigin } from './s3rver-origin.js';
import { awsV2, ferryTool, type PeerInfo, type SyncTool } from './sync-tools.js';

const execFileAsync = promisify(execFile);
/** Free space under which `discard` empties the trash. */
const TRASH_EMPTY_BELOW = 8 * 2 ** 30;

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
  /** Files in the large-manifest scenario's version (tiny files). @default 100000 */
  manifestFiles: number;
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
  #trashed = 0;
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
      case 'nginx-https':
      case 'nginx-s3':
        if (findNginx() === undefined)
          throw new Error('nginx is not installed: apt-get install -y nginx');
        this.#nginx ??= startNginx(this.config.workDir);
        return nginxOrigin(
          await this.#nginx,
          name === 'nginx' ? 'http' : name === 'nginx-https' ? 'https' : 's3',
        );
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
   * The copy of a dataset every contender but ferry reads (peers, ceiling, floor): files at
   * their paths, since a published prefix stores content by part. On the runner's origins
   * the plain copy under `<kind>-plain` ({@link plainCopy}); on a read-only bucket the
   * prefix itself, whatever layout it has. Undefined where neither exists, with the reason
   * in `notes`.
   */
  readable(origin: Origin, kind: DatasetKind): Promise<PublishedDataset | undefined> {
    if (!origin.writable) return this.published(origin, kind);
    return this.plainCopy(origin, kind);
  }

  /**
   * What `ferry (plain prefix)` pulls: the plain copy, on origins that list and that the
   * runner may write (s3rver); undefined elsewhere (ferry needs a listing to pull a prefix
   * without a manifest), and when the copy cannot be made.
   */
  plain(origin: Origin, kind: DatasetKind): Promise<PublishedDataset | undefined> {
    if (origin.s3 === undefined || !origin.writable) return Promise.resolve(undefined);
    return this.plainCopy(origin, kind);
  }

  /**
   * A second copy of a shared dataset under `<kind>-plain`, the files at their paths and no
   * `.ferry/` (uploaded once per origin and kept for the whole run), or undefined where it
   * cannot be written (see {@link writePlain}).
   */
  plainCopy(origin: Origin, kind: DatasetKind): Promise<PublishedDataset | undefined> {
    const key = `${origin.name}/${kind}`;
    let plain = this.#plain.get(key);
    if (plain === undefined) {
      plain = (async () => {
        const dataset = await this.dataset(kind);
        const prefix = `${kind}-plain`;
        if (!(await this.writePlain(origin, dataset, prefix))) return undefined;
        return { prefix, files: dataset.files, bytes: dataset.bytes };
      })();
      this.#plain.set(key, plain);
    }
    return plain;
  }

  /**
   * Writes `dataset` (or only `keys` of it: the files a change touched) as a plain copy at
   * `prefix` of `origin`. False where it cannot be: a read-only bucket (every tool reads
   * the prefix itself there), or an S3 origin without aws-cli v2, the uploader (with a note:
   * no peer, ceiling or floor runs there).
   */
  async writePlain(
    origin: Origin,
    dataset: Dataset,
    prefix: string,
    keys?: string[],
  ): Promise<boolean> {
    if (origin.putPlain === undefined) return false;
    if (origin.s3 !== undefined && !awsV2()) {
      const note = `no plain copy on ${origin.name} (uploaded with aws-cli v2: apt-get install -y awscli), so no peer, ceiling, floor or ferry (plain prefix) there`;
      if (!this.notes.includes(note)) this.notes.push(note);
      return false;
    }
    this.log(
      keys === undefined
        ? `writing a plain copy of ${basename(dataset.dir)} to ${origin.name}/${prefix}`
        : `writing ${keys.length} changed files to the plain copy ${origin.name}/${prefix}`,
    );
    await origin.putPlain(dataset, prefix, keys);
    return true;
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

  /**
   * An empty directory under the work dir, on a disk with nothing left to write: what the
   * previous run wrote is flushed first, so no run pays for another's writeback. A directory
   * that existed is set aside (`discard`), not deleted.
   */
  async freshDir(...parts: string[]): Promise<string> {
    const dir = join(this.config.workDir, 'dest', ...parts);
    await this.discard(dir);
    await mkdir(dir, { recursive: true });
    await execFileAsync('sync');
    return dir;
  }

  /**
   * Moves a used destination into the work dir's trash, deleted at the end of the run, with
   * its files emptied now. ext4 without a journal (these machines') will not reuse an inode
   * freed in the last 60 s (300 s while its inode table block is dirty) and re-reads the
   * table for every one it passes: right after `rm -rf` of 1,000 files each create cost
   * ~0.2 ms of kernel time, half of a small-file pull's (perf), and ferry 0.33, rclone 0.16
   * CPU-s more than on a disk with no recent deletes. A first pull on a fresh machine pays
   * none of that, so no run should pay for the one before it. Emptying the files keeps their
   * inodes but frees their pages: with whole destinations kept in the page cache, every tool
   * spent twice the CPU per GiB once ~5 GiB had piled up. When the disk runs short the trash
   * is deleted, and the next run waits out those 60 s.
   */
  async discard(dir: string): Promise<void> {
    const trash = join(this.config.workDir, 'trash');
    await mkdir(trash, { recursive: true });
    const aside = join(trash, String(this.#trashed++));
    try {
      await rename(dir, aside);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    await emptyFiles(aside);
    await execFileAsync('sync');
    const disk = await statfs(trash);
    if (disk.bavail * disk.bsize >= TRASH_EMPTY_BELOW) return;
    this.log('disk short: emptying the trash, then 61 s for ext4 to reuse the freed inodes');
    await rm(trash, { recursive: true, force: true });
    await execFileAsync('sync');
    await sleep(61_000);
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

/** Truncates every file under `dir` to nothing: blocks and cached pages freed, inodes kept. */
async function emptyFiles(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await emptyFiles(path);
    else if (entry.isFile()) {
      // A tool may leave files read-only.
      await truncate(path, 0).catch(async () => {
        await chmod(path, 0o600);
        await truncate(path, 0);
      });
    }
  }
}
