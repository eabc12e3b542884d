import type { ObjectInfo } from '@ferry/adapters';
import { openSource, parseSourceUri } from '@ferry/adapters';
import type { Origin, RangeReader } from './origin.js';

/** The variables that name a real bucket; the runner only reads there. */
export const ENV_URI = 'FERRY_BENCH_S3_URI';

/**
 * A bucket and prefix named by `FERRY_BENCH_S3_URI=s3://bucket/prefix`, reached with the
 * usual AWS variables (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_PROFILE, AWS_REGION).
 * Read-only: scenarios that publish skip it.
 */
export function envOrigin(): Origin | undefined {
  const uri = process.env[ENV_URI];
  if (uri === undefined || uri === '') return undefined;
  const parsed = parseSourceUri(uri);
  if (parsed.kind !== 's3' || parsed.bucket === undefined) {
    throw new Error(`${ENV_URI} must be s3://bucket/prefix, got ${uri}`);
  }
  const bucket = parsed.bucket;
  const endpoint = process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL;
  const region = process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1';
  const keyId = process.env.AWS_ACCESS_KEY_ID;
  const secret = process.env.AWS_SECRET_ACCESS_KEY;
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (name.startsWith('AWS_') && value !== undefined) env[name] = value;
  }
  return {
    name: 'env',
    describe: `${uri}${endpoint === undefined ? '' : ` at ${endpoint}`} (read-only)`,
    ferryUri: (prefix) => `s3://${bucket}/${prefix}`,
    env,
    s3: {
      ...(endpoint === undefined ? {} : { endpoint }),
      region,
      bucket,
      ...(keyId === undefined || secret === undefined
        ? {}
        : { credentials: { accessKeyId: keyId, secretAccessKey: secret } }),
    },
    writable: false,
    async publish() {
      throw new Error(`${ENV_URI} is read-only for the benchmarks`);
    },
    async objects(prefix) {
      const source = openSource(`s3://${bucket}/${prefix}`);
      const objects: ObjectInfo[] = [];
      try {
        for await (const object of source.list()) {
          if (!object.key.startsWith('.ferry/')) objects.push(object);
        }
      } finally {
        await source.close();
      }
      return objects;
    },
    rangeReader: (prefix) => sdkRangeReader(`s3://${bucket}/${prefix}`),
    counters: async () => undefined,
    close: async () => {},
  };
}

/** The prefix part of FERRY_BENCH_S3_URI: what the read-only scenarios pull. */
export function envPrefix(): string {
  return parseSourceUri(process.env[ENV_URI] ?? '').prefix;
}

// Real S3 needs signed requests, so the ceiling goes through ferry's S3 adapter (the AWS
// SDK): a little more CPU per request than raw HTTP, stated in the report.
function sdkRangeReader(uri: string): RangeReader {
  const source = openSource(uri);
  return {
    async read(key, start, end) {
      let bytes = 0;
      for await (const chunk of await source.read(key, { start, end })) {
        bytes += (chunk as Buffer).length;
      }
      return bytes;
    },
    close: () => source.close(),
  };
}
