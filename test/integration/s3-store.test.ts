import { once } from 'node:events';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { openSource, type SourceOptions } from '@ferry/adapters';
import { gcRemote, listRefs, publish, pull, unpublish } from '@ferry/engine';
import { createManifest, encodeManifest, parseManifest, versionIdOf } from '@ferry/manifest';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  differingFiles,
  makeTempDir,
  randomBytes,
  S3RVER_CREDENTIALS,
  type S3Server,
  startS3Server,
  type TempDir,
  totalSize,
  writeTwoModels,
} from '#fixtures';

const MiB = 1024 * 1024;
const partSize = 2 * MiB;

let s3: S3Server;
let tmp: TempDir;
let options: SourceOptions;
let bucketCount = 0;

beforeAll(async () => {
  s3 = await startS3Server();
  options = { endpoint: s3.endpoint, region: 'us-east-1', credentials: { ...S3RVER_CREDENTIALS } };
});
afterAll(() => s3.close());
beforeEach(async () => {
  tmp = await makeTempDir('s3-store');
  return () => tmp.remove();
});

async function newBucket(): Promise<string> {
  const name = `store-${++bucketCount}`;
  await s3.createBucket(name);
  return name;
}

async function keys(uri: string, prefix = ''): Promise<string[]> {
  const source = openSource(uri, options);
  try {
    const out: string[] = [];
    for await (const object of source.list(prefix)) out.push(object.key);
    return out.sort();
  } finally {
    await source.close();
  }
}

/** Two models sharing an 8 MiB shard (4 parts) and their config. */
const twoModels = () =>
  writeTwoModels([join(tmp.path, 'a'), join(tmp.path, 'b')], {
    shards: [8 * MiB, 4 * MiB],
    seeds: [1, 70],
  });

