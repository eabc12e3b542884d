import type { Digest } from '@ferry/manifest';
import { describe, expect, it } from 'vitest';
import { type Decision, decide, type FileFacts } from './plan-rules.js';

const D = (n: number): Digest => `sha256:${n.toString(16).padStart(64, '0')}`;
const SIZE = 100;
const PART = 64;
const parts = (...n: number[]) => ({ size: PART, digests: n.map(D) });

/** A published entry of two parts, and a right-sized file at its path that ferry left. */
const base: FileFacts = {
  entry: { size: SIZE, digest: D(1), parts: parts(11, 12) },
  published: true,
  verify: 'stat',
  partSize: PART,
  local: { kind: 'file', size: SIZE },
  atBase: false,
  record: { digest: D(1), parts: parts(11, 12) },
  recordVouches: true,
  resumable: false,
};
const facts = (over: Partial<FileFacts>): FileFacts => ({ ...base, ...over });
/** `f` without the facts named: no stat record, or no previous version of the file. */
const without = (f: FileFacts, ...absent: Array<'record' | 'previous'>): FileFacts => {
  const rest = { ...f };
  for (const fact of absent) delete rest[fact];
  return rest;
};
const noFile = (over: Partial<FileFacts> = {}): FileFacts =>
  without(facts({ local: { kind: 'none' }, recordVouches: false, ...over }), 'record');
/** A plain listing's entry: no digest, an ETag; a file ferry fetched for it before. */
const plain = (over: Partial<FileFacts>): FileFacts =>
  facts({
    entry: { size: SIZE, etag: '"e1"' },
    published: false,
    record: { digest: D(1) },
    previous: { etag: '"e1"', size: SIZE, digest: D(1) },
    ...over,
  });

const skip = (known: FileFacts['content'], vouched: boolean, more: Partial<Decision> = {}) => ({
  kind: 'skip',
  known,
  vouched,
  fresh: !vouched,
  hashed: false,
  ...more,
});
const fetch = (more: Partial<Decision> = {}) => ({
  kind: 'fetch',
  resume: false,
  hashed: false,
  overwritesEdit: false,
  ...more,
});

