import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { blake3 } from 'hash-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, randomBytes, type TempDir } from '#fixtures';
import {
  combinePartDigests,
  createPartHasher,
  DEFAULT_ALGORITHM,
  DEFAULT_PART_SIZE,
  hashFile,
  parseDigest,
  partCount,
  partLength,
  partRange,
} from './digest.js';
import { AbortError, FerryError } from './errors.js';
import type { DigestAlgorithm } from './types.js';

const PART = 64 * 1024;

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

function thrown(fn: () => unknown): FerryError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(FerryError);
    return err as FerryError;
  }
  throw new Error('expected a FerryError');
}

// The part-tree rule of types.ts, computed here without any code of digest.ts.
async function independentTree(algorithm: DigestAlgorithm, data: Buffer, partSize: number) {
  const hex = async (bytes: Buffer) =>
    algorithm === 'sha256' ? createHash('sha256').update(bytes).digest('hex') : blake3(bytes);
  const parts: string[] = [];
  for (let at = 0; at < data.length; at += partSize) {
    parts.push(await hex(data.subarray(at, at + partSize)));
  }
  const tree = Buffer.concat([
    Buffer.from(`ferry-part-tree-v1\n${partSize}\n`),
    ...parts.map((p) => Buffer.from(p, 'hex')),
  ]);
  return {
    digest: `${algorithm}:${await hex(tree)}`,
    parts: parts.map((p) => `${algorithm}:${p}`),
  };
}

let dir: TempDir;
beforeAll(async () => {
  dir = await makeTempDir('digest');
});
afterAll(async () => {
  await dir.remove();
});

async function fileOf(name: string, data: Buffer): Promise<string> {
  const path = join(dir.path, name);
  await writeFile(path, data);
  return path;
}

describe('parseDigest', () => {
  it('splits algorithm and hex', () => {
    const hex = 'a'.repeat(64);
    expect(parseDigest(`sha256:${hex}`)).toEqual({ algorithm: 'sha256', hex });
    expect(parseDigest(`blake3:${hex}`)).toEqual({ algorithm: 'blake3', hex });
  });

  it.each([
    `md5:${'a'.repeat(32)}`,
    `sha256:${'a'.repeat(63)}`,
    `sha256:${'a'.repeat(65)}`,
    `sha256:${'A'.repeat(64)}`,
    `SHA256:${'a'.repeat(64)}`,
    'a'.repeat(64),
    '',
  ])('refuses %j naming it', (d) => {
    const err = thrown(() => parseDigest(d));
    expect(err.code).toBe('FERRY_MANIFEST_INVALID');
    expect(err.message).toContain(JSON.stringify(d));
  });
});

describe('partRange and partLength', () => {
  it('cuts a file into whole parts and a short last one; a part past the end is empty', () => {
    expect([0, 1, 2].map((i) => partRange(25, 10, i))).toEqual([
      { start: 0, end: 10 },
      { start: 10, end: 20 },
      { start: 20, end: 25 },
    ]);
    expect(partRange(25, 10, 3)).toEqual({ start: 25, end: 25 });
    expect([0, 1, 2, 3].map((i) => partLength(25, 10, i))).toEqual([10, 10, 5, 0]);
    expect(partLength(0, 10, 0)).toBe(0);
  });
});

describe('partCount', () => {
  it('is ceil(size / partSize)', () => {
    expect(partCount(0, 10)).toBe(0);
    expect(partCount(1, 10)).toBe(1);
    expect(partCount(10, 10)).toBe(1);
    expect(partCount(11, 10)).toBe(2);
    expect(partCount(2 ** 40, DEFAULT_PART_SIZE)).toBe(2 ** 16);
  });

  it.each([
    [-1, 10, 'size -1'],
    [1.5, 10, 'size 1.5'],
    [10, 0, 'part size 0'],
    [10, -4, 'part size -4'],
    [2 ** 53, 10, `size ${2 ** 53}`],
  ])('refuses size %d with part size %d', (size, partSize, named) => {
    // A caller's bug, not a user's input: the CLI reports it as one.
    expect(() => partCount(size, partSize)).toThrow(RangeError);
    expect(() => partCount(size, partSize)).toThrow(named);
  });
});

