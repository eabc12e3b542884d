import { HttpSource } from './http-source.js';
import { LocalSource } from './local-source.js';
import { parseSourceUri } from './parse-source-uri.js';
import { S3Source } from './s3-source.js';
import type { Source, SourceOptions } from './source.js';

/**
 * Opens `s3://bucket/prefix`, `http(s)://host/path`, `file:///abs` or a plain local path
 * (relative to the current directory). Synchronous and cheap: nothing is contacted until
 * the first call, so worker threads can each open their own copy from `(uri, options)`.
 * Throws FERRY_BAD_SOURCE for an unknown scheme or a malformed URI.
 */
export function openSource(uri: string, options: SourceOptions = {}): Source {
  const parsed = parseSourceUri(uri);
  switch (parsed.kind) {
    case 's3':
      return new S3Source({ bucket: parsed.bucket ?? '', prefix: parsed.prefix }, options);
    case 'http':
      return new HttpSource(parsed.url ?? parsed.uri, options);
    case 'local':
      return new LocalSource(parsed.path ?? parsed.uri);
  }
}
