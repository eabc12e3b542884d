import type { PlanSummary, PullEvent } from '@ferry/engine';
import { formatBytes } from './byte-size.js';
import type { CliIo } from './cli-io.js';
import { type OutputMode, progressView } from './output-mode.js';
import { type ProgressView, snapshotOf } from './progress-view.js';
import { dryRunSummary, planLine, pullSummary } from './pull-summary.js';

export interface PullReporterOptions {
  io: CliIo;
  mode: OutputMode;
  /** Also note every retry, not only count them. */
  debug: boolean;
  /** The summary says what would happen; the plan is not noted separately. @default false */
  dryRun?: boolean;
}

/**
 * Turns a pull's events into what the user sees: JSON lines, or a progress view and a
 * summary per finished pull on stdout. One reporter serves several pulls in a row (resume).
 */
export class PullReporter {
  readonly #io: CliIo;
  readonly #mode: OutputMode;
  readonly #debug: boolean;
  readonly #dryRun: boolean;
  readonly #view: ProgressView;
  #label = '';
  #plan: PlanSummary | undefined;
  #retries = 0;

  constructor(options: PullReporterOptions) {
    this.#io = options.io;
    this.#mode = options.mode;
    this.#debug = options.debug;
    this.#dryRun = options.dryRun ?? false;
    this.#view = progressView(options.io, options.mode);
  }

  /** Pass as the engine's `onEvent`. */
  readonly event = (event: PullEvent): void => {
    if (this.#mode === 'json') {
      this.#io.stdout.write(`${JSON.stringify(event)}\n`);
      return;
    }
    switch (event.type) {
      case 'resolved':
        this.#label = event.ref === undefined ? event.source : `${event.source}@${event.ref}`;
        this.#plan = undefined;
        this.#retries = 0;
        return;
      case 'waiting-for-lock':
        this.#view.note(`waiting for the cache: ${event.holder}`);
        return;
      case 'plan':
        this.#plan = event.plan;
        if (!this.#dryRun && event.plan.fetch.files + event.plan.reuse.files > 0) {
          this.#view.note(`${this.#label}: ${planLine(event.plan)}`);
        }
        return;
      case 'retry':
        this.#retries++;
        if (this.#debug) {
          this.#view.note(
            event.attempt === 0
              ? `hedge of ${event.path}: ${event.message}`
              : `retry ${event.attempt} of ${event.path}: ${event.code} ${event.message}`,
          );
        }
        return;
      case 'progress':
        this.#view.update(snapshotOf(event, this.#retries));
        return;
      case 'warning':
        // Even --quiet: the user is being served something other than what was asked.
        this.#view.close();
        this.#io.stderr.write(`ferry: warning: ${event.message}\n`);
        return;
      case 'planned-file':
        if (this.#mode === 'quiet') return;
        this.#io.stdout.write(
          `  ${event.action.padEnd(7)} ${event.path}${event.bytes > 0 ? `  ${formatBytes(event.bytes)}` : ''}\n`,
        );
        return;
      case 'done':
        this.#view.close();
        if (this.#mode === 'quiet') return;
        this.#io.stdout.write(
          event.result.dryRun
            ? dryRunSummary(this.#plan, this.#label, event.result.dir)
            : pullSummary(event.result, this.#label),
        );
        return;
      default:
        return;
    }
  };

  /** Removes the live display (before an error or interrupt message). */
  close(): void {
    this.#view.close();
  }
}
