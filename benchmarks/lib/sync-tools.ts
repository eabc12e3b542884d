import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FerryDriver } from './ferry-driver.js';
import type { Origin } from './origin.js';

/** A command that brings a local folder in step with a prefix of an origin. */
export interface SyncCommand {
  command: string;
  args: string[];
  env: Record<string, string | undefined>;
}

export interface SyncTool {
  name: string;
  /** `floor`: the plain-Node reference client (`node-floor.mjs`), neither ferry nor a peer. */
  kind: 'ferry' | 'peer' | 'floor';
  /** Whether the tool can read this origin (peers need an S3 listing). */
  supports(origin: Origin): boolean;
  /** The command syncing `prefix` of `origin` into `dest`. */
  command(origin: Origin, prefix: string, dest: string): Promise<SyncCommand>;
  /** Where the files end up for `dest` (ferry adds the prefix below its cache root). */
  filesDir(dest: string, prefix: string): string;
}

/** A peer the runner knows, whether or not it is installed here. */
export interface PeerInfo {
  tool: SyncTool;
  installed: boolean;
  /** How to get it: a Debian package. */
  install: string;
}

// Without these the tools would pick up the runner's AWS setup (a CA bundle rclone 1.60
// chokes on, or a profile pointing elsewhere).
/** The runner's environment without its AWS_* and RCLONE_* variables. */
export function baseEnv(): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...process.env };
  for (const name of Object.keys(env)) {
    if (name.startsWith('AWS_') || name.startsWith('RCLONE_')) delete env[name];
  }
  return env;
}

/** The row of rclone's HTTP backend, the peer on plain-HTTP origins. */
export const RCLONE_HTTP = 'rclone http';

/** The name of ferry's row pulling a copy of the dataset without `.ferry/` manifests. */
export const FERRY_PLAIN = 'ferry (plain prefix)';

/**
 * ferry itself: `ferry pull <uri> --to <dest>`, files at `<dest>/<prefix>`. `name` tells
 * apart the rows pulling a published prefix (`ferry`) and a plain one ({@link FERRY_PLAIN}).
 */
export function ferryTool(
  driver: FerryDriver,
  concurrency: number | undefined,
  name = 'ferry',
): SyncTool {
  return {
    name,
    kind: 'ferry',
    supports: () => true,
    async command(origin, prefix, dest) {
      const extra = concurrency === undefined ? [] : ['--concurrency', String(concurrency)];
      const { command, args } = driver.command([
        'pull',
        origin.ferryUri(prefix),
        '--to',
        dest,
        ...extra,
      ]);
      return { command, args, env: { ...baseEnv(), ...origin.env } };
    },
    // For http:// sources the subdir is the URL path (bench/<prefix>); the scenarios take
    // the real folder from ferry's result and use this only before a result exists.
    filesDir: (dest, prefix) => join(dest, prefix),
  };
}

/** aws-cli v2 as Debian's `awscli` installs it (the `aws` first on PATH may be v1). */
export const AWS_V2 = '/usr/bin/aws';

/** Whether /usr/bin/aws is aws-cli v2. */
export function awsV2(): boolean {
  if (!existsSync(AWS_V2)) return false;
  try {
    return execFileSync(AWS_V2, ['--version'], { encoding: 'utf8' }).startsWith('aws-cli/2');
  } catch {
    return false;
  }
}

const canList = (origin: Origin) => origin.s3 !== undefined;

function s3Credentials(origin: Origin): Record<string, string> {
  const c = origin.s3?.credentials;
  return c === undefined
    ? {}
    : { AWS_ACCESS_KEY_ID: c.accessKeyId, AWS_SECRET_ACCESS_KEY: c.secretAccessKey };
}

/**
 * Environment for /usr/bin/aws against `origin`: its keys and region, no config file for
 * the local origins (an env bucket may rely on a profile), no instance metadata lookups.
 */
export function awsEnv(origin: Origin): Record<string, string | undefined> {
  return {
    ...baseEnv(),
    ...origin.env,
    ...(origin.name === 'env' ? {} : { AWS_CONFIG_FILE: '/dev/null' }),
    ...s3Credentials(origin),
    AWS_REGION: origin.s3?.region ?? origin.env.AWS_REGION ?? 'us-east-1',
    AWS_EC2_METADATA_DISABLED: 'true',
  };
}

/** The endpoint /usr/bin/aws must be given (v2.9 ignores AWS_ENDPOINT_URL): `--endpoint-url`. */
export function awsEndpointArgs(origin: Origin): string[] {
  const endpoint = origin.s3?.endpoint ?? origin.env.AWS_ENDPOINT_URL;
  return endpoint === undefined ? [] : ['--endpoint-url', endpoint];
}

const awsTool: SyncTool = {
  name: 'aws-cli v2 s3 sync',
  kind: 'peer',
  supports: canList,
  async command(origin, prefix, dest) {
    const s3 = origin.s3;
    if (s3 === undefined) throw new Error(`${origin.name} cannot be listed`);
    return {
      command: AWS_V2,
      args: [
        's3',
        'sync',
        `s3://${s3.bucket}/${prefix}`,
        dest,
        '--no-progress',
        '--only-show-errors',
        '--exclude',
        '.ferry/*',
        ...awsEndpointArgs(origin),
      ],
      env: awsEnv(origin),
    };
  },
  filesDir: (dest) => dest,
};

