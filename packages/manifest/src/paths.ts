import { FerryError } from './errors.js';

// A drive letter (`C:`, `c:foo`) makes a path absolute or drive-relative on Windows.
const DRIVE = /^[A-Za-z]:/;
/** Segments of ASCII letters, digits, `_ - + .` not starting with a dot, no `:` anywhere. */
const PLAIN_PATH = /^[A-Za-z0-9_+-][A-Za-z0-9_.+-]*(?:\/[A-Za-z0-9_+-][A-Za-z0-9_.+-]*)*$/;
// Lone UTF-16 surrogates cannot be encoded as UTF-8: two such paths would collapse into
// the same bytes on disk, in object keys and in the canonical manifest.
const LONE_SURROGATE = /\p{Cs}/u;

function reject(path: string, why: string): never {
  throw new FerryError('FERRY_BAD_PATH', `invalid path ${JSON.stringify(path)}: ${why}`, {
    key: path,
    hint: 'paths must be relative and "/"-separated, without ".", ".." or empty segments',
  });
}

/**
 * Checks that `path` is a relative, `/`-separated, normalised path and returns it.
 *
 * A normalised path is already in its only accepted form, so the result is always equal to
 * the input: nothing is stripped or rewritten, not even a trailing `/` (an entry names a
 * file, never a directory) or Unicode normalisation (object keys are bytes; rewriting them
 * would name another object). Everything else is refused, which makes the function a fixed
 * point: `normalizePath(normalizePath(p)) === normalizePath(p)`.
 *
 * @throws FerryError `FERRY_BAD_PATH`, naming the path and the reason, for the empty
 * string, absolute paths (`/a`, `C:\a`, `c:a`), backslashes, NUL, lone surrogates, and
 * empty (`a//b`, `a/`), `.` or `..` segments.
 */
export function normalizePath(path: string): string {
  // Nearly every path of a model is plain ASCII names between single slashes: one regex
  // confirms those (a large manifest checks 100k paths), the rules below explain the rest.
  if (typeof path === 'string' && PLAIN_PATH.test(path)) return path;
  if (typeof path !== 'string') reject(String(path), 'not a string');
  if (path === '') reject(path, 'empty');
  if (path.includes('\0')) reject(path, 'contains NUL');
  if (path.includes('\\')) reject(path, 'contains a backslash');
  if (path.startsWith('/')) reject(path, 'absolute');
  if (DRIVE.test(path)) reject(path, 'starts with a drive letter');
  if (LONE_SURROGATE.test(path)) reject(path, 'contains a lone UTF-16 surrogate');
  for (const segment of path.split('/')) {
    if (segment === '') reject(path, 'contains an empty segment');
    if (segment === '.') reject(path, "contains a '.' segment");
    if (segment === '..') reject(path, "contains a '..' segment");
  }
  return path;
}

/**
 * Whether `path` is inside `.ferry/`, in any case: ferry's own folder at the top of a cache
 * root (its store) and of a published prefix (refs and manifests). No file of a version may
 * live there: a folder pulled at a bucket's root would write into the cache's own state, and
 * a case-insensitive file system maps `.FERRY` onto the same folder.
 */
export function isReservedPath(path: string): boolean {
  // Neither NFC nor lower-casing turns another first character into a dot.
  if (path.charCodeAt(0) !== 0x2e) return false;
  const first = path.split('/', 1)[0] ?? '';
  return first.normalize('NFC').toLowerCase() === '.ferry';
}

/**
 * Refuses a set of paths of which two differ only by case folding (`NFC` then
 * `toLowerCase()`), such as `Model.bin` and `model.bin`: they would overwrite each other on
 * case-insensitive file systems (macOS, Windows). Identical paths are not collisions.
 *
 * @throws FerryError `FERRY_BAD_PATH` naming both paths.
 */
export function checkCaseCollisions(paths: Iterable<string>): void {
  const seen = new Map<string, string>();
  for (const path of paths) {
    const folded = path.normalize('NFC').toLowerCase();
    const other = seen.get(folded);
    if (other === undefined) seen.set(folded, path);
    else if (other !== path) {
      throw new FerryError(
        'FERRY_BAD_PATH',
        `paths ${JSON.stringify(other)} and ${JSON.stringify(path)} differ only by case`,
        { key: path, hint: 'rename one of them: they collide on case-insensitive file systems' },
      );
    }
  }
}

/**
 * Orders strings by the bytes of their UTF-8 encoding (which is code point order), the
 * order LevelDB keys and other languages' byte strings sort in. JavaScript's default sort
 * compares UTF-16 code units instead, which puts characters above U+FFFF (surrogate
 * pairs) before U+E000–U+FFFF.
 */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

// Moves surrogates (0xD800–0xDFFF) above 0xE000–0xFFFF so code units compare like code points.
function codePointRank(unit: number): number {
  if (unit >= 0xe000) return unit - 0x800;
  if (unit >= 0xd800) return unit + 0x2000;
  return unit;
}
