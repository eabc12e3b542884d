import { execFileSync } from 'node:child_process';
import { chmod, readFile, readlink, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type PullResult, publish } from '@ferry/engine';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  differingFiles,
  makeTempDir,
  randomBytes,
  selfSignedCert,
  startFaultServer,
  type TempDir,
  treeSnapshot,
  writeModel,
} from '#fixtures';
import { cleanEnv, doneResult, jsonLines, runFerry } from './ferry-process.js';

const MiB = 1024 * 1024;
let tmp: TempDir;
let env: Record<string, string>;
let model: string;
let store: string;

beforeEach(async () => {
  tmp = await makeTempDir('e2e-production');
  // Readable by the unprivileged user the read-only case runs as.
  await chmod(tmp.path, 0o755);
  env = cleanEnv(tmp.path);
  model = join(tmp.path, 'model');
  store = join(tmp.path, 'store', 'm');
  await writeModel(model, { shards: [3 * MiB], smallFiles: 3 });
  // In this process: what these tests run as `ferry` is pulling, and a spawn costs a second.
  await publish({ dir: model, dest: store, ref: 'v1' });
});
afterEach(async () => {
  execFileSync('chmod', ['-R', 'u+w', tmp.path]);
  await tmp.remove();
});

describe('a baked cache on a read-only root', () => {
  it('pulls, reports and verifies without writing anything, and says so when it would have to', async () => {
    const cache = join(tmp.path, 'cache');
    expect((await runFerry(['bake', `${store}@v1`, '--to', cache], { env })).code).toBe(0);
    execFileSync('chmod', ['-R', 'a-w', cache]);
    const before = await treeSnapshot(cache);
    const nobody = { env, asNobody: true };

    const warm = await runFerry(['pull', `${store}@v1`, '--to', cache, '--json'], nobody);
    expect(warm.stderr).toBe('');
    expect(doneResult<PullResult>(warm.stdout)).toMatchObject({ fetchedBytes: 0 });
    for (const args of [
      ['status', cache],
      ['verify', cache],
      ['verify', cache, '--deep'],
      ['pull', `${store}@v1`, '--to', cache, '--dry-run'],
    ]) {
      const run = await runFerry(args, nobody);
      expect(run.code, `${args.join(' ')}: ${run.stderr}`).toBe(0);
    }
    expect(await treeSnapshot(cache)).toEqual(before);

    await writeFile(join(model, 'model-00001.safetensors'), randomBytes(3 * MiB, 5));
    await publish({ dir: model, dest: store, ref: 'v2' });
    const change = await runFerry(['pull', `${store}@v2`, '--to', cache, '--json'], nobody);
    expect(change.code).toBe(1);
    expect(jsonLines(change.stdout).at(-1)).toMatchObject({
      type: 'error',
      code: 'FERRY_READ_ONLY',
      message: `${cache} is read-only, and this pull would change 1 file there`,
    });
    expect(await treeSnapshot(cache)).toEqual(before);
  });
});

describe('switching versions', () => {
  it('shows each version whole through the folder, keeps the one before and switches back offline', async () => {
    const cache = join(tmp.path, 'cache');
    expect((await runFerry(['pull', `${store}@v1`, '--to', cache], { env })).code).toBe(0);
    const v1 = await readlink(join(cache, 'm'));
    expect(v1).toMatch(/^\.ferry\/trees\/[0-9a-f]{16}$/);
    await writeFile(join(model, 'config.json'), '{"v":2}');
    await publish({ dir: model, dest: store, ref: 'v2' });
    const next = await runFerry(['pull', `${store}@v2`, '--to', cache, '--json'], { env });
    expect(doneResult<PullResult>(next.stdout)).toMatchObject({ fetchedBytes: 7 });
    expect(await readFile(join(cache, 'm', 'config.json'), 'utf8')).toBe('{"v":2}');
    expect(await readlink(join(cache, 'm'))).not.toBe(v1);

    const shown = await runFerry(['status', cache], { env });
    expect(shown.stdout).toMatch(/m also keeps the version it showed before, sha256:[0-9a-f]+/);
    const back = await runFerry(['pull', `${store}@v1`, '--to', cache, '--offline', '--json'], {
      env,
    });
    expect(back.code, back.stderr).toBe(0);
    expect(doneResult<PullResult>(back.stdout)).toMatchObject({ fetchedBytes: 0, requests: 0 });
    expect(await readlink(join(cache, 'm'))).toBe(v1);
    expect((await runFerry(['verify', cache], { env })).code).toBe(0);
  });
});

