import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import {
  GetObjectCommand,
  ListObjectsV2Command,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type DirectSettings, S3DirectGet, type S3ReadGrant } from './s3-direct-get.js';

/**
 * s3rver checks only the access key id, never the signature, so the conformance suite
 * cannot catch a signing bug: this compares the direct path's request with the one the SDK
 * itself signs for the same inputs at the same instant.
 */

/** Per-request bookkeeping the SDK signs too; the direct path does not send it. */
const SDK_ONLY_HEADERS = ['amz-sdk-invocation-id', 'amz-sdk-request', 'x-amz-user-agent'];

interface Captured {
  hostname: string;
  port: number | undefined;
  path: string;
  headers: Record<string, string>;
}

class Stop extends Error {}

/** The request the SDK signs for GetObject (or `command`), captured after signing and never sent. */
async function sdkRequest(
  config: S3ClientConfig,
  input: { Bucket: string; Key: string; Range?: string | undefined; IfMatch?: string | undefined },
  command: GetObjectCommand | ListObjectsV2Command = new GetObjectCommand(input),
): Promise<Captured> {
  const client = new S3Client({ ...config, maxAttempts: 1 });
  let captured: Captured | undefined;
  const strip =
    <Args extends { request: unknown }, Result>(next: (args: Args) => Promise<Result>) =>
    async (args: Args): Promise<Result> => {
      const request = args.request as { headers: Record<string, string> };
      for (const name of SDK_ONLY_HEADERS) delete request.headers[name];
      return next(args);
    };
  const capture =
    () =>
    async (args: { request: unknown }): Promise<never> => {
      const request = args.request as Captured & { query: Record<string, string> };
      const query = new URLSearchParams(request.query).toString();
      captured = {
        hostname: request.hostname,
        port: request.port,
        path: `${request.path}?${query}`,
        headers: { ...request.headers },
      };
      throw new Stop();
    };
  client.middlewareStack.addRelativeTo(strip, {
    relation: 'before',
    toMiddleware: 'httpSigningMiddleware',
    name: 'strip',
  });
  client.middlewareStack.addRelativeTo(capture, {
    relation: 'after',
    toMiddleware: 'httpSigningMiddleware',
    name: 'capture',
  });
  // (Two calls: send's overloads take one command type at a time.)
  const sent = command instanceof GetObjectCommand ? client.send(command) : client.send(command);
  await expect(sent).rejects.toBeInstanceOf(Stop);
  client.destroy();
  if (captured === undefined) throw new Error('the SDK request was not captured');
  return captured;
}

const agents = { http: new HttpAgent(), https: new HttpsAgent() };
const KEYS = [
  'root/model.safetensors',
  "a dir/ünïcödé ☃ 文件 + = % & ? # ~ ! ' ( ) * ; , @ $.bin",
  'pre fix/x+y=z%41/100%.bin',
];
const CREDENTIALS = {
  accessKeyId: 'AKIDEXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
};
const SESSION = { ...CREDENTIALS, sessionToken: 'FQoGZXIvYXdzEJr//////////wEaDOkEXAMPLETOKEN=' };
const CONFIGS: Record<string, S3ClientConfig> = {
  'path-style custom endpoint': {
    endpoint: 'http://127.0.0.1:9000',
    forcePathStyle: true,
    region: 'us-east-1',
  },
  'path-style custom endpoint on a default port': {
    endpoint: 'https://minio.example.com',
    forcePathStyle: true,
    region: 'eu-central-1',
  },
  'virtual-hosted AWS': { region: 'eu-west-1' },
  'virtual-hosted AWS us-east-1': { region: 'us-east-1' },
  'path-style AWS': { region: 'ap-southeast-2', forcePathStyle: true },
};

/** The settings `s3Config` would decide for a client configured as `config`. */
function settingsOf(
  config: S3ClientConfig,
  credentials: DirectSettings['credentials'],
): DirectSettings {
  return {
    region: String(config.region),
    endpoint: typeof config.endpoint === 'string' ? config.endpoint : undefined,
    forcePathStyle: config.forcePathStyle === true,
    credentials,
  };
}