function rcloneTool(tuned: boolean): SyncTool {
  return {
    name: tuned ? 'rclone copy tuned' : 'rclone copy',
    kind: 'peer',
    supports: canList,
    async command(origin, prefix, dest) {
      const s3 = origin.s3;
      if (s3 === undefined) throw new Error(`${origin.name} cannot be listed`);
      const c = s3.credentials;
      return {
        command: 'rclone',
        args: [
          'copy',
          `s3r:${s3.bucket}/${prefix}`,
          dest,
          '--exclude',
          '/.ferry/**',
          // s3rver answers delimiter listings without CommonPrefixes, so rclone's default
          // directory-by-directory walk silently skips every subfolder there; one recursive
          // listing (--fast-list) sees them all. Real S3 does not need it.
          ...(origin.name === 's3rver' ? ['--fast-list'] : []),
          ...(tuned ? ['--transfers', '16', '--multi-thread-streams', '8'] : []),
        ],
        env: {
          ...baseEnv(),
          RCLONE_CONFIG: '/dev/null',
          RCLONE_CONFIG_S3R_TYPE: 's3',
          RCLONE_CONFIG_S3R_PROVIDER: s3.endpoint === undefined ? 'AWS' : 'Other',
          RCLONE_CONFIG_S3R_REGION: s3.region,
          ...(s3.endpoint === undefined
            ? {}
            : {
                RCLONE_CONFIG_S3R_ENDPOINT: s3.endpoint,
                RCLONE_CONFIG_S3R_FORCE_PATH_STYLE: 'true',
              }),
          ...(c === undefined
            ? { RCLONE_CONFIG_S3R_ENV_AUTH: 'true', ...origin.env }
            : {
                RCLONE_CONFIG_S3R_ACCESS_KEY_ID: c.accessKeyId,
                RCLONE_CONFIG_S3R_SECRET_ACCESS_KEY: c.secretAccessKey,
              }),
        },
      };
    },
    filesDir: (dest) => dest,
  };
}

/**
 * rclone's HTTP backend on an origin served as plain HTTP (nginx): unsigned GETs of the plain
 * copy, named in a `--files-from` list (nginx serves no listings, and the list spares the walk
 * the S3 rows pay for), nothing verified: HTTP has no hash to check. The yardstick
 * for nginx: ferry at ≥ 0.7× of it.
 */
function rcloneHttpTool(workDir: string): SyncTool {
  return {
    name: RCLONE_HTTP,
    kind: 'peer',
    supports: (origin) => origin.s3 === undefined && origin.httpBase !== undefined,
    async command(origin, prefix, dest) {
      const base = origin.httpBase?.(prefix);
      if (base === undefined) throw new Error(`${origin.name} serves no plain HTTP`);
      const list = join(workDir, `rclone-http-${prefix.replaceAll('/', '_')}.txt`);
      const keys = (await origin.objects(prefix)).map((o) => o.key);
      await writeFile(list, `${keys.join('\n')}\n`);
      return {
        command: 'rclone',
        args: [
          'copy',
          ':http:',
          dest,
          '--http-url',
          `${base}/`,
          '--files-from',
          list,
          '--no-traverse',
        ],
        env: { ...baseEnv(), ...origin.env, RCLONE_CONFIG: '/dev/null' },
      };
    },
    filesDir: (dest) => dest,
  };
}

function s3cmdTool(workDir: string): SyncTool {
  return {
    name: 's3cmd sync',
    kind: 'peer',
    supports: canList,
    async command(origin, prefix, dest) {
      const s3 = origin.s3;
      if (s3 === undefined) throw new Error(`${origin.name} cannot be listed`);
      const host = s3.endpoint === undefined ? 's3.amazonaws.com' : new URL(s3.endpoint).host;
      const https = s3.endpoint === undefined || s3.endpoint.startsWith('https:');
      const c = s3.credentials;
      const config = join(workDir, `s3cmd-${origin.name}.cfg`);
      // No %(bucket)s in host_bucket: path-style requests, as the S3-compatible servers want.
      await writeFile(
        config,
        [
          '[default]',
          `access_key = ${c?.accessKeyId ?? ''}`,
          `secret_key = ${c?.secretAccessKey ?? ''}`,
          `host_base = ${host}`,
          `host_bucket = ${s3.endpoint === undefined ? '%(bucket)s.s3.amazonaws.com' : host}`,
          `use_https = ${https ? 'True' : 'False'}`,
          `bucket_location = ${s3.region}`,
          'progress_meter = False',
          '',
        ].join('\n'),
      );
      return {
        command: 's3cmd',
        args: [
          '-c',
          config,
          'sync',
          '--exclude',
          '.ferry/*',
          `s3://${s3.bucket}/${prefix}/`,
          `${dest}/`,
        ],
        env: baseEnv(),
      };
    },
    filesDir: (dest) => dest,
  };
}

function onPath(binary: string): boolean {
  return (process.env.PATH ?? '')
    .split(':')
    .some((dir) => dir !== '' && existsSync(join(dir, binary)));
}

/** Every peer the issue names, with whether it is installed and how to install it. */
export function knownPeers(workDir: string): PeerInfo[] {
  const rclone = onPath('rclone');
  return [
    {
      tool: awsTool,
      installed: awsV2(),
      install: 'apt-get install -y awscli   # aws-cli v2 at /usr/bin/aws',
    },
    { tool: rcloneTool(false), installed: rclone, install: 'apt-get install -y rclone' },
    { tool: rcloneTool(true), installed: rclone, install: 'apt-get install -y rclone' },
    { tool: rcloneHttpTool(workDir), installed: rclone, install: 'apt-get install -y rclone' },
    { tool: s3cmdTool(workDir), installed: onPath('s3cmd'), install: 'apt-get install -y s3cmd' },
  ];
}
