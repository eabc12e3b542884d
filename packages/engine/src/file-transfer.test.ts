import { describe, expect, it } from 'vitest';
import { followsMd5 } from './file-transfer.js';
import type { FilePlan } from './plan.js';

const MiB = 2 ** 20;
const md5Etag = '"0123456789abcdef0123456789abcdef"';

function plan(entry: FilePlan['entry'], action: FilePlan['action'] = { kind: 'fetch' }): FilePlan {
  return {
    entry,
    relPath: `m/${entry.path}`,
    finalPath: `/c/m/${entry.path}`,
    partSize: 16 * MiB,
    action,
  };
}

describe('followsMd5', () => {
  const big = { path: 'w.bin', size: 40 * MiB, etag: md5Etag };

  it('is true when a fetched file of several parts has a single-part ETag to check', () => {
    expect(followsMd5([plan({ path: 'a', size: 10, etag: md5Etag }), plan(big)], true)).toBe(true);
  });

  it('is false for one part, a multipart ETag, a manifest digest, a copy, or checks turned off', () => {
    const cases: FilePlan[] = [
      plan({ ...big, size: 16 * MiB }), // one part: its MD5 is hashed in the stream
      plan({ ...big, etag: '"0123456789abcdef0123456789abcdef-3"' }),
      plan({ ...big, digest: 'sha256:00' }),
      plan(big, {
        kind: 'copy',
        fromPath: '/c/n/w.bin',
        fromRelPath: 'n/w.bin',
        record: { size: big.size, mtimeMs: 0, digest: 'sha256:00' },
      }),
    ];
    expect(followsMd5(cases, true)).toBe(false);
    expect(followsMd5([plan(big)], false)).toBe(false);
  });
});
