// The rules of planning, as one pure function: what a pull does about one file, from facts
// about it. plan.ts gathers the facts (lstat, the stat index, hashing, journals) and asks
// again when a rule needs one it has not gathered yet, so the costly ones are paid only when
// a rule needs them. Table-tested in plan-rules.test.ts without disk or workers.
import type { Digest, PartList } from '@ferry/manifest';
import type { VerifyMode } from './types.js';

/** A file's content identity: its digest and, when known, its part digests. */
export interface Known {
  digest: Digest;
  parts?: PartList;
}

export interface FileFacts {
  /** The remote file. */
  entry: { size: number; digest?: Digest; parts?: PartList; etag?: string };
  /** The entries come from a published manifest (digests) rather than a plain listing. */
  published: boolean;
  verify: VerifyMode;
  /** Part size a fetch of the file would use. */
  partSize: number;
  /**
   * What is at the file's path, or, when nothing is and the pull builds a new version beside
   * the current one, at the current version's path (`atBase`).
   */
  local: { kind: 'none' } | { kind: 'other' | 'symlink' } | { kind: 'file'; size: number };
  atBase: boolean;
  /** The stat index's record for that file. */
  record?: Known;
  /** The file's stat still vouches for its record: it is as ferry left it. */
  recordVouches: boolean;
  /** A plain listing's previous version of the file, as ferry fetched it. */
  previous?: { etag?: string; size: number; digest: Digest };
  /** The MD5 a single-part ETag stands for (plain listings). */
  etagMd5?: string;
  /** A journal of an interrupted transfer of this very object to this path. */
  resumable: boolean;
  /** Gathered on `need: 'hash'`: the local file's content hashed. */
  content?: Known;
  /** Gathered on `need: 'md5'`: the local file's MD5. */
  md5?: string;
  /**
   * Gathered on `need: 'twin'`: whether another file of the cache, still as ferry left it,
   * holds the same content.
   */
  twin?: boolean;
}

export type Decision =
  /** A fact the rules need is missing: gather it and decide again. */
  | { need: 'hash' | 'md5' | 'twin' }
  /** Something that is not a regular file sits at the path: the pull must not touch it. */
  | { kind: 'in-the-way' }
  | {
      kind: 'skip';
      /** The file's digest for the new manifest: its record's, the entry's or its hash. */
      known: Known;
      /** `known` is the stat record, which vouches for the file: it is kept as it is. */
      vouched: boolean;
      /** The stat index does not vouch for the file yet (or not under this path). */
      fresh: boolean;
      hashed: boolean;
    }
  | {
      kind: 'fetch';
      /** The local file's part digests: the parts that match the entry's are not fetched. */
      reuse?: Digest[];
      resume: boolean;
      hashed: boolean;
      overwritesEdit: boolean;
    }
  | { kind: 'copy'; hashed: boolean; overwritesEdit: boolean };

/** What a pull does about one file. */
export function decide(f: FileFacts): Decision {
  if (f.local.kind === 'other') return { kind: 'in-the-way' };
  const file = f.local.kind === 'file' ? f.local : undefined;
  const vouched = file !== undefined && f.record !== undefined && f.recordVouches;
  const edited = file !== undefined && f.record !== undefined && !f.recordVouches;
  const hashed = f.content !== undefined || f.md5 !== undefined;

  let reuse: Digest[] | undefined;
  if (file !== undefined && file.size === f.entry.size) {
    const judged = judge(f, vouched);
    if ('need' in judged) return judged;
    if (judged.right) {
      const { known, vouched } = judged;
      return { kind: 'skip', known, vouched, fresh: f.atBase || !vouched, hashed };
    }
    if (judged.known.parts?.size === f.partSize) reuse = judged.known.parts.digests;
  } else if (vouched && f.record?.parts?.size === f.partSize) {
    // An older version of the file, still as ferry left it: its unchanged parts are reused.
    reuse = f.record.parts.digests;
  }
  // Only a manifest's part digests say which local parts are still right.
  if (f.entry.parts === undefined) reuse = undefined;

  const overwritesEdit = edited;
  if (f.resumable || reuse !== undefined) {
    return {
      kind: 'fetch',
      ...(reuse === undefined ? {} : { reuse }),
      resume: f.resumable,
      hashed,
      overwritesEdit,
    };
  }
  if (f.entry.digest !== undefined && f.entry.size > 0) {
    if (f.twin === undefined) return { need: 'twin' };
    if (f.twin) return { kind: 'copy', hashed, overwritesEdit };
  }
  return { kind: 'fetch', resume: false, hashed, overwritesEdit };
}

type Judgement = { need: 'hash' | 'md5' } | { right: boolean; known: Known; vouched: boolean };

/** Whether a present file of the right size holds the remote content. */
function judge(f: FileFacts, vouchedByRecord: boolean): Judgement {
  const vouched = vouchedByRecord && f.verify !== 'hash';
  let known: Known;
  if (vouched && f.record !== undefined) {
    known = f.record;
  } else if (f.verify === 'size' && f.entry.digest !== undefined) {
    // The model.json rule: the right size is enough. The manifest vouches for the digest.
    const { digest, parts } = f.entry;
    return { right: true, known: parts ? { digest, parts } : { digest }, vouched: false };
  } else if (f.content === undefined) {
    return { need: 'hash' };
  } else {
    known = f.content;
  }
  const digest = known.digest;
  if (f.published) return { right: digest === f.entry.digest, known, vouched };
  // A plain listing has no digests: the file is right when it is what ferry fetched for the
  // same ETag, or, failing that, when its MD5 matches a single-part ETag.
  const previous = f.previous;
  if (
    previous !== undefined &&
    previous.etag === f.entry.etag &&
    previous.size === f.entry.size &&
    previous.digest === digest
  ) {
    return { right: true, known, vouched };
  }
  if (f.verify === 'size') return { right: true, known, vouched };
  if (f.etagMd5 !== undefined) {
    if (f.md5 === undefined) return { need: 'md5' };
    return { right: f.md5 === f.etagMd5, known, vouched: false };
  }
  // No way to compare content (multipart ETag, HTTP origin): fall back to the size rule
  // only when ferry has no record saying this file came from a different object.
  return { right: previous === undefined, known, vouched: false };
}
