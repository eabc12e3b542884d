import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { FerryError, normalizePath } from '@ferry/manifest';

/** A source URI taken apart. */
export interface ParsedSourceUri {
  kind: 's3' | 'http' | 'local';
  /**
   * The normal form: `s3://bucket/prefix` (no trailing slash), `https://host/path/` (with
   * one), `file:///abs/path` (without).
   */
  uri: string;
  /** S3 bucket. */
  bucket?: string;
  /**
   * The folder part as a relative path, `''` at a bucket or host root: `a/b` for
   * `s3://bucket/a/b` and for `https://host/a/b/`; always `''` for a local directory.
   * This is the `download_files_from` part of the cache layout.
   */
  prefix: string;
  /** HTTP(S) base URL, ending in `/`; keys are appended to it. */
  url?: string;
  /** Absolute path of a local directory. */
  path?: string;
}

/** A scheme and `://` at the start: what sets a URI apart from a local path. */
const URI_SCHEME = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//;

const USAGE_HINT =
  'Use s3://bucket/prefix, https://host/path, file:///absolute/path or a local directory path.';

/**
 * Parses `s3://bucket/prefix`, `http(s)://host/path`, `file:///abs` or a plain local path
 * (relative ones resolve against the current directory). Throws FERRY_BAD_SOURCE for an
 * unknown scheme or a malformed URI.
 */
export function parseSourceUri(uri: string): ParsedSourceUri {
  const text = uri.trim();
  if (text === '') throw badSource(uri, 'The source is empty');
  const scheme = URI_SCHEME.exec(text)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    const path = resolve(text);
    return { kind: 'local', uri: pathToFileURL(path).href, prefix: '', path };
  }
  switch (scheme) {
    case 's3':
      return parseS3(uri, text);
    case 'http':
    case 'https':
      return parseHttp(uri, text);
    case 'file':
      return parseFile(uri, text);
    default:
      throw badSource(uri, `Unsupported source scheme "${scheme}://"`);
  }
}

/**
 * Whether `source` is a URI (`s3://…`, `https://…`, `file://…`, or an unknown scheme that
 * `parseSourceUri` refuses) rather than a local path: callers resolve paths against their
 * own working directory before passing them on.
 */
export function hasUriScheme(source: string): boolean {
  return URI_SCHEME.test(source);
}

function parseS3(uri: string, text: string): ParsedSourceUri {
  const rest = text.slice('s3://'.length);
  const slash = rest.indexOf('/');
  const bucket = slash === -1 ? rest : rest.slice(0, slash);
  if (!/^[a-zA-Z0-9][a-zA-Z0-9._-]{1,254}$/.test(bucket)) {
    throw badSource(uri, `"${bucket}" is not a bucket name`);
  }
  const prefix = folder(uri, slash === -1 ? '' : rest.slice(slash + 1));
  return {
    kind: 's3',
    uri: prefix === '' ? `s3://${bucket}` : `s3://${bucket}/${prefix}`,
    bucket,
    prefix,
  };
}

function parseHttp(uri: string, text: string): ParsedSourceUri {
  let url: URL;
  try {
    url = new URL(text);
  } catch (error) {
    throw badSource(uri, 'Malformed URL', error);
  }
  if (url.hostname === '') throw badSource(uri, 'The URL has no host');
  if (url.search !== '' || url.hash !== '') {
    throw badSource(
      uri,
      'A source URL cannot have a query or fragment: keys are appended to its path',
    );
  }
  let segments: string[];
  try {
    segments = url.pathname
      .split('/')
      .filter((s) => s !== '')
      .map((s) => decodeURIComponent(s));
  } catch (error) {
    throw badSource(uri, 'The URL path has a malformed percent-escape', error);
  }
  const prefix = folder(uri, segments.join('/'));
  const path = prefix === '' ? '/' : `/${prefix.split('/').map(encodeURIComponent).join('/')}/`;
  const base = `${url.protocol}//${url.host}${path}`;
  return { kind: 'http', uri: base, url: base, prefix };
}

function parseFile(uri: string, text: string): ParsedSourceUri {
  let path: string;
  try {
    path = fileURLToPath(text);
  } catch (error) {
    throw badSource(uri, 'Malformed file:// URI (it must be file:///absolute/path)', error);
  }
  const clean = resolve(path);
  return { kind: 'local', uri: pathToFileURL(clean).href, prefix: '', path: clean };
}

/** Checks the folder part with the path rules; it becomes part of local paths. */
function folder(uri: string, raw: string): string {
  const trimmed = raw.replace(/\/+$/, '');
  if (trimmed === '') return '';
  try {
    return normalizePath(trimmed);
  } catch (error) {
    throw badSource(uri, `The folder "${trimmed}" is not a clean relative path`, error);
  }
}

function badSource(uri: string, reason: string, cause?: unknown): FerryError {
  return new FerryError('FERRY_BAD_SOURCE', `${reason}: ${JSON.stringify(uri)}`, {
    url: uri,
    cause,
    hint: USAGE_HINT,
  });
}
