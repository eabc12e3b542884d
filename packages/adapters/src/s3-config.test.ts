import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { makeTempDir, type TempDir } from '#fixtures';
import { s3Config } from './s3-config.js';

/**
 * `S3Config.direct` lets reads skip the SDK: it must be there only where the SDK's own chain
 * would land on the same keys, region and endpoint, and absent wherever it might not.
 */

let tmp: TempDir;
let configFile: string;
let credentialsFile: string;

beforeAll(async () => {
  tmp = await makeTempDir('s3-config');
  await mkdir(join(tmp.path, 'home'));
  configFile = join(tmp.path, 'config');
  credentialsFile = join(tmp.path, 'credentials');
});

afterAll(async () => {
  await tmp.remove();
});

const KEYS = { accessKeyId: 'AKIDENV', secretAccessKey: 'env/secret' };

beforeEach(() => {
  for (const name of [
    'AWS_PROFILE',
    'AWS_SESSION_TOKEN',
    'AWS_CREDENTIAL_EXPIRATION',
    'AWS_REGION',
    'AWS_DEFAULT_REGION',
    'AWS_ENDPOINT_URL',
    'AWS_ENDPOINT_URL_S3',
    'AWS_USE_FIPS_ENDPOINT',
    'AWS_USE_DUALSTACK_ENDPOINT',
    'FERRY_S3_PATH_STYLE',
  ]) {
    vi.stubEnv(name, undefined);
  }
  vi.stubEnv('AWS_ACCESS_KEY_ID', KEYS.accessKeyId);
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', KEYS.secretAccessKey);
  vi.stubEnv('AWS_CONFIG_FILE', configFile);
  vi.stubEnv('AWS_SHARED_CREDENTIALS_FILE', credentialsFile);
  vi.stubEnv('HOME', join(tmp.path, 'home'));
});

afterEach(async () => {
  vi.unstubAllEnvs();
  await writeFile(configFile, '');
  await writeFile(credentialsFile, '');
});

function direct() {
  const config = s3Config({});
  config.agents.http.destroy();
  config.agents.https.destroy();
  return config.direct;
}

describe('S3Config.direct', () => {
  it('takes the keys, region and endpoint from the environment', () => {
    vi.stubEnv('AWS_ENDPOINT_URL', 'http://127.0.0.1:9000');
    expect(direct()).toEqual({
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:9000',
      forcePathStyle: true,
      credentials: KEYS,
    });
    vi.stubEnv('AWS_ENDPOINT_URL', undefined);
    vi.stubEnv('AWS_REGION', 'eu-west-1');
    vi.stubEnv('AWS_SESSION_TOKEN', 'token');
    expect(direct()).toEqual({
      region: 'eu-west-1',
      endpoint: undefined,
      forcePathStyle: false,
      credentials: { ...KEYS, sessionToken: 'token' },
    });
  });

  it('takes keys given as options over the environment', () => {
    vi.stubEnv('AWS_REGION', 'eu-west-1');
    vi.stubEnv('AWS_PROFILE', 'other');
    const credentials = { accessKeyId: 'AKIDOPT', secretAccessKey: 'opt' };
    const config = s3Config({ credentials });
    config.agents.http.destroy();
    config.agents.https.destroy();
    expect(config.direct?.credentials).toEqual(credentials);
  });

  it('reads a shared config file that only names a region', async () => {
    vi.stubEnv('AWS_REGION', 'eu-west-1');
    await writeFile(configFile, '[default]\nregion = eu-west-1\noutput = json\n');
    expect(direct()).toBeDefined();
  });

  const leftToTheSdk: Array<[string, () => Promise<void> | void]> = [
    ['no region', () => {}],
    ['AWS_PROFILE set (the chain skips the keys)', () => vi.stubEnv('AWS_PROFILE', 'dev')],
    ['keys that expire', () => vi.stubEnv('AWS_CREDENTIAL_EXPIRATION', '2030-01-01T00:00:00Z')],
    ['no secret key', () => vi.stubEnv('AWS_SECRET_ACCESS_KEY', undefined)],
    ['AWS_USE_FIPS_ENDPOINT', () => vi.stubEnv('AWS_USE_FIPS_ENDPOINT', 'true')],
    ['AWS_USE_DUALSTACK_ENDPOINT', () => vi.stubEnv('AWS_USE_DUALSTACK_ENDPOINT', 'true')],
    [
      'FIPS in the config file',
      () => writeFile(configFile, '[default]\nuse_fips_endpoint = true\n'),
    ],
    [
      'an endpoint in the config file',
      () => writeFile(configFile, '[default]\nendpoint_url = http://127.0.0.1:1\n'),
    ],
    [
      'dual-stack in the credentials file',
      () => writeFile(credentialsFile, '[default]\nuse_dualstack_endpoint = true\n'),
    ],
    ['a config file that cannot be read', () => vi.stubEnv('AWS_CONFIG_FILE', tmp.path)],
  ];
  for (const [name, arrange] of leftToTheSdk) {
    it(`is absent with ${name}`, async () => {
      if (name !== 'no region') vi.stubEnv('AWS_REGION', 'eu-west-1');
      await arrange();
      expect(direct()).toBeUndefined();
    });
  }
});
