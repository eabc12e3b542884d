import { mkdir, readdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { openSource, type Source } from '@ferry/adapters';
import { createManifest, encodeManifest, parseManifest, versionIdOf } from '@ferry/manifest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  differingFiles,
  makeTempDir,
  randomBytes,
  startHttpServer,
  type TempDir,
  totalSize,
  writeModel,
  writeTwoModels,
} from '#fixtures';
import { publish } from './publish.js';
import { pull } from './pull.js';
import { gcRemote, listRefs, unpublish } from './remote-admin.js';

const MiB = 1024 * 1024;
const DAY = 24 * 60 * 60 * 1000;
let tmp: TempDir;
let store: string;

beforeEach(async () => {
  tmp = await makeTempDir('shared-store');
  store = join(tmp.path, 'models');
});
afterEach(() => tmp.remove());

/**
 * Two models sharing their first shard (3 parts of 1 MiB) and config, each with a second
 * shard (2 parts) and a tokenizer of its own.
 */
const twoModels = () =>
  writeTwoModels([join(tmp.path, 'llama-a'), join(tmp.path, 'llama-b')], {
    shards: [3 * MiB, 2 * MiB],
    seeds: [1, 50],
  });

/** Every file under `dir` (relative, sorted). */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

const storeParts = () => filesUnder(join(store, '.ferry', 'store', 'parts'));

/** Makes every object of the store look `ageMs` old. */
async function age(ageMs: number): Promise<void> {
  const then = new Date(Date.now() - ageMs);
  for (const file of await filesUnder(store)) await utimes(join(store, file), then, then);
}

async function manifestOf(prefix: string, ref: string) {
  const id = (await readFile(join(prefix, '.ferry', 'refs', ref), 'utf8')).trim();
  return parseManifest(await readFile(join(prefix, '.ferry', 'manifests', `${id}.json`)));
}