describe('a bucket as the store of its models (s3rver)', () => {
  it('stores a shard two models share once, uploads it once, and each model pulls byte-exact', async () => {
    const bucket = await newBucket();
    const { a, b } = await twoModels();
    const first = await publish({
      dir: join(tmp.path, 'a'),
      dest: `s3://${bucket}/llama-a`,
      ref: 'v1',
      partSize,
      sourceOptions: options,
    });
    expect(first.store).toBe(`s3://${bucket}`);
    const second = await publish({
      dir: join(tmp.path, 'b'),
      dest: `s3://${bucket}/llama-b`,
      ref: 'v1',
      partSize,
      sourceOptions: options,
    });
    const config = a.get('config.json')?.length ?? 0;
    expect(second.uploadedBytes).toBe(totalSize(b) - 8 * MiB - config);
    expect(second.uploadedParts).toBe(3); // the tokenizer and shard 2's two parts

    const all = await keys(`s3://${bucket}`);
    expect(all.filter((k) => k.startsWith('.ferry/store/parts/'))).toHaveLength(4 + 1 + 2 * 3);
    expect(all.filter((k) => !k.startsWith('.ferry/store/parts/'))).toEqual([
      '.ferry/store/info.json',
      '.ferry/store/prefixes/llama-a',
      '.ferry/store/prefixes/llama-b',
      `llama-a/.ferry/manifests/${first.versionId}.json`,
      'llama-a/.ferry/refs/v1',
      `llama-b/.ferry/manifests/${second.versionId}.json`,
      'llama-b/.ferry/refs/v1',
    ]);
    expect(await listRefs({ source: `s3://${bucket}/llama-b`, sourceOptions: options })).toEqual([
      expect.objectContaining({ ref: 'v1', layout: 'store', store: `s3://${bucket}` }),
    ]);
    for (const [model, files] of [
      ['llama-a', a],
      ['llama-b', b],
    ] as const) {
      const result = await pull({
        source: `s3://${bucket}/${model}`,
        ref: 'v1',
        root: join(tmp.path, 'cache'),
        sourceOptions: options,
      });
      expect(await differingFiles(result.dir, files)).toEqual([]);
    }
  });

  it('gc --remote after one model drops its ref removes only what it alone needed; the other still pulls', async () => {
    const bucket = await newBucket();
    const { a, b } = await twoModels();
    for (const model of ['a', 'b']) {
      await publish({
        dir: join(tmp.path, model),
        dest: `s3://${bucket}/llama-${model}`,
        ref: 'v1',
        partSize,
        sourceOptions: options,
      });
    }
    await unpublish({ source: `s3://${bucket}/llama-a`, ref: 'v1', sourceOptions: options });
    // With the default grace period the dropped version keeps everything for a day.
    expect(
      await gcRemote({ source: `s3://${bucket}/llama-a`, sourceOptions: options }),
    ).toMatchObject({ removedParts: 0, removedManifests: 0 });
    const gc = await gcRemote({
      source: `s3://${bucket}/llama-a`,
      graceMs: 0,
      sourceOptions: options,
    });
    expect(gc).toMatchObject({
      refs: 1,
      prefixes: 2,
      stores: [`s3://${bucket}/llama-a`, `s3://${bucket}`],
      removedParts: 3,
      removedBytes: 4 * MiB + (a.get('tokenizer/tokenizer.json')?.length ?? 0),
      removedManifests: 1,
    });
    const result = await pull({
      source: `s3://${bucket}/llama-b`,
      ref: 'v1',
      root: join(tmp.path, 'cache'),
      sourceOptions: options,
    });
    expect(await differingFiles(result.dir, b)).toEqual([]);
  });

  it('a prefix published before stores (own parts, and files at paths) still pulls, and its next publish copies its parts into the bucket on the server', async () => {
    const bucket = await newBucket();
    const { a } = await twoModels();
    // llama-a as an older ferry left it in the bucket: its own .ferry/parts, and a v0 at paths.
    const local = join(tmp.path, 'older');
    const v1 = await publish({ dir: join(tmp.path, 'a'), dest: local, ref: 'v1', partSize });
    const paths = createManifest(
      parseManifest(await readFile(join(local, '.ferry', 'manifests', `${v1.versionId}.json`)))
        .entries,
    );
    await writeFile(
      join(local, '.ferry', 'manifests', `${versionIdOf(paths)}.json`),
      encodeManifest(paths),
    );
    await writeFile(join(local, '.ferry', 'refs', 'v0'), versionIdOf(paths));
    for (const entry of await readdir(local, { recursive: true, withFileTypes: true })) {
      if (!entry.isFile()) continue;
      const path = join(entry.parentPath, entry.name);
      await s3.putObject(bucket, `llama-a/${path.slice(local.length + 1)}`, await readFile(path));
    }
    for (const [path, bytes] of a) await s3.putObject(bucket, `llama-a/${path}`, bytes);
    const prefix = `s3://${bucket}/llama-a`;

    // v2: shard 2 changed in its second part.
    const shard = Buffer.from(a.get('model-00002.safetensors') as Buffer);
    randomBytes(MiB, 3).copy(shard, 3 * MiB);
    await writeFile(join(tmp.path, 'a', 'model-00002.safetensors'), shard);
    const v2files = new Map(a).set('model-00002.safetensors', shard);
    const v2 = await publish({
      dir: join(tmp.path, 'a'),
      dest: prefix,
      ref: 'v2',
      partSize,
      sourceOptions: options,
    });
    expect(v2).toMatchObject({ store: `s3://${bucket}`, uploadedParts: 1, copiedParts: 7 });
    expect(v2.uploadedBytes).toBe(2 * MiB);
    expect(v2.copiedBytes).toBe(totalSize(a) - 2 * MiB);
    for (const [ref, files] of [
      ['v0', a],
      ['v1', a],
      ['v2', v2files],
    ] as const) {
      const result = await pull({
        source: prefix,
        ref,
        root: join(tmp.path, `cache-${ref}`),
        sourceOptions: options,
      });
      expect(await differingFiles(result.dir, files)).toEqual([]);
    }
    expect(
      (await listRefs({ source: prefix, sourceOptions: options })).map((r) => [r.ref, r.layout]),
    ).toEqual([
      ['v0', 'paths'],
      ['v1', 'parts'],
      ['v2', 'store'],
    ]);
  });

  it('where an IAM policy keeps a team out of the bucket root, the prefix keeps its own parts, with a warning', async () => {
    const bucket = await newBucket();
    const { a } = await twoModels();
    // In front of s3rver, what a policy scoped to team-a/ does: objects and listings under
    // it only, 403 AccessDenied anywhere else.
    const proxy = await denyingProxy(s3.endpoint, (_method, path) => {
      const url = new URL(path, 'http://x');
      if (url.pathname === `/${bucket}/` && url.searchParams.has('list-type')) {
        return !(url.searchParams.get('prefix') ?? '').startsWith('team-a/');
      }
      return !url.pathname.startsWith(`/${bucket}/team-a/`);
    });
    try {
      const scoped = { ...options, endpoint: proxy.url };
      const warnings: string[] = [];
      const result = await publish({
        dir: join(tmp.path, 'a'),
        dest: `s3://${bucket}/team-a/llama`,
        ref: 'v1',
        partSize,
        sourceOptions: scoped,
        onEvent: (e) => {
          if (e.type === 'warning') warnings.push(e.message);
        },
      });
      expect(warnings).toEqual([
        expect.stringMatching(
          new RegExp(
            `^cannot write the store s3://${bucket} \\(Access denied.*the parts stay under s3://${bucket}/team-a/llama`,
          ),
        ),
      ]);
      expect(result.store).toBe(`s3://${bucket}/team-a/llama`);
      expect(await keys(`s3://${bucket}`, '.ferry/')).toEqual([]);
      const pulled = await pull({
        source: `s3://${bucket}/team-a/llama`,
        ref: 'v1',
        root: join(tmp.path, 'cache'),
        sourceOptions: scoped,
      });
      expect(await differingFiles(pulled.dir, a)).toEqual([]);
      // The team's gc reads what it may: its prefix, not the bucket root.
      expect(
        await gcRemote({
          source: `s3://${bucket}/team-a/llama`,
          graceMs: 0,
          sourceOptions: scoped,
        }),
      ).toMatchObject({ stores: [`s3://${bucket}/team-a/llama`], removedParts: 0 });
      // Naming a store one may not write is an error, not a quiet change of plan.
      await expect(
        publish({
          dir: join(tmp.path, 'a'),
          dest: `s3://${bucket}/team-a/llama`,
          store: `s3://${bucket}`,
          ref: 'v2',
          partSize,
          sourceOptions: scoped,
        }),
      ).rejects.toMatchObject({ code: 'FERRY_ACCESS_DENIED' });
    } finally {
      await proxy.close();
    }
  });
});

/**
 * An HTTP proxy to `endpoint` that answers 403 AccessDenied, as S3 does under a policy,
 * to every request `denied` picks (method, path with query), and forwards the others.
 */
async function denyingProxy(
  endpoint: string,
  denied: (method: string, path: string) => boolean,
): Promise<{ url: string; close(): Promise<void> }> {
  const target = new URL(endpoint);
  const server = createServer((req, res) => {
    const path = req.url ?? '/';
    if (denied(req.method ?? 'GET', path)) {
      req.resume();
      res.writeHead(403, { 'content-type': 'application/xml', 'x-amz-request-id': 'denied' });
      res.end(
        req.method === 'HEAD'
          ? undefined
          : '<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>',
      );
      return;
    }
    const upstream = request(
      { host: target.hostname, port: target.port, method: req.method, path, headers: req.headers },
      (response) => {
        res.writeHead(response.statusCode ?? 502, response.headers);
        response.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}
