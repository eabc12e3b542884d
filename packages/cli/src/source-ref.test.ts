import { describe, expect, it } from 'vitest';
import { splitSourceRef } from './source-ref.js';

const hex = 'ab'.repeat(32);

describe('splitSourceRef', () => {
  it.each([
    ['s3://bucket/m', { source: 's3://bucket/m' }],
    ['s3://bucket/m@v2', { source: 's3://bucket/m', ref: 'v2' }],
    ['s3://bucket@latest', { source: 's3://bucket', ref: 'latest' }],
    ['s3://bucket/m@release-1.2_rc', { source: 's3://bucket/m', ref: 'release-1.2_rc' }],
    [`s3://bucket/m@sha256:${hex}`, { source: 's3://bucket/m', ref: `sha256:${hex}` }],
    // An @ inside a key or folder name is not a ref separator.
    ['s3://bucket/a@b/c', { source: 's3://bucket/a@b/c' }],
    ['s3://bucket/a@b/c@v1', { source: 's3://bucket/a@b/c', ref: 'v1' }],
    // A trailing slash keeps a folder whose name ends in @name.
    ['s3://bucket/model@2024/', { source: 's3://bucket/model@2024/' }],
    // User info in a URL is not a ref.
    ['https://user@host', { source: 'https://user@host' }],
    ['https://user@host/m', { source: 'https://user@host/m' }],
    ['https://user@host/m@v3', { source: 'https://user@host/m', ref: 'v3' }],
    ['./store/m@v1', { source: './store/m', ref: 'v1' }],
    ['@v2', { source: '', ref: 'v2' }],
    ['s3://bucket/m@', { source: 's3://bucket/m@' }],
    ['s3://bucket/m@sha256:XYZ', { source: 's3://bucket/m@sha256:XYZ' }],
  ])('%s', (text, expected) => {
    expect(splitSourceRef(text)).toEqual(expected);
  });
});
