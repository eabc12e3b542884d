import type { CliIo } from './cli-io.js';
import { ProgressDisplay } from './progress-display.js';
import { ProgressLines } from './progress-lines.js';
import { type ProgressView, silentView } from './progress-view.js';

/**
 * How a command talks: `json` (event lines on stdout), `quiet` (errors only), `live` (a
 * redrawn display on a terminal), `lines` (a progress line every few seconds, for logs).
 */
export type OutputMode = 'json' | 'quiet' | 'live' | 'lines';

export function outputMode(io: CliIo, flags: { json?: boolean; quiet?: boolean }): OutputMode {
  if (flags.json) return 'json';
  if (flags.quiet) return 'quiet';
  const dumb = io.env.TERM === 'dumb';
  return io.stderr.isTTY && !dumb ? 'live' : 'lines';
}

/** The progress view for a mode; progress goes to stderr, results to stdout. */
export function progressView(io: CliIo, mode: OutputMode): ProgressView {
  switch (mode) {
    case 'live':
      return new ProgressDisplay({ stream: io.stderr, now: io.now });
    case 'lines':
      return new ProgressLines({ stream: io.stderr, now: io.now, intervalMs: linesInterval(io) });
    default:
      return silentView;
  }
}

/** `FERRY_PROGRESS_INTERVAL` (seconds) sets how often log lines come; 5 s by default. */
function linesInterval(io: CliIo): number {
  const seconds = Number(io.env.FERRY_PROGRESS_INTERVAL);
  return Number.isFinite(seconds) && seconds >= 0 && io.env.FERRY_PROGRESS_INTERVAL !== ''
    ? seconds * 1000
    : 5000;
}
