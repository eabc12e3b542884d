import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FerryError } from './errors.js';
import { checkCaseCollisions, compareUtf8, normalizePath } from './paths.js';

function badPathError(fn: () => unknown): FerryError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(FerryError);
    const e = err as FerryError;
    expect(e.code).toBe('FERRY_BAD_PATH');
    return e;
  }
  throw new Error('expected FERRY_BAD_PATH');
}

describe('normalizePath', () => {
  it('returns good paths unchanged', () => {
    for (const p of ['a', 'a/b/model.bin', '.hidden/x', '..a/b..', 'a b/ü/💾', 'x.', 'ab:c']) {
      expect(normalizePath(p)).toBe(p);
    }
  });

  it.each([
    ['', 'empty'],
    ['/etc/passwd', 'absolute'],
    ['C:/x', 'drive letter'],
    ['c:x', 'drive letter'],
    ['a\\b', 'backslash'],
    ['a/\0b', 'NUL'],
    ['a//b', 'empty segment'],
    ['a/', 'empty segment'],
    ['./a', "'.' segment"],
    ['a/./b', "'.' segment"],
    ['../a', "'..' segment"],
    ['a/..', "'..' segment"],
    ['a/\ud800', 'lone UTF-16 surrogate'],
  ])('refuses %j (%s) naming the path and the reason', (path, why) => {
    const err = badPathError(() => normalizePath(path));
    expect(err.message).toContain(JSON.stringify(path));
    expect(err.message).toContain(why);
    expect(err.key).toBe(path);
  });

  const segment = fc
    .string({ minLength: 1, maxLength: 6 })
    .filter((s) => !/[/\\\0]/.test(s) && s !== '.' && s !== '..' && !/\p{Cs}/u.test(s));
  const goodPath = fc
    .array(segment, { minLength: 1, maxLength: 5 })
    .map((segs) => segs.join('/'))
    .filter((p) => !/^[A-Za-z]:/.test(p));

  it('is a fixed point on everything it accepts', () => {
    fc.assert(
      fc.property(fc.string(), (p) => {
        let once: string;
        try {
          once = normalizePath(p);
        } catch {
          return;
        }
        expect(normalizePath(once)).toBe(once);
      }),
    );
    fc.assert(
      fc.property(goodPath, (p) => {
        expect(normalizePath(p)).toBe(p);
      }),
    );
  });

  it('refuses any path containing a bad segment', () => {
    const bad = fc.constantFrom('', '.', '..', 'a\\b', 'x\0', '\\');
    fc.assert(
      fc.property(
        fc.array(segment, { maxLength: 3 }),
        bad,
        fc.array(segment, { maxLength: 3 }),
        (before, b, after) => {
          const path = [...before, b, ...after].join('/');
          badPathError(() => normalizePath(path));
        },
      ),
    );
    fc.assert(
      fc.property(goodPath, (p) => {
        badPathError(() => normalizePath(`/${p}`));
      }),
    );
  });
});

describe('checkCaseCollisions', () => {
  it('accepts distinct paths and exact repeats', () => {
    checkCaseCollisions(['a/b', 'a/c', 'A/d', 'a/b']);
  });

  it('names both paths that differ only by case', () => {
    const err = badPathError(() => checkCaseCollisions(['x', 'Model.bin', 'model.BIN']));
    expect(err.message).toContain('"Model.bin"');
    expect(err.message).toContain('"model.BIN"');
  });

  it('folds Unicode normalisation forms too', () => {
    const nfd = 'cafe\u0301/x';
    const nfc = 'CAF\u00c9/x';
    const err = badPathError(() => checkCaseCollisions([nfc, nfd]));
    expect(err.message).toContain(JSON.stringify(nfd));
  });
});

describe('compareUtf8', () => {
  it('sorts like the UTF-8 bytes', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'grapheme' }), (a, b) => {
        const bytes = Buffer.compare(Buffer.from(a), Buffer.from(b));
        expect(Math.sign(compareUtf8(a, b))).toBe(bytes);
      }),
    );
    // U+FFFD sorts before U+1F4BE in UTF-8 but after it in UTF-16 code units.
    expect(compareUtf8('\ufffd', '💾')).toBeLessThan(0);
    expect(['💾', '\ufffd'].sort()).toEqual(['💾', '\ufffd']);
  });
});
