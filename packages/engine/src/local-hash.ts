import {
  combinePartDigests,
  type Digest,
  type DigestAlgorithm,
  type PartList,
  partCount,
  partRange,
} from '@ferry/manifest';
import type { PartPool } from './part-pool.js';

/** Hashes a local file part by part on the pool (parts in parallel), then combines them. */
export async function hashLocalFile(
  pool: PartPool,
  path: string,
  size: number,
  partSize: number,
  algorithm: DigestAlgorithm,
  /** Called with each part's length as it is hashed, for progress. */
  onPart?: (bytes: number) => void,
): Promise<{ digest: Digest; parts: PartList }> {
  const count = partCount(size, partSize);
  const digests = await Promise.all(
    Array.from({ length: count }, (_, i) => {
      const range = partRange(size, partSize, i);
      return pool.run({ kind: 'hash', path, ...range, algorithm }).then((r) => {
        onPart?.(range.end - range.start);
        return r.digest;
      });
    }),
  );
  return {
    digest: await combinePartDigests(algorithm, partSize, digests),
    parts: { size: partSize, digests },
  };
}

/** S3 gives the MD5 of the content as ETag for single-part uploads: 32 hex digits, quoted. */
export function md5FromEtag(etag: string | undefined): string | undefined {
  const match = etag === undefined ? null : /^"?([0-9a-f]{32})"?$/i.exec(etag);
  return match?.[1]?.toLowerCase();
}
