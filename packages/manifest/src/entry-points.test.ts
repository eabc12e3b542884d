import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const dist = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');

/**
 * The packages a built module loads when imported, following its relative static imports
 * (types are erased; `import()` calls load later and are not followed).
 */
function packagesLoadedBy(entry: string): Set<string> {
  const seen = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const code = readFileSync(file, 'utf8');
    for (const [, spec] of code.matchAll(/(?:from|import)\s*['"]([^'"]+)['"]/g)) {
      if (spec === undefined) continue;
      if (spec.startsWith('.')) visit(join(dirname(file), spec));
      else if (!spec.startsWith('node:')) packages.add(spec);
    }
  };
  visit(join(dist, entry));
  return packages;
}

describe('entry points', () => {
  it('the format, digests and errors load no native module; the store entry brings LevelDB', () => {
    // hash-wasm loads only when a BLAKE3 hasher is first made.
    expect([...packagesLoadedBy('index.js')]).toEqual([]);
    expect(packagesLoadedBy('store.js')).toContain('level');
  });
});
