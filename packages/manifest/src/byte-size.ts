import { FerryError } from './errors.js';

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** `1.50 GiB`, `16.0 MiB`, `999 B`: three significant digits, binary units. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) return `${Math.round(value)} B`;
  const digits = value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${value.toFixed(digits)} ${UNITS[unit]}`;
}

const SIZE_UNITS: Record<string, number> = {
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
 * case does not matter. `flag` names the option in the error. The one size grammar of the
 * CLI, model.json and the benchmarks.
 *
 * @throws FerryError `FERRY_USAGE` for anything else, zero, or a fraction of a byte.
 */
export function parseSize(text: string, flag: string): number {
  const match = SIZE.exec(text.trim());
  const unit = match?.[2]?.toLowerCase() ?? '';
  const scale = unit === '' ? 1 : SIZE_UNITS[unit];
  const bytes = match && scale !== undefined ? Number(match[1]) * scale : Number.NaN;
  if (!Number.isSafeInteger(bytes) || bytes < 1) {
    throw new FerryError('FERRY_USAGE', `${flag}: ${JSON.stringify(text)} is not a size`, {
      key: flag,
      hint: `Give a whole number of bytes (1048576) or a number with a unit: 16MiB, 64MB, 1GiB.`,
    });
  }
  return bytes;
}
