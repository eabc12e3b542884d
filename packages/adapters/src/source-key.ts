import { FerryError, normalizePath } from '@ferry/manifest';

/** Checks a key given to a source and returns its normal form (throws FERRY_BAD_PATH). */
export function checkKey(key: string): string {
  return normalizePath(key);
}

/**
 * Checks a listing prefix. Unlike a key it may be empty or end with `/` (a folder), and it
 * is a plain string prefix, as in S3: `a/b` also matches `a/bc`.
 */
export function checkPrefix(prefix: string | undefined): string {
  if (prefix === undefined || prefix === '') return '';
  const folder = prefix.endsWith('/');
  const trimmed = folder ? prefix.slice(0, -1) : prefix;
  if (trimmed === '') {
    throw new FerryError('FERRY_BAD_PATH', `Bad listing prefix "${prefix}"`, {
      key: prefix,
      hint: 'Give a prefix relative to the source root, such as "models/" or "", never "/".',
    });
  }
  const normal = normalizePath(trimmed);
  return folder ? `${normal}/` : normal;
}

/**
 * A listed key checked with the path rules. A bad key fails the listing naming it, so a
 * hostile or broken store can never make ferry write outside its cache.
 */
export function checkListedKey(key: string, sourceUri: string): string {
  try {
    return normalizePath(key);
  } catch (error) {
    throw new FerryError(
      'FERRY_BAD_PATH',
      `The listing of ${sourceUri} has an unusable key: ${JSON.stringify(key)}`,
      {
        key,
        cause: error,
        hint: 'Rename or remove that object in the store (keys must be relative paths without "..", empty segments or NUL), or publish a manifest that leaves it out.',
      },
    );
  }
}
