import type { ObjectInfo } from '@ferry/adapters';
import type { Dataset } from './dataset.js';

/** Where the files are served from. */
export type OriginName = 's3rver' | 'nginx' | 'nginx-https' | 'nginx-s3' | 'env';

export const ORIGIN_NAMES: readonly OriginName[] = [
  's3rver',
  'nginx',
  'nginx-https',
  'nginx-s3',
  'env',
];

/** An origin a scenario starts for itself (the stall scenario's), never chosen with `--origin`. */
export type ScenarioOriginName = 'http-faults';

/** What the origin itself counted: the same meter for every tool. */
export interface OriginCounters {
  requests: number;
  /** Bytes sent (responses, headers included). */
  bytes: number;
  /** Bytes received (requests and uploads, headers included), where the meter counts them. */
  bytesIn?: number;
}

/** How S3 tools (aws, rclone, s3cmd) reach the origin; absent when it cannot list. */
export interface S3Access {
  /** Absent for AWS itself. */
  endpoint?: string;
  region: string;
  bucket: string;
  /** Absent: the tools' own credential chain (env, profile). */
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

/** Reads byte ranges the cheapest way the origin allows: the ceiling's client. */
export interface RangeReader {
  /** Reads `[start, end)` of `key` and discards it; resolves to the body bytes received. */
  read(key: string, start: number, end: number): Promise<number>;
  close(): Promise<void>;
}

export interface Origin {
  name: OriginName | ScenarioOriginName;
  /** One line for the report: what serves the bytes and how ferry reaches it. */
  describe: string;
  /** ferry's URI of `prefix`: a published version, or a plain copy for `ferry (plain prefix)`. */
  ferryUri(prefix: string): string;
  /** Environment for ferry and the peers (endpoint, credentials). */
  env: Record<string, string>;
  s3?: S3Access;
  /** False for a bucket named by the environment: the runner never writes there. */
  writable: boolean;
  /** Makes the dataset the latest version of `prefix` (`ferry publish`, or its nginx equivalent). */
  publish(dataset: Dataset, prefix: string): Promise<void>;
  /**
   * Writes the dataset's files, or only `keys` of them, at their paths under `prefix`, with
   * no `.ferry/`: the plain copy every contender but ferry reads, since a published prefix
   * stores content by part (`.ferry/parts/<alg>/<hex>`), not at the files' paths. Never
   * removes an object. Absent where the runner does not write (a bucket from the environment).
   */
  putPlain?(dataset: Dataset, prefix: string, keys?: string[]): Promise<void>;
  /**
   * The data objects under `prefix` (keys relative to it, `.ferry/` left out): on the
   * runner's own origins what it wrote there (plain copies; for a published prefix the
   * files of its version, which are not objects at those keys), on a real bucket its listing.
   */
  objects(prefix: string): Promise<ObjectInfo[]>;
  /** HTTP(S) URL of `prefix` where unsigned GETs work: the ceiling uses curl there. */
  httpBase?(prefix: string): string;
  /** Otherwise the ceiling reads through this (signed requests), keys relative to `prefix`. */
  rangeReader?(prefix: string): RangeReader;
  /** Undefined when the origin is not ours to meter (a real bucket). */
  counters(): Promise<OriginCounters | undefined>;
  close(): Promise<void>;
}
