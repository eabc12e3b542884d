import { formatBytes, formatRate } from './byte-size.js';
import type { CliStream } from './cli-io.js';
import { formatEta } from './format-duration.js';
import { percent } from './progress-lines.js';
import type { ProgressSnapshot, ProgressView } from './progress-view.js';

export interface ProgressDisplayOptions {
  /** A terminal (stderr). */
  stream: CliStream;
  now: () => number;
  /** Fewest milliseconds between two redraws. @default 100 */
  minRedrawMs?: number;
  /** Files in flight listed under the bar; the rest are counted. @default 6 */
  maxFiles?: number;
}

const BAR_WIDTH = 24;
const HIDE_CURSOR = '\x1b[?25l';
const SHOW_CURSOR = '\x1b[?25h';

/**
 * A live display on a terminal: an overall bar with bytes, rate, ETA and a retry count,
 * and the files in flight, redrawn in place at most every `minRedrawMs`. Lines are cut to
 * the terminal width: a wrapped line would break the in-place redraw.
 */
export class ProgressDisplay implements ProgressView {
  readonly #stream: CliStream;
  readonly #now: () => number;
  readonly #minRedrawMs: number;
  readonly #maxFiles: number;
  #drawn = 0;
  #cursorHidden = false;
  #lastDraw = Number.NEGATIVE_INFINITY;
  #snapshot: ProgressSnapshot | undefined;

  constructor(options: ProgressDisplayOptions) {
    this.#stream = options.stream;
    this.#now = options.now;
    this.#minRedrawMs = options.minRedrawMs ?? 100;
    this.#maxFiles = options.maxFiles ?? 6;
  }

  update(snapshot: ProgressSnapshot): void {
    this.#snapshot = snapshot;
    const now = this.#now();
    if (now - this.#lastDraw < this.#minRedrawMs) return;
    this.#lastDraw = now;
    this.#draw(this.#lines(snapshot));
  }

  note(line: string): void {
    this.#stream.write(`${this.#erase()}ferry: ${line}\n`);
    this.#drawn = 0;
    if (this.#snapshot) this.#draw(this.#lines(this.#snapshot));
  }

  close(): void {
    if (this.#drawn === 0 && !this.#cursorHidden) return;
    this.#stream.write(`${this.#erase()}${this.#cursorHidden ? SHOW_CURSOR : ''}`);
    this.#drawn = 0;
    this.#cursorHidden = false;
  }

  /** Replaces what was drawn with `lines`. */
  #draw(lines: string[]): void {
    // Some pseudo-terminals report 0 columns: treat that as unknown.
    const width = Math.max(20, (this.#stream.columns || 80) - 1);
    const text = lines.map((l) => `${cut(l, width)}\n`).join('');
    this.#stream.write(`${this.#cursorHidden ? '' : HIDE_CURSOR}${this.#erase()}${text}`);
    this.#cursorHidden = true;
    this.#drawn = lines.length;
  }

  /** Moves to the first line drawn and clears to the end of the screen. */
  #erase(): string {
    return this.#drawn === 0 ? '' : `\x1b[${this.#drawn}F\x1b[J`;
  }

  #lines(s: ProgressSnapshot): string[] {
    const pct = percent(s.doneBytes, s.totalBytes);
    const filled = Math.round((pct / 100) * BAR_WIDTH);
    const bar = `${'█'.repeat(filled)}${'░'.repeat(BAR_WIDTH - filled)}`;
    const eta = s.etaSeconds === undefined ? '' : `  ETA ${formatEta(s.etaSeconds)}`;
    const retries =
      s.retries === 0 ? '' : `  ${s.retries} ${s.retries === 1 ? 'retry' : 'retries'}`;
    const head = `${String(pct).padStart(3)}% ${bar} ${formatBytes(s.doneBytes)} / ${formatBytes(s.totalBytes)}  ${formatRate(s.rate)}${eta}${retries}`;
    const shown = s.active.slice(0, this.#maxFiles);
    const files = shown.map(
      (f) =>
        `  ${String(percent(f.doneBytes, f.totalBytes)).padStart(3)}% ${formatBytes(f.totalBytes).padStart(10)}  ${f.path}`,
    );
    const more = s.active.length - shown.length;
    return more > 0 ? [head, ...files, `  … ${more} more`] : [head, ...files];
  }
}

/** Cuts a line to `width` characters, keeping its end (file names differ at the end). */
function cut(line: string, width: number): string {
  const chars = [...line];
  if (chars.length <= width) return line;
  const tail = chars.slice(chars.length - (width - 13)).join('');
  return `${chars.slice(0, 12).join('')}…${tail}`;
}