describe('createPartHasher', () => {
  it('matches known answers and hashes the same in any chunking', async () => {
    const abc = Buffer.from('abc');
    const sha = await createPartHasher('sha256');
    sha.update(abc.subarray(0, 1));
    sha.update(abc.subarray(1));
    expect(sha.digest()).toBe(
      'sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
    const b3 = await createPartHasher('blake3');
    expect(b3.digest()).toBe(
      'blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262',
    );
  });

  it('is final after digest()', async () => {
    for (const algorithm of ['sha256', 'blake3'] as const) {
      const hasher = await createPartHasher(algorithm);
      hasher.digest();
      expect(() => hasher.digest()).toThrow('PartHasher used after digest()');
      expect(() => hasher.update(new Uint8Array(1))).toThrow('PartHasher used after digest()');
    }
  });

  it('refuses an unknown algorithm', async () => {
    const err = await rejection(createPartHasher('md5' as DigestAlgorithm));
    expect(err).toBeInstanceOf(FerryError);
    expect((err as FerryError).code).toBe('FERRY_UNSUPPORTED');
    expect((err as FerryError).message).toContain('"md5"');
  });
});

describe('combinePartDigests', () => {
  it('refuses part digests of another algorithm, naming the index', async () => {
    const hex = 'b'.repeat(64);
    const err = await rejection(
      combinePartDigests('sha256', PART, [`sha256:${hex}`, `blake3:${hex}`]),
    );
    expect((err as FerryError).code).toBe('FERRY_MANIFEST_INVALID');
    expect((err as FerryError).message).toContain('part digest 1 is blake3');
  });

  it('refuses a malformed part digest and a bad part size', async () => {
    const bad = await rejection(combinePartDigests('sha256', PART, ['sha256:xyz']));
    expect((bad as FerryError).code).toBe('FERRY_MANIFEST_INVALID');
    expect(await rejection(combinePartDigests('sha256', 0, []))).toBeInstanceOf(RangeError);
  });

  it('depends on the part size', async () => {
    expect(await combinePartDigests('sha256', 1, [])).not.toBe(
      await combinePartDigests('sha256', 2, []),
    );
  });
});

describe('hashFile', () => {
  const sizes: Array<[string, number]> = [
    ['empty', 0],
    ['one byte', 1],
    ['exactly three parts', 3 * PART],
    ['two and a half parts', 2.5 * PART],
  ];

  for (const algorithm of ['sha256', 'blake3'] as const) {
    it.each(sizes)(
      `${algorithm}: %s matches the part tree computed independently`,
      async (name, size) => {
        const data = randomBytes(size, size + 1);
        const path = await fileOf(`${algorithm}-${name}.bin`, data);
        const result = await hashFile(path, { partSize: PART, algorithm });
        const expected = await independentTree(algorithm, data, PART);
        expect(result.size).toBe(size);
        expect(result.parts).toEqual({ size: PART, digests: expected.parts });
        expect(result.parts.digests).toHaveLength(partCount(size, PART));
        expect(result.digest).toBe(expected.digest);
      },
    );

    it(`${algorithm}: parts hashed separately, in any order, combine to the file digest`, async () => {
      const data = randomBytes(5 * PART + 123, 42);
      const path = await fileOf(`${algorithm}-separate.bin`, data);
      const count = partCount(data.length, PART);
      const digests = new Array<string>(count);
      // Hash back to front, each part with its own hasher, as workers would.
      for (let i = count - 1; i >= 0; i--) {
        const hasher = await createPartHasher(algorithm);
        hasher.update(data.subarray(i * PART, (i + 1) * PART));
        digests[i] = hasher.digest();
      }
      const combined = await combinePartDigests(algorithm, PART, digests);
      expect(combined).toBe((await hashFile(path, { partSize: PART, algorithm })).digest);
    });
  }

  it('uses the defaults when no options are given', async () => {
    const data = randomBytes(1000, 3);
    const result = await hashFile(await fileOf('defaults.bin', data));
    expect(result.parts.size).toBe(DEFAULT_PART_SIZE);
    expect(result.digest.startsWith(`${DEFAULT_ALGORITHM}:`)).toBe(true);
    expect(result.digest).toBe(
      (await independentTree(DEFAULT_ALGORITHM, data, DEFAULT_PART_SIZE)).digest,
    );
  });

  it('reports an unreadable file as FERRY_IO naming it', async () => {
    const missing = join(dir.path, 'missing.bin');
    const err = await rejection(hashFile(missing, {}));
    expect(err).toBeInstanceOf(FerryError);
    expect((err as FerryError).code).toBe('FERRY_IO');
    expect((err as FerryError).message).toContain(missing);
    expect((err as FerryError).key).toBe(missing);
  });

  it('rejects with an AbortError carrying the reason, before and during reading', async () => {
    const path = await fileOf('abort.bin', randomBytes(4 * 1024 * 1024, 9));
    const before = new AbortController();
    before.abort('early');
    const early = await rejection(hashFile(path, { signal: before.signal }));
    expect(early).toBeInstanceOf(AbortError);
    expect((early as AbortError).cause).toBe('early');

    const during = new AbortController();
    const running = hashFile(path, { signal: during.signal });
    during.abort('late');
    const late = await rejection(running);
    expect(late).toBeInstanceOf(AbortError);
    expect((late as AbortError).cause).toBe('late');
  });
});
