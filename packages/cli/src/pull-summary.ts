import type { PlanSummary, PullResult } from '@ferry/engine';
import { formatBytes, formatRate } from './byte-size.js';
import { formatDuration } from './format-duration.js';

/** `3 files`, `1 file`. */
export function files(n: number): string {
  return `${n} ${n === 1 ? 'file' : 'files'}`;
}

/** `sha256:0123456789ab`: enough of a version id to recognise it. */
export function shortVersion(versionId: string): string {
  const colon = versionId.indexOf(':');
  return versionId.slice(0, colon + 13);
}

/**
 * What a pull did, in two lines:
 * `pulled s3://b/m@v2 into /cache/m: 13 files, 4.0 MiB (sha256:0123456789ab)` and
 * `fetched 1 file (1.0 MiB), reused 3.0 MiB, skipped 12 files, removed 0 in 0.4s (2.5 MiB/s)`.
 */
export function pullSummary(result: PullResult, label: string): string {
  const version = result.versionId === undefined ? '' : ` (${shortVersion(result.versionId)})`;
  const seconds = result.durationMs / 1000;
  const rate =
    seconds > 0 && result.fetchedBytes > 0 ? `, ${formatRate(result.fetchedBytes / seconds)}` : '';
  const fetched =
    result.fetchedFiles === 0 && result.fetchedBytes === 0
      ? 'fetched nothing'
      : `fetched ${files(result.fetchedFiles)} (${formatBytes(result.fetchedBytes)})`;
  return (
    `pulled ${label} into ${result.dir}: ${files(result.files)}, ${formatBytes(result.bytes)}${version}\n` +
    `${fetched}, reused ${formatBytes(result.reusedBytes)}, skipped ${files(result.skippedFiles)}, ` +
    `removed ${result.removed.length} in ${formatDuration(result.durationMs)}${rate}\n`
  );
}

/** What a dry run would do: `would fetch 2 files (3.0 MiB), reuse 1.0 MiB, …`. */
export function dryRunSummary(plan: PlanSummary | undefined, label: string, dir: string): string {
  if (plan === undefined) return `dry run: ${label} into ${dir}: nothing planned\n`;
  const resumed =
    plan.resumedBytes > 0 ? ` (${formatBytes(plan.resumedBytes)} already on disk)` : '';
  return (
    `dry run: ${label} into ${dir}\n` +
    `would fetch ${files(plan.fetch.files)} (${formatBytes(plan.fetch.bytes)})${resumed}, ` +
    `reuse ${files(plan.reuse.files)} (${formatBytes(plan.reuse.bytes)}), ${skipText(plan)}, ` +
    `remove ${files(plan.remove.files)}; nothing was changed\n`
  );
}

/** The plan as one log line, printed before the transfer starts. */
export function planLine(plan: PlanSummary): string {
  const parts = [`fetch ${files(plan.fetch.files)} (${formatBytes(plan.fetch.bytes)})`];
  if (plan.resumedBytes > 0) parts.push(`${formatBytes(plan.resumedBytes)} of it already on disk`);
  if (plan.reuse.files > 0)
    parts.push(`reuse ${files(plan.reuse.files)} (${formatBytes(plan.reuse.bytes)})`);
  if (plan.skip.files > 0) parts.push(skipText(plan));
  if (plan.remove.files > 0) parts.push(`remove ${files(plan.remove.files)}`);
  return parts.join(', ');
}

/** `skip 10 files`, saying how many of them had to be read because no record vouched for them. */
function skipText(plan: PlanSummary): string {
  const read = Math.min(plan.hashed.files, plan.skip.files);
  const hashed = read > 0 ? ` (${read} of them read and hashed: no record vouched for them)` : '';
  return `skip ${files(plan.skip.files)}${hashed}`;
}
