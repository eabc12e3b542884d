import { formatBytes } from '@ferry/manifest';

/** One way to write sizes for the whole CLI and the engine's messages. */
export { formatBytes };

import { FerryError } from '@ferry/manifest';

const UNITS: Record<string, number> = {
  b: 1,
  k: 1000,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  tb: 1000 ** 4,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

const SIZE = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i;

/**
 * Bytes from `16MiB`, `64MB`, `1GiB`, `1.5GiB` or plain `1048576`: binary units (KiB, MiB,
 * GiB, TiB) are powers of 1024, decimal ones (kB, MB, GB, TB) powers of 1000; the unit's
 * case does not matter. `flag` names the option in the error.
 *
 * @throws FerryError `FERRY_USAGE` for anything else, zero, or a fraction of a byte.
 */
export function parseSize(text: string, flag: string): number {
  const match = SIZE.exec(text.trim());
  const unit = match?.[2]?.toLowerCase() ?? '';
  const scale = unit === '' ? 1 : UNITS[unit];
  const bytes = match && scale !== undefined ? Number(match[1]) * scale : Number.NaN;
  if (!Number.isSafeInteger(bytes) || bytes < 1) {
    throw new FerryError('FERRY_USAGE', `${flag}: ${JSON.stringify(text)} is not a size`, {
      key: flag,
      hint: `Give a whole number of bytes (1048576) or a number with a unit: 16MiB, 64MB, 1GiB.`,
    });
  }
  return bytes;
}

/** `250 MiB/s`. */
export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(bytesPerSecond)}/s`;
}
