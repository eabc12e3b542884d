import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

const PAGE = 4096;

/** Whether a buffer holds any byte other than zero. */
function written(buffer: Buffer, length: number): boolean {
  for (let i = 0; i < length; i++) if (buffer[i] !== 0) return true;
  return false;
}

/**
 * Bytes written from `start` in `[start, end)` of a preallocated (zero-filled, sparse)
 * file whose writer fills it in order from `start`: the page after which it is all zeros,
 * found by bisection, then the last byte other than zero in the page it ends in. Random
 * data ending in a zero byte is miscounted by that byte, which is noise next to MiB.
 */
async function writtenPrefix(
  handle: Awaited<ReturnType<typeof open>>,
  start: number,
  end: number,
): Promise<number> {
  const buffer = Buffer.alloc(PAGE);
  const pageWritten = async (page: number) => {
    const at = start + page * PAGE;
    const { bytesRead } = await handle.read(buffer, 0, Math.min(PAGE, end - at), at);
    return written(buffer, bytesRead);
  };
  // The first page of the part that is still all zeros: 0 … pages.
  let low = 0;
  let high = Math.ceil((end - start) / PAGE);
  while (low < high) {
    const mid = (low + high) >> 1;
    if (await pageWritten(mid)) low = mid + 1;
    else high = mid;
  }
  if (low === 0) return 0;
  const last = start + (low - 1) * PAGE;
  const { bytesRead } = await handle.read(buffer, 0, Math.min(PAGE, end - last), last);
  let length = bytesRead;
  while (length > 0 && buffer[length - 1] === 0) length--;
  return last - start + length;
}

/**
 * What a killed ferry pull left written in its partial files under `<root>/.ferry/tmp/`:
 * for a file with a cuts sidecar (`<name>.cuts`, one slot per part), the written prefix of
 * each part of the preallocated file; for a file without one (a small file its worker
 * creates and writes from its first byte), its size. Compared with what the next run keeps
 * of them, it is the part of a kill's waste that reached ferry's disk and was not
 * checkpointed; the rest of what ferry lost was read and not yet written (at most a write
 * batch and a socket chunk per part).
 */
export async function partialBytes(root: string): Promise<number> {
  const tmp = join(root, '.ferry', 'tmp');
  const names = await readdir(tmp).catch(() => [] as string[]);
  let total = 0;
  for (const name of names.filter((n) => n.endsWith('.part'))) {
    const path = join(tmp, name);
    const cuts = await stat(join(tmp, `${name.slice(0, -'.part'.length)}.cuts`)).catch(
      () => undefined,
    );
    const size = (await stat(path).catch(() => undefined))?.size ?? 0;
    if (cuts === undefined) {
      total += size;
      continue;
    }
    const parts = Math.max(1, Math.floor(cuts.size / 8));
    // Parts are a power of two in size (16 MiB unless published otherwise), all but the
    // last full: the smallest power of two that fits the file in `parts` parts.
    const partSize = parts === 1 ? size : 2 ** Math.ceil(Math.log2(size / parts));
    const handle = await open(path, 'r');
    try {
      for (let at = 0; at < size; at += partSize) {
        total += await writtenPrefix(handle, at, Math.min(size, at + partSize));
      }
    } finally {
      await handle.close();
    }
  }
  return total;
}
