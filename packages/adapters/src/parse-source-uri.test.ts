import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openSource } from './open-source.js';
import { hasUriScheme, parseSourceUri } from './parse-source-uri.js';

describe('parseSourceUri', () => {
  it('parses s3 URIs into bucket and folder prefix', () => {
    expect(parseSourceUri('s3://bucket/a/b/')).toEqual({
      kind: 's3',
      uri: 's3://bucket/a/b',
      bucket: 'bucket',
      prefix: 'a/b',
    });
    expect(parseSourceUri('s3://bucket')).toEqual({
      kind: 's3',
      uri: 's3://bucket',
      bucket: 'bucket',
      prefix: '',
    });
    expect(parseSourceUri('s3://bucket/')).toMatchObject({ prefix: '' });
  });

  it('parses http(s) URLs into a base URL ending in / and a decoded prefix', () => {
    expect(parseSourceUri('https://host:8443/models/my%20model')).toEqual({
      kind: 'http',
      uri: 'https://host:8443/models/my%20model/',
      url: 'https://host:8443/models/my%20model/',
      prefix: 'models/my model',
    });
    expect(parseSourceUri('http://127.0.0.1:9000')).toMatchObject({
      url: 'http://127.0.0.1:9000/',
      prefix: '',
    });
  });

  it('parses file URLs and plain paths, relative to the current directory', () => {
    expect(parseSourceUri('file:///srv/models')).toEqual({
      kind: 'local',
      uri: 'file:///srv/models',
      path: '/srv/models',
      prefix: '',
    });
    expect(parseSourceUri('models/v1')).toMatchObject({
      kind: 'local',
      path: resolve('models/v1'),
    });
  });

  it.each([
    ['', /empty/],
    ['gs://bucket/x', /Unsupported source scheme "gs:\/\/"/],
    ['s3://', /not a bucket name/],
    ['s3://bucket/a/../b', /not a clean relative path/],
    ['s3://bucket/a//b', /not a clean relative path/],
    ['https://host/x?sig=1', /query or fragment/],
    ['http://', /Malformed URL/],
    ['file://host/x', /Malformed file/],
  ])('refuses %j with FERRY_BAD_SOURCE and a hint', (uri, message) => {
    expect(() => parseSourceUri(uri)).toThrow(
      expect.objectContaining({
        code: 'FERRY_BAD_SOURCE',
        message: expect.stringMatching(message),
        hint: expect.stringMatching(/s3:\/\//),
      }),
    );
    expect(() => openSource(uri)).toThrow(expect.objectContaining({ code: 'FERRY_BAD_SOURCE' }));
  });

  it('opens each kind synchronously without contacting anything', () => {
    expect(openSource('s3://bucket/p', { endpoint: 'http://127.0.0.1:1' }).capabilities).toEqual({
      list: true,
      rangeReads: true,
      write: true,
    });
    expect(openSource('https://example.invalid/x').capabilities.list).toBe(false);
    expect(openSource('.').uri).toBe(`file://${resolve('.')}`);
  });
});

describe('hasUriScheme', () => {
  it('tells URIs, whatever their scheme, from local paths', () => {
    for (const uri of ['s3://b/p', 'HTTPS://h/p', 'file:///abs', 'gs://b', 'git+ssh://h/r']) {
      expect(hasUriScheme(uri)).toBe(true);
    }
    for (const path of ['models/llama', './s3://x', '/abs/path', 'C:\\models', 's3:/b', '']) {
      expect(hasUriScheme(path)).toBe(false);
    }
  });
});
