import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { publish } from '@ferry/engine';
import { parseDigest, parseManifest } from '@ferry/manifest';
import { type FaultServer, startFaultServer } from '../../test/fixtures/index.js';
import type { Dataset } from './dataset.js';
import type { Origin } from './origin.js';
import { PublishedObjects } from './published-objects.js';

/** The ref the fault origin's datasets are published under, and pulled at (`…/<prefix>@latest`). */
export const FAULT_REF = 'latest';

/** Where ferry's request for one part of a published file goes: what a fault matches. */
export interface PartRequest {
  /** The object's key below the server's root (`<prefix>/…`), as the fault server matches it. */
  key: string;
  /** An offset of that object inside the part: the request for the part covers it. */
  covers: number;
}

/** A loopback HTTP origin that breaks on request: the test fixtures' fault server. */
export interface FaultOrigin {
  origin: Origin;
  /** Where faults are queued (`inject`), and whether they were all used (`pending`). */
  server: FaultServer;
  /**
   * The request ferry sends for part `part` of `path` in the version published at `prefix`,
   * read from that version's manifest: the file's own object at the part's offset, or, in
   * the `parts` layout, the part's own object (`.ferry/parts/<algorithm>/<hex>`) at 0.
   */
  partRequest(prefix: string, path: string, part: number): Promise<PartRequest>;
}

/**
 * The test suite's fault-injecting file server (`test/fixtures/fault-server.ts`) on
 * 127.0.0.1, serving datasets published with `ferry publish` to folders under
 * `<workDir>/http-faults/<prefix>`; ferry pulls `http://127.0.0.1:<port>/<prefix>@latest`.
 * It runs in the runner's own process. No byte meter: bytes and requests are ferry's own
 * counts.
 */
export async function startFaultOrigin(workDir: string): Promise<FaultOrigin> {
  const root = join(workDir, 'http-faults');
  await mkdir(root, { recursive: true });
  const server = await startFaultServer({ root });
  const objects = new PublishedObjects();
  const origin: Origin = {
    name: 'http-faults',
    describe: `fault-injecting HTTP server (test fixtures) at ${server.url}, ferry via http://…@${FAULT_REF}`,
    ferryUri: (prefix) => `${server.url}/${prefix}@${FAULT_REF}`,
    env: {},
    writable: true,
    async publish(dataset: Dataset, prefix: string) {
      await publish({ dir: dataset.dir, dest: join(root, prefix), ref: FAULT_REF });
      objects.record(dataset, prefix);
    },
    objects: async (prefix) => objects.get(prefix),
    httpBase: (prefix) => `${server.url}/${prefix}`,
    counters: async () => undefined,
    close: () => server.close(),
  };
  async function partRequest(prefix: string, path: string, part: number): Promise<PartRequest> {
    const meta = join(root, prefix, '.ferry');
    const id = (await readFile(join(meta, 'refs', FAULT_REF), 'utf8')).trim();
    const manifest = parseManifest(await readFile(join(meta, 'manifests', `${id}.json`)));
    const entry = manifest.entries.find((e) => e.path === path);
    if (entry === undefined) throw new Error(`${prefix}@${FAULT_REF} has no ${path}`);
    const partSize = entry.parts?.size ?? entry.size;
    if (manifest.layout === 'parts') {
      const digest = entry.parts?.digests[part];
      if (digest === undefined) throw new Error(`${path} has no part ${part}`);
      const { algorithm, hex } = parseDigest(digest);
      return { key: `${prefix}/.ferry/parts/${algorithm}/${hex}`, covers: 0 };
    }
    return { key: `${prefix}/${path}`, covers: part * partSize };
  }
  return { origin, server, partRequest };
}
