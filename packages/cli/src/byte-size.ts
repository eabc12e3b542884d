import { formatBytes, parseSize } from '@ferry/manifest';

/** One way to write and read sizes for the whole CLI, the engine's messages and the benchmarks. */
export { formatBytes, parseSize };

/** `250 MiB/s`. */
export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(bytesPerSecond)}/s`;
}
