import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { randomBytes } from '../../test/fixtures/random-bytes.js';

/** What to generate: a model-like folder, sizes from the runner's flags. */
export interface DatasetSpec {
  /** Safetensors-like shards. */
  shards: number;
  shardSize: number;
  /** Small files under `extra/` (think per-layer tensors or a tokenizer's merges split up). */
  smallFiles: number;
  smallFileSize: number;
  /** config.json, tokenizer files and the shard index, as a model folder has them. */
  extras: boolean;
  /** Different seeds give different bytes; the same spec and seed give the same folder. */
  seed: number;
}

export interface FileFacts {
  size: number;
  sha256: string;
}

/** A generated folder and what every file must hold. */
export interface Dataset {
  dir: string;
  files: Map<string, FileFacts>;
  bytes: number;
}

// Written in chunks so a multi-GiB shard never needs its size in memory.
const CHUNK = 16 * 2 ** 20;

async function writeRandomFile(path: string, size: number, seed: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const handle = await open(path, 'w');
  try {
    for (let at = 0, chunk = 0; at < size; at += CHUNK, chunk++) {
      // xorshift seeds must differ per chunk or every chunk repeats the first.
      await handle.write(randomBytes(Math.min(CHUNK, size - at), seed * 1_000_003 + chunk));
    }
  } finally {
    await handle.close();
  }
}

function shardName(i: number, n: number): string {
  const width = 5;
  return `model-${String(i + 1).padStart(width, '0')}-of-${String(n).padStart(width, '0')}.safetensors`;
}

/** Writes the folder described by `spec` into `dir` (which should be empty) and describes it. */
export async function generateDataset(dir: string, spec: DatasetSpec): Promise<Dataset> {
  await mkdir(dir, { recursive: true });
  const shards = Array.from({ length: spec.shards }, (_, i) => shardName(i, spec.shards));
  const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;
  if (spec.extras) {
    await writeFile(
      join(dir, 'config.json'),
      json({ architectures: ['BenchForCausalLM'], hidden_size: 4096, num_hidden_layers: 32 }),
    );
    await writeFile(join(dir, 'generation_config.json'), json({ max_new_tokens: 256 }));
    await writeFile(join(dir, 'tokenizer_config.json'), json({ model_max_length: 8192 }));
    // A tokenizer is a few MiB of JSON; its content does not matter, only its size.
    await writeRandomFile(join(dir, 'tokenizer.json'), 2 * 2 ** 20, spec.seed + 7);
    await writeFile(
      join(dir, 'model.safetensors.index.json'),
      json({ weight_map: Object.fromEntries(shards.map((s, i) => [`layer.${i}`, s])) }),
    );
  }
  for (const [i, name] of shards.entries()) {
    await writeRandomFile(join(dir, name), spec.shardSize, spec.seed + 100 + i);
  }
  for (let i = 0; i < spec.smallFiles; i++) {
    const path = join(dir, 'extra', String(i % 16).padStart(2, '0'), `part-${i}.bin`);
    await writeRandomFile(path, spec.smallFileSize, spec.seed + 10_000 + i);
  }
  return describeDir(dir);
}

/**
 * Changes 1 MiB inside the second shard (same size) and adds one new file: one update step.
 * `paths` are the two files, for a plain copy to take the same change.
 */
export async function changeDataset(
  dataset: Dataset,
  step: number,
  partSize: number,
): Promise<{ changedBytes: number; addedBytes: number; paths: string[] }> {
  const shard = [...dataset.files.keys()].filter((p) => p.endsWith('.safetensors')).sort()[1];
  if (shard === undefined) throw new Error('changeDataset needs at least two shards');
  const size = dataset.files.get(shard)?.size ?? 0;
  const changed = 2 ** 20;
  // Inside one part, a different part each step, never across a part boundary.
  const parts = Math.max(1, Math.floor(size / partSize));
  const offset = ((step % parts) * partSize + partSize / 4) % Math.max(1, size - changed);
  const handle = await open(join(dataset.dir, shard), 'r+');
  try {
    await handle.write(randomBytes(changed, 50_000 + step), 0, changed, offset);
  } finally {
    await handle.close();
  }
  const added = 3 * 2 ** 20;
  const addedPath = `added/step-${step}.bin`;
  await writeRandomFile(join(dataset.dir, addedPath), added, 60_000 + step);
  const fresh = await describeDir(dataset.dir);
  dataset.files = fresh.files;
  dataset.bytes = fresh.bytes;
  return { changedBytes: changed, addedBytes: added, paths: [shard, addedPath] };
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 2 ** 20 })) {
    hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}

/** Every file under `dir` with its size and SHA-256, skipping `skip` (relative top-level names). */
export async function describeDir(dir: string, skip: string[] = []): Promise<Dataset> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const paths = entries
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)).split(sep).join('/'))
    .filter((p) => !skip.some((s) => p === s || p.startsWith(`${s}/`)))
    .sort();
  const files = new Map<string, FileFacts>();
  let bytes = 0;
  // Two files at a time: SHA-256 runs at ~1.5 GB/s a core, so this keeps both cores busy.
  let next = 0;
  const worker = async () => {
    while (next < paths.length) {
      const path = paths[next++] as string;
      const abs = join(dir, path);
      const [info, sha256] = await Promise.all([stat(abs), sha256File(abs)]);
      files.set(path, { size: info.size, sha256 });
      bytes += info.size;
    }
  };
  await Promise.all([worker(), worker()]);
  return { dir, files: new Map([...files].sort(([a], [b]) => (a < b ? -1 : 1))), bytes };
}

/** Differences between what a tool left in `dir` and the expected files; empty when right. */
export async function checkTree(
  dir: string,
  expected: Map<string, FileFacts>,
  skip: string[] = [],
): Promise<string[]> {
  const actual = await describeDir(dir, skip).catch(() => undefined);
  if (actual === undefined) return [`${dir} is missing`];
  const problems: string[] = [];
  for (const [path, want] of expected) {
    const got = actual.files.get(path);
    if (got === undefined) problems.push(`missing ${path}`);
    else if (got.size !== want.size) problems.push(`${path}: ${got.size} bytes, want ${want.size}`);
    else if (want.sha256 !== '' && got.sha256 !== want.sha256)
      problems.push(`${path}: wrong bytes`);
  }
  for (const path of actual.files.keys()) {
    if (!expected.has(path)) problems.push(`unexpected ${path}`);
  }
  return problems;
}
