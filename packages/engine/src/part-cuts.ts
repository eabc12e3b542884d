import { readFile, writeFile } from 'node:fs/promises';

/**
 * How far each part of a partial file got, beside it in `.ferry/tmp/` (`<name>.cuts`): one
 * little-endian 64-bit count per part of bytes written from the part's start. The worker
 * writing a part gathers what it receives into batches of `CUT_BYTES` and updates the
 * part's slot right after each batch is written, so a killed pull (SIGKILL: no goodbye)
 * loses less than `CUT_BYTES` plus the socket chunk being handled per part in flight,
 * however busy the main thread was. No fsync: the page cache outlives the process, and a
 * resume re-hashes what a cut claims before trusting it (after a power cut, claimed bytes
 * that never reached the disk hash wrong and that part is fetched again from its start).
 */
export const CUT_BYTES = 2 ** 18;

export function cutsPathFor(tmpPath: string): string {
  return `${tmpPath.replace(/\.part$/, '')}.cuts`;
}

/** A fresh sidecar for a transfer of `parts` parts: every part at 0. */
export function createCuts(tmpPath: string, parts: number): Promise<void> {
  return writeFile(cutsPathFor(tmpPath), Buffer.alloc(8 * parts));
}

/** The cuts recorded for a partial file: part index → bytes, only parts that got some. */
export async function readCuts(tmpPath: string): Promise<Record<number, number>> {
  const bytes = await readFile(cutsPathFor(tmpPath)).catch(() => Buffer.alloc(0));
  const cuts: Record<number, number> = {};
  for (let i = 0; i + 8 <= bytes.length; i += 8) {
    const value = Number(bytes.readBigUInt64LE(i));
    if (value > 0) cuts[i / 8] = value;
  }
  return cuts;
}
