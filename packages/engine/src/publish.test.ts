import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { differingFiles, makeTempDir, type TempDir, writeModel } from '#fixtures';
import { publish } from './publish.js';
import { pull } from './pull.js';

const MiB = 1024 * 1024;
let tmp: TempDir;
beforeEach(async () => {
  tmp = await makeTempDir('publish');
});
afterEach(() => tmp.remove());

describe('publish', () => {
  it('uploads only what changed, and a republish of the same folder uploads nothing', async () => {
    const origin = join(tmp.path, 'origin');
    const dest = join(tmp.path, 'store');
    const files = await writeModel(origin, { shards: [2 * MiB], smallFiles: 3 });
    const first = await publish({ dir: origin, dest, ref: 'v1', partSize: MiB });
    expect(first.uploadedFiles).toBe(files.size);
    const again = await publish({ dir: origin, dest, ref: 'v2', partSize: MiB });
    expect(again.uploadedFiles).toBe(0);
    expect(again.versionId).toBe(first.versionId);
  });

  it('resumes an interrupted publish: files already uploaded are not sent again', async () => {
    const origin = join(tmp.path, 'origin');
    const dest = join(tmp.path, 'store');
    const files = await writeModel(origin, { shards: [MiB, MiB], smallFiles: 4 });
    const controller = new AbortController();
    const uploaded: string[] = [];
    await expect(
      publish({
        dir: origin,
        dest,
        ref: 'v1',
        partSize: MiB,
        concurrency: 1,
        signal: controller.signal,
        onEvent: (e) => {
          if (e.type !== 'upload-done') return;
          uploaded.push(e.path);
          if (uploaded.length === 2) controller.abort(new Error('stop'));
        },
      }),
    ).rejects.toMatchObject({ name: 'AbortError' });

    const resumed = await publish({ dir: origin, dest, ref: 'v1', partSize: MiB });
    expect(resumed.uploadedFiles).toBe(files.size - 2);
    const result = await pull({ source: dest, ref: 'v1', root: join(tmp.path, 'cache') });
    expect(await differingFiles(result.dir, files)).toEqual([]);
  });

  it('names a folder that does not exist', async () => {
    await expect(
      publish({ dir: join(tmp.path, 'nope'), dest: join(tmp.path, 'store'), ref: 'v1' }),
    ).rejects.toThrow(/nope is not a directory/);
  });
});