describe('S3DirectGet signs GetObject exactly as the SDK does', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-03-04T05:06:07.890Z'));
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  for (const [name, base] of Object.entries(CONFIGS)) {
    for (const [credentialsName, credentials] of [
      ['keys', CREDENTIALS],
      ['a session token', SESSION],
    ] as const) {
      it(`${name}, ${credentialsName}`, async () => {
        const config: S3ClientConfig = {
          ...base,
          credentials,
          requestChecksumCalculation: 'WHEN_REQUIRED',
          responseChecksumValidation: 'WHEN_REQUIRED',
        };
        const client = new S3Client(config);
        const direct = await S3DirectGet.resolve(client, 'my-models', agents);
        if (direct === undefined) throw new Error(`${name} fell back to the SDK`);
        for (const key of KEYS) {
          for (const conditions of [
            {},
            { range: 'bytes=16777216-33554431' },
            { range: 'bytes=5-', ifMatch: '"9b2cf535f27731c974343645a3985328"' },
          ]) {
            const sdk = await sdkRequest(config, {
              Bucket: 'my-models',
              Key: key,
              Range: conditions.range,
              IfMatch: conditions.ifMatch,
            });
            const ours = await direct.sign(key, conditions);
            // What a worker thread signs with, from the grant alone, must be the same.
            const granted = await S3DirectGet.fromGrant(await direct.grant(), agents);
            expect(await granted.sign(key, conditions)).toEqual(ours);
            expect(ours.hostname).toBe(sdk.hostname);
            expect(ours.port).toBe(sdk.port);
            expect(ours.path).toBe(sdk.path);
            // user-agent is never signed (SigV4 excludes it), and the direct path leaves it out.
            const { 'user-agent': _unsigned, ...signed } = sdk.headers;
            expect(ours.headers).toEqual(signed);
            expect(ours.headers.authorization).toMatch(
              /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\//,
            );
            expect(ours.headers['x-amz-date']).toBe('20260304T050607Z');
          }
        }
        client.destroy();
      });
    }
  }

  it('signs as the SDK does across midnight and after the credentials change (its signing key is per day and secret)', async () => {
    // Short-lived, so the client's provider asks again once they expire.
    let current = { ...CREDENTIALS, expiration: new Date('2026-03-05T00:10:00.000Z') };
    const config: S3ClientConfig = {
      ...CONFIGS['virtual-hosted AWS'],
      credentials: async () => current,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    };
    const client = new S3Client(config);
    const direct = await S3DirectGet.resolve(client, 'my-models', agents);
    if (direct === undefined) throw new Error('fell back to the SDK');
    const sameAsSdk = async () => {
      const sdk = await sdkRequest(
        { ...config, credentials: current },
        { Bucket: 'my-models', Key: 'a.bin' },
      );
      const { 'user-agent': _unsigned, ...signed } = sdk.headers;
      expect((await direct.sign('a.bin')).headers).toEqual(signed);
    };
    await sameAsSdk();
    vi.setSystemTime(new Date('2026-03-05T00:00:01.000Z'));
    await sameAsSdk();
    current = {
      accessKeyId: 'AKIDROTATED',
      secretAccessKey: 'another/secret+key',
      expiration: new Date('2026-03-06T00:00:00.000Z'),
    };
    vi.setSystemTime(new Date('2026-03-05T00:20:00.000Z'));
    await sameAsSdk();
    client.destroy();
  });

  it('applies the clock offset the SDK learned', async () => {
    const config: S3ClientConfig = { region: 'eu-west-1', credentials: CREDENTIALS };
    const client = new S3Client(config);
    client.config.systemClockOffset = 3_600_000;
    const direct = await S3DirectGet.resolve(client, 'my-models', agents);
    const signed = await direct?.sign('a.bin');
    expect(signed?.headers['x-amz-date']).toBe('20260304T060607Z');
    client.destroy();
  });

  for (const [name, base] of Object.entries(CONFIGS)) {
    it(`${name}: from settings the environment decided, as from a client built on them`, async () => {
      const client = new S3Client({ ...base, credentials: SESSION });
      const direct = await S3DirectGet.resolve(client, 'my-models', agents);
      const settled = S3DirectGet.fromSettings(settingsOf(base, SESSION), 'my-models', agents);
      if (direct === undefined || settled === undefined) throw new Error(`${name}: no direct path`);
      const keysOf = ({ credentials: c, ...rest }: S3ReadGrant) => ({
        ...rest,
        credentials: [c.accessKeyId, c.secretAccessKey, c.sessionToken],
      });
      expect(keysOf(await settled.grant())).toEqual(keysOf(await direct.grant()));
      for (const key of KEYS) {
        expect(await settled.sign(key, { range: 'bytes=5-' })).toEqual(
          await direct.sign(key, { range: 'bytes=5-' }),
        );
      }
      client.destroy();
    });
  }

  for (const [name, base] of Object.entries(CONFIGS)) {
    it(`${name}: signs ListObjectsV2 as the SDK does`, async () => {
      const config: S3ClientConfig = {
        ...base,
        credentials: SESSION,
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      };
      const client = new S3Client(config);
      const direct = await S3DirectGet.resolve(client, 'my-models', agents);
      if (direct === undefined) throw new Error(`${name} fell back to the SDK`);
      for (const [prefix, token] of [
        ['', undefined],
        ["models/a dir/ünï + = & ' ~/", 'opaque/token+with=signs=='],
      ] as const) {
        const sdk = await sdkRequest(
          config,
          { Bucket: 'my-models', Key: '' },
          new ListObjectsV2Command({
            Bucket: 'my-models',
            Prefix: prefix,
            MaxKeys: 1000,
            ContinuationToken: token,
          }),
        );
        const ours = await direct.signList(prefix, 1000, token);
        expect(ours.hostname).toBe(sdk.hostname);
        expect(ours.port).toBe(sdk.port);
        // The SDK adds its operation marker to the query; both sign what they send.
        const query = (path: string) => new URLSearchParams(path.slice(path.indexOf('?') + 1));
        const sdkQuery = query(sdk.path);
        sdkQuery.delete('x-id');
        expect([...query(ours.path)].sort()).toEqual([...sdkQuery].sort());
        expect(ours.path.slice(0, ours.path.indexOf('?'))).toBe(
          sdk.path.slice(0, sdk.path.indexOf('?')),
        );
        expect(ours.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\//);
      }
      client.destroy();
    });
  }

  it('leaves configurations it cannot address exactly to the SDK', async () => {
    const cases: [S3ClientConfig, string][] = [
      [{ region: 'eu-west-1', useFipsEndpoint: true }, 'my-models'],
      [{ region: 'eu-west-1', useDualstackEndpoint: true }, 'my-models'],
      [{ region: 'eu-west-1', useAccelerateEndpoint: true }, 'my-models'],
      [{ region: 'eu-west-1' }, 'dotted.bucket.name'],
      [{ region: 'eu-west-1' }, 'my-bucket--usw2-az1--x-s3'],
      [{ region: 'cn-north-1' }, 'my-models'],
      [{ region: 'us-gov-west-1' }, 'my-models'],
      [{ region: 'us-east-1', endpoint: 'http://127.0.0.1:9000', forcePathStyle: false }, 'b'],
      [{ region: 'us-east-1', endpoint: 'http://127.0.0.1:9000/base', forcePathStyle: true }, 'b'],
    ];
    for (const [config, bucket] of cases) {
      const client = new S3Client({ ...config, credentials: CREDENTIALS });
      expect(await S3DirectGet.resolve(client, bucket, agents), JSON.stringify(config)).toBe(
        undefined,
      );
      client.destroy();
      // Settings never carry FIPS, dual-stack or accelerate (the environment sends those to the SDK).
      if (config.useFipsEndpoint || config.useDualstackEndpoint || config.useAccelerateEndpoint) {
        continue;
      }
      expect(
        S3DirectGet.fromSettings(settingsOf(config, CREDENTIALS), bucket, agents),
        JSON.stringify(config),
      ).toBe(undefined);
    }
  });
});
