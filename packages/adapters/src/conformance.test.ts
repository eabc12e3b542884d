import { mkdir, readdir, readlink, realpath, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { expect } from 'vitest';
import {
  makeTempDir,
  S3RVER_CREDENTIALS,
  startFaultServer,
  startS3Server,
  startTcpProxy,
} from '#fixtures';
import { openSource } from './open-source.js';
import { describeSourceConformance } from './test-conformance.js';

async function writeTree(root: string, files: ReadonlyMap<string, Uint8Array>): Promise<void> {
  for (const [key, body] of files) await replaceFile(join(root, ...key.split('/')), body);
}

/** Writes a new file and renames it into place, as a publisher would: a new version. */
async function replaceFile(path: string, body: Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(`${path}.tmp`, body);
  await rename(`${path}.tmp`, path);
}

describeSourceConformance('local directory', async (files) => {
  const dir = await makeTempDir('conf-local');
  await writeTree(dir.path, files);
  const source = openSource(dir.path);
  return {
    source,
    replace: (key, body) => replaceFile(join(dir.path, ...key.split('/')), body),
    watchRelease: () => async () => {
      // The fs stream closed its descriptor before emitting 'close'; none may point at the file.
      const target = await realpath(join(dir.path, 'big.bin'));
      const fds = await readdir('/proc/self/fd');
      const links = await Promise.all(
        fds.map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')),
      );
      expect(links).not.toContain(target);
    },
    async close() {
      await source.close();
      await dir.remove();
    },
  };
});

describeSourceConformance('HTTP', async (files) => {
  const dir = await makeTempDir('conf-http');
  await writeTree(dir.path, files);
  const server = await startFaultServer({ root: dir.path });
  const source = openSource(`${server.url}/`);
  return {
    source,
    replace: (key, body) => replaceFile(join(dir.path, ...key.split('/')), body),
    watchRelease: () => {
      const index = server.requests.length;
      // Hold the response open after 1 MiB, so that it cannot complete into socket
      // buffers before the abort, however large the kernel lets them grow.
      server.inject({ kind: 'stall', afterBytes: 1 << 20 }, { key: 'big.bin', method: 'GET' });
      return async () => {
        expect(server.requests[index]).toMatchObject({ method: 'GET', url: '/big.bin' });
        expect(await server.settled(index)).toBe('aborted');
      };
    },
    async close() {
      await source.close();
      await server.close();
      await dir.remove();
    },
  };
});

describeSourceConformance(
  'S3 (s3rver)',
  async (files) => {
    const server = await startS3Server();
    await server.createBucket('conformance');
    for (const [key, body] of files) await server.putObject('conformance', `root/${key}`, body);
    // Objects outside the root prefix must not show up.
    await server.putObject('conformance', 'rootless.txt', 'x');
    await server.putObject('conformance', 'root-sibling/x.txt', 'x');
    const proxy = await startTcpProxy({ target: server.endpoint });
    const listPageSize = 3;
    const source = openSource('s3://conformance/root', {
      endpoint: proxy.endpoint,
      region: 'us-east-1',
      credentials: S3RVER_CREDENTIALS,
      listPageSize,
    });
    return {
      source,
      listPageSize,
      replace: (key, body) => server.putObject('conformance', `root/${key}`, body),
      watchRelease: () => {
        const closed = proxy.closed;
        return () => proxy.waitForClosed(closed + 1);
      },
      async close() {
        await source.close();
        await proxy.close();
        await server.close();
      },
    };
  },
  { walkOrderDiffers: false, keepsCutUploads: true },
);
