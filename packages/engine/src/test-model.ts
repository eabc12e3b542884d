import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { randomBytes } from '#fixtures';

/** A model-like folder for tests: shards of given sizes, a config, a tokenizer, small files. */
export interface ModelSpec {
  shards: number[];
  smallFiles?: number;
  seed?: number;
}

/** Writes the folder and returns its files as path → content. */
export async function writeModel(dir: string, spec: ModelSpec): Promise<Map<string, Buffer>> {
  const seed = spec.seed ?? 1;
  const files = new Map<string, Buffer>();
  files.set(
    'config.json',
    Buffer.from(JSON.stringify({ model: 'test', shards: spec.shards.length })),
  );
  files.set('tokenizer/tokenizer.json', randomBytes(40_000, seed + 1000));
  spec.shards.forEach((size, i) => {
    files.set(`model-${String(i + 1).padStart(5, '0')}.safetensors`, randomBytes(size, seed + i));
  });
  for (let i = 0; i < (spec.smallFiles ?? 0); i++) {
    files.set(`extra/file ${i}.txt`, randomBytes(100 + i * 37, seed + 2000 + i));
  }
  files.set('empty.bin', Buffer.alloc(0));
  for (const [path, content] of files) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), content);
  }
  return files;
}

/** Asserts-friendly comparison: the paths whose content under `dir` differs from `files`. */
export async function differingFiles(dir: string, files: Map<string, Buffer>): Promise<string[]> {
  const wrong: string[] = [];
  for (const [path, content] of files) {
    const actual = await readFile(join(dir, path)).catch(() => undefined);
    if (!actual?.equals(content)) wrong.push(path);
  }
  return wrong;
}