describe('a store shared by models', () => {
  it('keeps content two models share once; each pulls byte-exact from a path and over HTTP', async () => {
    const { a, b } = await twoModels();
    const first = await publish({
      dir: join(tmp.path, 'llama-a'),
      dest: join(store, 'llama-a'),
      store,
      ref: 'v1',
      partSize: MiB,
    });
    expect(first.store).toBe(pathToFileURL(store).href);
    expect(first.uploadedBytes).toBe(totalSize(a));
    // The second model names no store: the first publish marked one above it.
    const events: string[] = [];
    const second = await publish({
      dir: join(tmp.path, 'llama-b'),
      dest: join(store, 'llama-b'),
      ref: 'v1',
      partSize: MiB,
      onEvent: (e) => {
        if (e.type === 'store') events.push(`${e.uri} ${e.shared}`);
      },
    });
    expect(events).toEqual([`${pathToFileURL(store).href} true`]);
    const shared = 3 * MiB + (a.get('config.json')?.length ?? 0);
    expect(second.uploadedBytes).toBe(totalSize(b) - shared);
    expect(second.uploadedParts).toBe(3); // tokenizer, 2 parts of shard 2, nothing of shard 1
    // 3 shared shard parts + config, and per model 2 shard parts + a tokenizer.
    expect(await storeParts()).toHaveLength(4 + 2 * 3);
    expect(await filesUnder(join(store, 'llama-a', '.ferry', 'parts'))).toEqual([]);
    expect((await manifestOf(join(store, 'llama-b'), 'v1')).store).toBe('../');
    expect(await filesUnder(join(store, '.ferry', 'store', 'prefixes'))).toEqual([
      'llama-a',
      'llama-b',
    ]);
    expect(await listRefs({ source: join(store, 'llama-b') })).toMatchObject([
      { ref: 'v1', layout: 'store', store: pathToFileURL(store).href },
    ]);

    const fromPath = await pull({
      source: join(store, 'llama-a'),
      ref: 'v1',
      root: join(tmp.path, 'c1'),
    });
    expect(await differingFiles(fromPath.dir, a)).toEqual([]);
    const server = await startHttpServer({ root: tmp.path });
    try {
      const overHttp = await pull({
        source: `${server.url}/models/llama-b`,
        ref: 'v1',
        root: join(tmp.path, 'c2'),
      });
      expect(await differingFiles(overHttp.dir, b)).toEqual([]);
      const partRequests = server.requests.filter((r) => r.url.includes('/.ferry/'));
      expect(
        partRequests.every((r) =>
          /^\/models\/(\.ferry\/store\/parts|llama-b\/\.ferry\/(refs|manifests))\//.test(r.url),
        ),
      ).toBe(true);
    } finally {
      await server.close();
    }
    // An origin serving only the prefix cannot reach the store around it, and says so.
    const prefixOnly = await startHttpServer({ root: join(store, 'llama-b') });
    try {
      await expect(
        pull({ source: prefixOnly.url, ref: 'v1', root: join(tmp.path, 'c3') }),
      ).rejects.toMatchObject({
        code: 'FERRY_NOT_FOUND',
        message: expect.stringContaining('has no such parent'),
      });
    } finally {
      await prefixOnly.close();
    }
  });

  it('gc --remote of one model accounts for every model of the store: what only a dropped ref needed goes, the other model still pulls', async () => {
    const { a, b } = await twoModels();
    await publish({
      dir: join(tmp.path, 'llama-a'),
      dest: join(store, 'llama-a'),
      store,
      ref: 'v1',
      partSize: MiB,
    });
    await publish({
      dir: join(tmp.path, 'llama-b'),
      dest: join(store, 'llama-b'),
      ref: 'v1',
      partSize: MiB,
    });
    const before = await storeParts();
    // Long published, just unpublished: for the grace period after the drop, llama-a@v1
    // still holds everything it needs.
    await age(2 * DAY);
    await unpublish({ source: join(store, 'llama-a'), ref: 'v1' });
    expect(await gcRemote({ source: join(store, 'llama-a') })).toMatchObject({
      removedParts: 0,
      removedManifests: 0,
    });

    // A day later nothing holds llama-a@v1: its own shard 2 and tokenizer go, the shard it
    // shares with llama-b stays (llama-b's ref needs it), whichever prefix gc is run on.
    await age(2 * DAY);
    const gc = await gcRemote({ source: join(store, 'llama-a') });
    expect(gc).toMatchObject({
      prefixes: 2,
      refs: 1,
      stores: [pathToFileURL(join(store, 'llama-a')).href, pathToFileURL(store).href],
      removedParts: 3,
      removedBytes: 2 * MiB + (a.get('tokenizer/tokenizer.json')?.length ?? 0),
      removedManifests: 1,
    });
    expect(await storeParts()).toHaveLength(before.length - 3);
    // The drop record has done its work once the grace period is over.
    expect(await filesUnder(join(store, 'llama-a', '.ferry', 'dropped'))).toEqual([]);
    expect(await gcRemote({ source: store })).toMatchObject({
      removedParts: 0,
      removedManifests: 0,
    });
    const result = await pull({
      source: join(store, 'llama-b'),
      ref: 'v1',
      root: join(tmp.path, 'c'),
    });
    expect(await differingFiles(result.dir, b)).toEqual([]);
    await expect(
      pull({ source: join(store, 'llama-a'), ref: 'v1', root: join(tmp.path, 'd') }),
    ).rejects.toMatchObject({ code: 'FERRY_NOT_FOUND' });
  });

  it("a publish that reuses another model's parts keeps them when that model's ref is dropped and a gc runs before its manifest is written", async () => {
    const { a, b } = await twoModels();
    await publish({
      dir: join(tmp.path, 'llama-a'),
      dest: join(store, 'llama-a'),
      store,
      ref: 'v1',
      partSize: MiB,
    });
    // Everything is old: llama-b may reuse the shared shard only because llama-a@v1 needs it.
    await age(2 * DAY);
    let gc: Awaited<ReturnType<typeof gcRemote>> | undefined;
    const dest = pausedBeforeManifest(openSource(join(store, 'llama-b')), async () => {
      // Between llama-b's part uploads and its manifest: llama-a drops the ref that made
      // the shared parts reusable, and a gc runs to the end.
      await unpublish({ source: join(store, 'llama-a'), ref: 'v1' });
      gc = await gcRemote({ source: join(store, 'llama-a') });
    });
    const published = await publish({
      dir: join(tmp.path, 'llama-b'),
      dest,
      ref: 'v1',
      partSize: MiB,
    });
    expect(gc).toMatchObject({ removedParts: 0 });
    // Nothing had to go up again after the manifest: the shared parts never vanished.
    expect(published.uploadedBytes).toBe(
      totalSize(b) - 3 * MiB - (a.get('config.json')?.length ?? 0),
    );
    const result = await pull({
      source: join(store, 'llama-b'),
      ref: 'v1',
      root: join(tmp.path, 'c'),
    });
    expect(await differingFiles(result.dir, b)).toEqual([]);
  });

  it('prefixes from before stores still pull, and a publish moves one into the store: its parts are copied, not uploaded', async () => {
    const { a, b } = await twoModels();
    const prefixA = join(store, 'llama-a');
    // llama-a as an older ferry left it: its own .ferry/parts (no store marked yet) ...
    const old = await publish({
      dir: join(tmp.path, 'llama-a'),
      dest: prefixA,
      ref: 'v1',
      partSize: MiB,
    });
    expect(old.store).toBe(pathToFileURL(prefixA).href);
    expect((await manifestOf(prefixA, 'v1')).store).toBeUndefined();
    // ... plus a version with its files at their paths (before content addressing).
    const paths = createManifest((await manifestOf(prefixA, 'v1')).entries);
    const pathsId = versionIdOf(paths);
    await writeFile(join(prefixA, '.ferry', 'manifests', `${pathsId}.json`), encodeManifest(paths));
    await writeFile(join(prefixA, '.ferry', 'refs', 'v0'), pathsId);
    for (const [path, bytes] of a) {
      await mkdir(dirname(join(prefixA, path)), { recursive: true });
      await writeFile(join(prefixA, path), bytes);
    }
    // Another team marks the folder above as a store.
    await publish({
      dir: join(tmp.path, 'llama-b'),
      dest: join(store, 'llama-b'),
      store,
      ref: 'v1',
      partSize: MiB,
    });
    // llama-a v2: shard 2 changed. The store lacks shard 2's other part and the tokenizer,
    // which llama-a holds itself: copied inside the store, not uploaded.
    const changed = Buffer.from(a.get('model-00002.safetensors') as Buffer);
    randomBytes(MiB, 9).copy(changed, MiB);
    await writeFile(join(tmp.path, 'llama-a', 'model-00002.safetensors'), changed);
    const v2files = new Map(a).set('model-00002.safetensors', changed);
    const v2 = await publish({
      dir: join(tmp.path, 'llama-a'),
      dest: prefixA,
      ref: 'v2',
      partSize: MiB,
    });
    expect(v2.store).toBe(pathToFileURL(store).href);
    expect(v2).toMatchObject({ uploadedBytes: MiB, uploadedParts: 1, copiedParts: 2 });
    expect(v2.copiedBytes).toBe(MiB + (a.get('tokenizer/tokenizer.json')?.length ?? 0));
    expect((await manifestOf(prefixA, 'v2')).store).toBe('../');
    for (const [ref, files] of [
      ['v0', a],
      ['v1', a],
      ['v2', v2files],
    ] as const) {
      const result = await pull({ source: prefixA, ref, root: join(tmp.path, `c-${ref}`) });
      expect(await differingFiles(result.dir, files)).toEqual([]);
    }
    // Once v1 is dropped and the grace period is over, the prefix's own parts go; the paths
    // layout's files are never touched.
    await unpublish({ source: prefixA, ref: 'v1' });
    await age(2 * DAY);
    const gc = await gcRemote({ source: prefixA });
    // v1's own parts: shard 1 (3), shard 2 (2), tokenizer, config.
    expect(gc.removedParts).toBe(7);
    expect(await filesUnder(join(prefixA, '.ferry', 'parts'))).toEqual([]);
    expect(await differingFiles(prefixA, a)).toEqual([]);
    const again = await pull({ source: prefixA, ref: 'v2', root: join(tmp.path, 'c-again') });
    expect(await differingFiles(again.dir, v2files)).toEqual([]);
    const other = await pull({
      source: join(store, 'llama-b'),
      ref: 'v1',
      root: join(tmp.path, 'c-b'),
    });
    expect(await differingFiles(other.dir, b)).toEqual([]);
  });

  it('refuses a store that is not the destination or above it', async () => {
    await writeModel(join(tmp.path, 'm'), { shards: [MiB] });
    await expect(
      publish({
        dir: join(tmp.path, 'm'),
        dest: join(store, 'a'),
        store: join(tmp.path, 'elsewhere'),
        ref: 'v1',
      }),
    ).rejects.toMatchObject({ code: 'FERRY_USAGE', message: expect.stringContaining('is not') });
  });
});

/** `source`, whose first manifest write waits for `meanwhile` to finish. */
function pausedBeforeManifest(source: Source, meanwhile: () => Promise<void>): Source {
  let paused = false;
  return new Proxy(source, {
    get(target, property) {
      if (property === 'writeText') {
        return async (key: string, text: string, options?: { signal?: AbortSignal }) => {
          if (!paused && key.startsWith('.ferry/manifests/')) {
            paused = true;
            await meanwhile();
          }
          return target.writeText(key, text, options);
        };
      }
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