describe('an HTTPS origin', () => {
  it('is pulled through ferry’s own client and through node:https alike, trusting NODE_EXTRA_CA_CERTS', async () => {
    const files = await writeModel(model, { shards: [3 * MiB], smallFiles: 3 });
    await publish({ dir: model, dest: store, ref: 'v2' });
    const tls = await selfSignedCert(tmp.path);
    const server = await startFaultServer({ root: store, tls });
    try {
      for (const nodeHttp of [{}, { FERRY_NODE_HTTP: '1' }]) {
        const cache = join(tmp.path, `cache-${Object.keys(nodeHttp).length}`);
        const run = await runFerry(['pull', `${server.url}/@v2`, '--to', cache, '--json'], {
          env: { ...env, NODE_EXTRA_CA_CERTS: tls.certPath, ...nodeHttp },
        });
        expect(run.code, run.stderr).toBe(0);
        const result = doneResult<PullResult>(run.stdout);
        expect(result.fetchedBytes).toBeGreaterThan(3 * MiB);
        expect(await differingFiles(result.dir, files)).toEqual([]);
      }
      expect(server.requests.length).toBeGreaterThan(0);
    } finally {
      await server.close();
    }
  });

  it('named https:// on a port that speaks plain HTTP fails at once, naming the right URL', async () => {
    const server = await startFaultServer({ root: store });
    try {
      const https = server.url.replace(/^http:/, 'https:');
      const run = await runFerry(['pull', `${https}/@v1`, '--to', join(tmp.path, 'c')], { env });
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(
        new RegExp(
          `^ferry: ${https.replaceAll('.', '\\.')} does not speak TLS \\((EPROTO|ERR_SSL_WRONG_VERSION_NUMBER)\\)`,
        ),
      );
      expect(run.stderr).toContain(
        `hint: The port answers in plain HTTP: use ${server.url} in the source URI.`,
      );
      expect(run.stderr).not.toContain('attempts');
    } finally {
      await server.close();
    }
  });

  it('whose certificate is not trusted fails at once, saying how to trust it', async () => {
    const tls = await selfSignedCert(tmp.path);
    const server = await startFaultServer({ root: store, tls });
    try {
      const run = await runFerry(['pull', `${server.url}/@v1`, '--to', join(tmp.path, 'c')], {
        env,
      });
      // FERRY_BAD_SOURCE: the source as named cannot be used (exit 2, like a bad scheme).
      expect(run.code).toBe(2);
      expect(run.stderr).toContain(
        `The TLS certificate of ${server.url} is not trusted (DEPTH_ZERO_SELF_SIGNED_CERT)`,
      );
      expect(run.stderr).toContain('NODE_EXTRA_CA_CERTS=/path/to/ca.pem');
      expect(run.stderr).not.toContain('attempts');
      expect(server.requests).toEqual([]);
    } finally {
      await server.close();
    }
  });
});

describe('starting without the store', () => {
  it('serves the held version offline, falls back with a warning when the store is down, and names what is missing', async () => {
    const server = await startFaultServer({ root: store });
    const source = `${server.url}/`;
    const cache = join(tmp.path, 'cache');
    const first = await runFerry(['pull', `${source}@v1`, '--to', cache, '--json'], { env });
    const versionId = doneResult<PullResult>(first.stdout).versionId;
    await server.close();

    const offline = await runFerry(['pull', `${source}@v1`, '--to', cache, '--offline', '--json'], {
      env,
    });
    expect(doneResult<PullResult>(offline.stdout)).toMatchObject({ fetchedBytes: 0, requests: 0 });
    const pinned = await runFerry(['pull', `${source}@${versionId}`, '--to', cache, '--json'], {
      env,
    });
    expect(doneResult<PullResult>(pinned.stdout)).toMatchObject({ requests: 0 });
    const missing = await runFerry(['pull', `${source}@v2`, '--to', cache, '--offline'], { env });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`offline: this cache holds no version of ${source} for v2`);

    // The store is down: each run retries its first request, 1 ms backoffs instead of ~3 s.
    const down = { env: { ...env, FERRY_RETRY_BASE_MS: '1' } };
    const fallback = await runFerry(['pull', `${source}@v1`, '--to', cache], down);
    expect(fallback.code).toBe(0);
    expect(fallback.stderr).toMatch(
      /^ferry: warning: .* cannot be reached .*; serving the version this cache holds for v1, sha256:/,
    );
    const strict = await runFerry(['pull', `${source}@v1`, '--to', cache, '--no-fallback'], down);
    expect(strict.code).toBe(1);
  });

  it('a dry run into a new root creates nothing and lists each file', async () => {
    const fresh = join(tmp.path, 'fresh');
    const run = await runFerry(['pull', `${store}@v1`, '--to', fresh, '--dry-run'], { env });
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^ {2}fetch {3}model-00001\.safetensors {2}3\.00 MiB$/m);
    await expect(stat(fresh)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
