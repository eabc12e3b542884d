import { describe, expect, it } from 'vitest';
import { parseListPage } from './s3-list-page.js';

const URI = 's3://bucket/prefix';

function page(contents: string, tail = '<IsTruncated>false</IsTruncated>'): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bucket</Name><Prefix>prefix/</Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys>${tail}${contents}</ListBucketResult>`;
}

const entry = (key: string, size: number, extra = '') =>
  `<Contents><Key>${key}</Key><LastModified>2026-12-02T18:00:00.000Z</LastModified><ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag><Size>${size}</Size><StorageClass>STANDARD</StorageClass>${extra}</Contents>`;

describe('parseListPage', () => {
  it('reads keys, sizes, ETags and dates, entities decoded', () => {
    const parsed = parseListPage(
      page(
        entry('prefix/a&amp;b &lt;c&gt; &#39;q&apos; &quot;d&quot; &#x2603;.bin', 17) +
          entry('prefix/z', 0),
      ),
      URI,
    );
    expect(parsed).toEqual({
      objects: [
        {
          key: `prefix/a&b <c> 'q' "d" ☃.bin`,
          size: 17,
          etag: '"9b2cf535f27731c974343645a3985328"',
          lastModified: new Date('2026-12-02T18:00:00.000Z'),
        },
        {
          key: 'prefix/z',
          size: 0,
          etag: '"9b2cf535f27731c974343645a3985328"',
          lastModified: new Date('2026-12-02T18:00:00.000Z'),
        },
      ],
      nextToken: undefined,
    });
  });

  it('gives the next page only when the listing is truncated', () => {
    const truncated = page(
      entry('prefix/a', 1),
      '<IsTruncated>true</IsTruncated><NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>',
    );
    expect(parseListPage(truncated, URI).nextToken).toBe(
      '1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=',
    );
    expect(parseListPage(page(''), URI)).toEqual({ objects: [], nextToken: undefined });
  });

  it('refuses what is not a listing, naming it', () => {
    for (const xml of [
      '<Error><Code>NoSuchBucket</Code></Error>',
      page(entry('prefix/a', 1), '<IsTruncated>true</IsTruncated>'),
      page('<Contents><Key>prefix/a</Key></Contents>'),
      page(entry('prefix/a', -1)),
    ]) {
      expect(() => parseListPage(xml, URI)).toThrow(
        expect.objectContaining({ code: 'FERRY_BAD_RESPONSE', url: URI }),
      );
    }
  });
});
