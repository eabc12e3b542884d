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
 * and the files in flight, redrawn in place at most every `minRedrawMs`. Lines fit the
 * terminal width (a wrapped line would break the in-place redraw) by dropping fields and
 * shortening paths, never by cutting a number.
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
    const text = lines.map((l) => `${l}\n`).join('');
    this.#stream.write(`${this.#cursorHidden ? '' : HIDE_CURSOR}${this.#erase()}${text}`);
    this.#cursorHidden = true;
    this.#drawn = lines.length;
  }

  /** Columns a line may use: one less than the terminal's, so the cursor never wraps. */
  #width(): number {
    // Some pseudo-terminals report 0 columns: treat that as unknown.
    return Math.max(12, (this.#stream.columns || 80) - 1);
  }

  /** Moves to the first line drawn and clears to the end of the screen. */
  #erase(): string {
    return this.#drawn === 0 ? '' : `\x1b[${this.#drawn}F\x1b[J`;
  }

  #lines(s: ProgressSnapshot): string[] {
    const width = this.#width();
    const shown = s.active.slice(0, this.#maxFiles);
    const files = shown.map((f) => {
      const pct = `  ${String(percent(f.doneBytes, f.totalBytes)).padStart(3)}%`;
      const size = width >= 40 ? ` ${formatBytes(f.totalBytes).padStart(10)}` : '';
      return `${pct}${size}  ${cutPath(f.path, width - [...pct].length - size.length - 2)}`;
    });
    const more = s.active.length - shown.length;
    const head = headLine(s, width);
    return more > 0 ? [head, ...files, `  … ${more} more`] : [head, ...files];
  }
}

/**
 * The overall line, fitted to `width` without cutting a number: the bar narrows, then goes,
 * then the retries, the ETA, the rate and the total are dropped, in that order.
 */
function headLine(s: ProgressSnapshot, width: number): string {
  const pct = percent(s.doneBytes, s.totalBytes);
  const fields = [
    `${String(pct).padStart(3)}%`,
    `${formatBytes(s.doneBytes)} / ${formatBytes(s.totalBytes)}`,
    formatRate(s.rate),
    s.etaSeconds === undefined ? '' : `ETA ${formatEta(s.etaSeconds)}`,
    s.retries === 0 ? '' : `${s.retries} ${s.retries === 1 ? 'retry' : 'retries'}`,
  ];
  const [percentText = '', ...rest] = fields;
  for (let keep = rest.length; keep >= 0; keep--) {
    const kept = rest.slice(0, keep).filter((f) => f !== '');
    if (keep === 0) kept.push(formatBytes(s.doneBytes));
    const tail = kept.join('  ');
    const room = width - [...percentText].length - tail.length - 2;
    if (room >= 8) {
      const barWidth = Math.min(BAR_WIDTH, room);
      const filled = Math.round((pct / 100) * barWidth);
      return `${percentText} ${'█'.repeat(filled)}${'░'.repeat(barWidth - filled)} ${tail}`;
    }
    if (room >= -1) return `${percentText} ${tail}`;
  }
  return percentText;
}

/** A path cut to `width` characters from the left: file names differ at the end. */
function cutPath(path: string, width: number): string {
  const chars = [...path];
  if (chars.length <= width) return path;
  return `…${chars.slice(chars.length - Math.max(1, width - 1)).join('')}`;
}
