/** Hash functions ferry can name in a digest. */
export type DigestAlgorithm = 'sha256' | 'blake3';

/**
 * A content digest written `<algorithm>:<lowercase hex>`, e.g. `sha256:9f86…`.
 *
 * A part digest is the hash of the part's bytes. A file digest is a part tree: the hash of
 * `"ferry-part-tree-v1\n" + <partSize in decimal> + "\n"` followed by the raw bytes of every
 * part digest in order. A file of `size` bytes has `ceil(size / partSize)` parts (none when
 * empty), so parts hashed by different workers combine without reading the file again.
 */
export type Digest = string;

/** The digest of a manifest's canonical bytes; names one version of a file set. */
export type VersionId = Digest;

/** A human name (`v3`, `latest`) pointing at a VersionId; `[A-Za-z0-9._-]{1,128}`, not `.`/`..`. */
export type Ref = string;

/** Part digests of a file cut into fixed-size parts (the last one may be shorter). */
export interface PartList {
  /** Part size in bytes (a positive integer). */
  size: number;
  /** One digest per part, in file order. */
  digests: Digest[];
}

/** One file of a manifest. */
export interface Entry {
  /** Relative, `/`-separated, normalised path (see `normalizePath`). */
  path: string;
  /** Size in bytes. */
  size: number;
  /** Part-tree digest of the content. */
  digest: Digest;
  /** Part digests, when known; the file digest is derived from them. */
  parts?: PartList;
  /** The origin's ETag when the entry was built from a listing. */
  etag?: string;
  /** Modification time in milliseconds since the epoch, informational. */
  mtime?: number;
}

/** A version of a file set: entries sorted by path, unique paths. */
export interface Manifest {
  version: 1;
  entries: Entry[];
  /**
   * Where the version's content lives at the store. Absent: each file at its own path
   * (prefixes published before content addressing; a later publish may overwrite them).
   * `parts`: every part of every file as its own immutable object named by its digest,
   * shared by every version (and, in a store, every prefix) that has it: in the store named
   * by `store`, else under the prefix's own `.ferry/parts/<algorithm>/<hex>`; every
   * non-empty entry then lists its parts.
   */
  layout?: 'parts';
  /**
   * Where the part objects of a `parts` layout live, relative to the prefix the manifest is
   * published at: `./` (the prefix itself) or `../` repeated (a folder or bucket root above
   * it), whose `.ferry/store/parts/<algorithm>/<hex>` holds them, shared by every prefix
   * published to that store. A puller resolves it against the URI it read the manifest
   * from, so the same manifest works over `s3://`, `https://` and a local path. Absent: the
   * prefix's own `.ferry/parts/` (prefixes published before stores).
   */
  store?: string;
  /** ISO 8601 creation time; part of the version id when present. */
  created?: string;
  /** Free-form string metadata; part of the version id. */
  meta?: Record<string, string>;
}