describe('decide', () => {
  const table: Array<[string, FileFacts, unknown]> = [
    ['a file its record vouches for stays, as recorded', base, skip(base.record, true)],
    [
      'the current version’s file beside the new one is linked: fresh under the new path',
      facts({ atBase: true }),
      skip(base.record, true, { fresh: true }),
    ],
    ['a symlink at the path is replaced', facts({ local: { kind: 'symlink' } }), { need: 'twin' }],
    [
      'a folder at the path is in the way',
      facts({ local: { kind: 'other' } }),
      { kind: 'in-the-way' },
    ],
    ['nothing there: a twin elsewhere is asked for', noFile(), { need: 'twin' }],
    [
      'nothing there, a twin vouched for: copied',
      noFile({ twin: true }),
      { kind: 'copy', hashed: false, overwritesEdit: false },
    ],
    ['nothing there, no twin: fetched', noFile({ twin: false }), fetch()],
    ['an empty file never looks for a twin', noFile({ entry: { size: 0, digest: D(1) } }), fetch()],
    [
      'an interrupted transfer of the same object resumes before any twin',
      noFile({ resumable: true }),
      fetch({ resume: true }),
    ],
    [
      'an edited file of the right size is hashed',
      facts({ recordVouches: false }),
      { need: 'hash' },
    ],
    [
      'an edited file that hashes right stays, with a fresh record',
      facts({ recordVouches: false, content: { digest: D(1), parts: parts(11, 12) } }),
      skip({ digest: D(1), parts: parts(11, 12) }, false, { hashed: true }),
    ],
    [
      'an edited file that hashes wrong: its right parts are reused, the edit overwritten',
      facts({ recordVouches: false, content: { digest: D(9), parts: parts(11, 99) }, twin: false }),
      fetch({ reuse: [D(11), D(99)], hashed: true, overwritesEdit: true }),
    ],
    [
      'hashed parts of another part size are not reused',
      facts({
        recordVouches: false,
        content: { digest: D(9), parts: { size: 32, digests: [D(11)] } },
        twin: false,
      }),
      fetch({ hashed: true, overwritesEdit: true }),
    ],
    [
      'an older version ferry left (other size) lends its parts',
      facts({ local: { kind: 'file', size: 90 }, record: { digest: D(2), parts: parts(11, 13) } }),
      fetch({ reuse: [D(11), D(13)] }),
    ],
    [
      'an older version that was edited lends nothing and is an edit overwritten',
      facts({ local: { kind: 'file', size: 90 }, recordVouches: false, twin: false }),
      fetch({ overwritesEdit: true }),
    ],
    [
      'a vouched file of the right size but another digest lends its parts',
      facts({ record: { digest: D(2), parts: parts(11, 13) } }),
      fetch({ reuse: [D(11), D(13)] }),
    ],
    [
      'no part digests in the entry: nothing is reused',
      facts({
        entry: { size: SIZE, digest: D(1) },
        record: { digest: D(2), parts: parts(11, 13) },
        twin: false,
      }),
      fetch(),
    ],
    ['--verify hash hashes even a vouched file', facts({ verify: 'hash' }), { need: 'hash' }],
    [
      '--verify hash: a vouched file that hashes right gets a fresh record',
      facts({ verify: 'hash', content: { digest: D(1), parts: parts(11, 12) } }),
      skip({ digest: D(1), parts: parts(11, 12) }, false, { hashed: true }),
    ],
    [
      '--verify size takes a right-sized file on the manifest’s word, unread',
      facts({ verify: 'size', recordVouches: false }),
      skip({ digest: D(1), parts: parts(11, 12) }, false),
    ],
    [
      'plain listing: the file ferry fetched for the same ETag stays',
      plain({}),
      skip({ digest: D(1) }, true),
    ],
    [
      'plain listing, a new ETag with an MD5: the file’s MD5 is asked for',
      plain({ entry: { size: SIZE, etag: '"e2"' }, etagMd5: 'abc' }),
      { need: 'md5' },
    ],
    [
      'plain listing, the MD5 matches: stays, with a fresh record',
      plain({ entry: { size: SIZE, etag: '"e2"' }, etagMd5: 'abc', md5: 'abc' }),
      skip({ digest: D(1) }, false, { hashed: true }),
    ],
    [
      'plain listing, the MD5 differs: fetched (no digest, so no twin)',
      plain({ entry: { size: SIZE, etag: '"e2"' }, etagMd5: 'abc', md5: 'def' }),
      fetch({ hashed: true }),
    ],
    [
      'plain listing, a multipart ETag that changed: fetched, nothing to compare',
      plain({ entry: { size: SIZE, etag: '"e2-3"' } }),
      fetch(),
    ],
    [
      'plain listing, a file ferry never fetched and no way to compare: the size rule',
      without(plain({ entry: { size: SIZE, etag: '"e2-3"' }, recordVouches: false }), 'record'),
      { need: 'hash' },
    ],
    [
      'plain listing, hashed, nothing to compare it with: kept by size',
      without(
        plain({
          entry: { size: SIZE, etag: '"e2-3"' },
          recordVouches: false,
          content: { digest: D(5) },
        }),
        'record',
        'previous',
      ),
      skip({ digest: D(5) }, false, { hashed: true }),
    ],
    [
      'plain listing under --verify size: kept whatever its ETag',
      plain({ entry: { size: SIZE, etag: '"e2-3"' }, verify: 'size' }),
      skip({ digest: D(1) }, true),
    ],
  ];

  it.each(table)('%s', (_name, input, expected) => {
    expect(decide(input)).toEqual(expected);
  });

  it('asks for each fact at most once, and only the facts its rules read', () => {
    // Gathering in a loop as plan.ts does must end: every answer moves the decision on.
    for (const [, input] of table) {
      const asked: string[] = [];
      const f = { ...input };
      let d = decide(f);
      while ('need' in d) {
        expect(asked).not.toContain(d.need);
        asked.push(d.need);
        if (d.need === 'hash') f.content = { digest: D(77) };
        if (d.need === 'md5') f.md5 = 'zzz';
        if (d.need === 'twin') f.twin = false;
        d = decide(f);
      }
      if (input.local.kind !== 'file' || input.local.size !== input.entry.size) {
        expect(asked).not.toContain('hash');
        expect(asked).not.toContain('md5');
      }
    }
  });
});
