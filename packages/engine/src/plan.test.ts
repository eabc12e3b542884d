import { lstat, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Digest } from '@ferry/manifest';
import { CacheIndex, type StatRecord } from '@ferry/manifest/store';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { makeTempDir, type TempDir } from '#fixtures';
import { cacheLayout } from './cache-layout.js';
import { type FilePlan, PLAN_CHUNK, planPull } from './plan.js';
import type { RemoteEntry } from './remote-version.js';

const D = (n: number): Digest => `sha256:${n.toString(16).padStart(64, '0')}`;
/** More than two chunks, so a chunk boundary falls inside the version. */
const FILES = 2 * PLAN_CHUNK + 452;
const path = (i: number) => `d${Math.floor(i / 100)}/f${i}`;
const body = (i: number) => `content of file ${i}\n`;

let tmp: TempDir;
let store: CacheIndex;

beforeEach(async () => {
  tmp = await makeTempDir('plan');
  store = await CacheIndex.open(cacheLayout(tmp.path).dbDir);
});
afterEach(async () => {
  await store.close();
  await tmp.remove();
});

/**
 * A version of FILES files in folder `m`, as a pull would have left it, except: every 7th
 * file is missing (its content also sits at `other/twin<i>`, recorded: a copy), and every
 * 11th of the rest was rewritten with other bytes since (a fetch that overwrites an edit).
 */
async function cacheWithVersion(): Promise<RemoteEntry[]> {
  const entries: RemoteEntry[] = Array.from({ length: FILES }, (_, i) => ({
    path: path(i),
    size: body(i).length,
    digest: D(i),
  }));
  const cached = async (i: number): Promise<[string, StatRecord]> => {
    const at = i % 7 === 0 ? `other/twin${i}` : `m/${path(i)}`;
    const file = join(tmp.path, at);
    await mkdir(join(file, '..'), { recursive: true });
    await writeFile(file, body(i));
    const st = await lstat(file);
    if (i % 7 !== 0 && i % 11 === 0) await writeFile(file, `${body(i)}edited`);
    return [at, { size: st.size, mtimeMs: st.mtimeMs, digest: D(i) }];
  };
  // A batch of files at a time: one by one, writing them took most of each test's time.
  const records: Array<[string, StatRecord]> = [];
  for (let start = 0; start < FILES; start += 64) {
    const batch = entries.slice(start, start + 64);
    records.push(...(await Promise.all(batch.map((_, k) => cached(start + k)))));
  }
  await store.putStats(records);
  return entries;
}

const plan = (entries: RemoteEntry[]) =>
  planPull({
    remote: { published: true, entries },
    sourceUri: 's3://b/m',
    layout: cacheLayout(tmp.path),
    subdir: 'm',
    store,
    verify: 'stat',
    partSize: 16 * 2 ** 20,
    algorithm: 'sha256',
    previous: undefined,
    pool: () => {
      throw new Error('a plan vouched for by the stat index starts no worker');
    },
  });

const shape = (p: FilePlan) => ({
  path: p.entry.path,
  relPath: p.relPath,
  kind: p.action.kind,
  ...(p.action.kind === 'copy' ? { from: p.action.fromRelPath } : {}),
  ...(p.action.kind === 'skip' ? { fresh: p.action.fresh } : {}),
  ...(p.overwritesEdit ? { edited: true } : {}),
});

describe('planPull on a large version', () => {
  it('decides every file as file by file would, reading stat records a chunk at a time', async () => {
    const entries = await cacheWithVersion();
    const batches = vi.spyOn(store, 'getStatsOf');
    const plans = await plan(entries);
    expect(plans.map(shape)).toEqual(
      entries.map((e, i) => ({
        path: e.path,
        relPath: `m/${e.path}`,
        ...(i % 7 === 0
          ? { kind: 'copy', from: `other/twin${i}` }
          : i % 11 === 0
            ? { kind: 'fetch', edited: true }
            : { kind: 'skip', fresh: false }),
      })),
    );
    expect(batches).toHaveBeenCalledTimes(Math.ceil(FILES / PLAN_CHUNK));
    for (const [paths] of batches.mock.calls) expect(paths.length).toBeLessThanOrEqual(PLAN_CHUNK);
  });

  it('reads no stat record beyond its own files when nothing is to be fetched', async () => {
    const entries = (await cacheWithVersion()).filter((_, i) => i % 7 !== 0 && i % 11 !== 0);
    const scans = vi.spyOn(store, 'getStats');
    const plans = await plan(entries);
    expect(plans.every((p) => p.action.kind === 'skip')).toBe(true);
    expect(scans).not.toHaveBeenCalled();
  });
});
