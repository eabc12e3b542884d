import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeTempDir, type TempDir } from '#fixtures';
import { loadModelConfig, parseModelConfig } from './model-config.js';

const path = '/etc/app/model.json';

describe('parseModelConfig', () => {
  it('reads the three keys, ignores others, and resolves the root against the file', () => {
    const config = parseModelConfig(
      JSON.stringify({
        download_files_from: 'models/llama/',
        download_files_to: 'cache',
        source: 's3://bucket',
        name: 'llama',
        layers: 32,
      }),
      path,
    );
    expect(config).toEqual({
      path,
      source: 's3://bucket',
      downloadFilesFrom: 'models/llama',
      downloadFilesTo: '/etc/app/cache',
    });
  });

  it('reads include and exclude as arrays of globs', () => {
    expect(
      parseModelConfig(JSON.stringify({ include: ['*.safetensors'], exclude: ['onnx/**'] }), path),
    ).toEqual({ path, include: ['*.safetensors'], exclude: ['onnx/**'] });
    expect(() => parseModelConfig(JSON.stringify({ include: '*.bin' }), path)).toThrow(
      `${path}: "include" must be an array of glob strings, not a string ("*.bin")`,
    );
  });

  it.each([
    ['{"download_files_from": "m",}', `${path}: is not valid JSON`, path],
    ['[1, 2]', `${path}: must hold a JSON object`, path],
    ['"m"', `${path}: must hold a JSON object`, path],
    [
      '{"download_files_to": 5}',
      `${path}: "download_files_to" must be a string, not a number (5)`,
      'download_files_to',
    ],
    [
      '{"download_files_from": null}',
      `${path}: "download_files_from" must be a string, not null`,
      'download_files_from',
    ],
    ['{"source": ["s3://b"]}', `${path}: "source" must be a string, not an array`, 'source'],
    [
      '{"download_files_from": "/abs/m"}',
      `${path}: "download_files_from" must be a relative folder`,
      'download_files_from',
    ],
    [
      '{"download_files_from": "a/../b"}',
      `${path}: "download_files_from" must be a relative folder`,
      'download_files_from',
    ],
    ['{"download_files_to": ""}', `${path}: "download_files_to" is empty`, 'download_files_to'],
  ])('%s is refused naming the file and the key', (text, message, key) => {
    expect(() => parseModelConfig(text, path)).toThrow(
      expect.objectContaining({
        code: 'FERRY_BAD_CONFIG',
        key,
        message: expect.stringContaining(message),
      }),
    );
  });
});

describe('loadModelConfig', () => {
  let tmp: TempDir;
  beforeEach(async () => {
    tmp = await makeTempDir('model-config');
  });
  afterEach(() => tmp.remove());

  it('reads ./model.json when present, and nothing when absent', async () => {
    expect(await loadModelConfig({ cwd: tmp.path })).toBeUndefined();
    await writeFile(join(tmp.path, 'model.json'), '{"download_files_from":"m"}');
    expect(await loadModelConfig({ cwd: tmp.path })).toMatchObject({ downloadFilesFrom: 'm' });
  });

  it('fails when --config names a file that is not there', async () => {
    await expect(loadModelConfig({ path: 'nope.json', cwd: tmp.path })).rejects.toMatchObject({
      code: 'FERRY_BAD_CONFIG',
      message: `cannot read ${join(tmp.path, 'nope.json')} (ENOENT)`,
    });
  });

  it('names the file when it is a directory', async () => {
    await mkdir(join(tmp.path, 'model.json'));
    await expect(loadModelConfig({ cwd: tmp.path })).rejects.toMatchObject({
      code: 'FERRY_BAD_CONFIG',
      message: `cannot read ${join(tmp.path, 'model.json')} (EISDIR)`,
    });
  });
});
