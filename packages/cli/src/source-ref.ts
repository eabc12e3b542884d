/** A source argument taken apart: `s3://bucket/m@v2` → source `s3://bucket/m`, ref `v2`. */
export interface SourceRef {
  /** The source URI or path; `''` for the ref-only form `@v2` (source from model.json). */
  source: string;
  ref?: string;
}

const REF = /^[A-Za-z0-9._-]+$/;
/**
 * What looks like a version id, whole or shortened: split off so that the pull judges it
 * (`isVersionId`) and says what is wrong with a short one.
 */
const VERSION_ID_LIKE = /^(?:sha256|blake3):[0-9a-f]+$/;

/**
 * Splits `<source>@<ref>` at the last `@`, only when what follows it is a ref
 * (`[A-Za-z0-9._-]+`) or a version id (`sha256:<hex>`), and the `@` is not inside a URL's
 * host part. So `s3://bucket/a@b/c` (a key with `@`) and `https://user@host/m` (user info)
 * stay whole. A prefix whose name ends in `@x` keeps it by ending in `/`:
 * `s3://bucket/model@2024/`.
 */
export function splitSourceRef(text: string): SourceRef {
  const at = text.lastIndexOf('@');
  if (at === -1) return { source: text };
  const ref = text.slice(at + 1);
  if (!REF.test(ref) && !VERSION_ID_LIKE.test(ref)) return { source: text };
  const source = text.slice(0, at);
  if (insideUrlHost(text, at)) return { source: text };
  return { source, ref };
}

/** True when `at` falls in the `user@host` part of an http(s) URL. */
function insideUrlHost(text: string, at: number): boolean {
  const scheme = /^https?:\/\//i.exec(text);
  if (!scheme) return false;
  const pathStart = text.indexOf('/', scheme[0].length);
  return pathStart === -1 || at < pathStart;
}
