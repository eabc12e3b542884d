import type { ProgressEvent } from '@ferry/engine';

/** One file being transferred, as the progress display shows it. */
export interface ActiveFile {
  path: string;
  doneBytes: number;
  totalBytes: number;
}

/** What a progress display shows at one moment. */
export interface ProgressSnapshot {
  doneBytes: number;
  totalBytes: number;
  /** Bytes per second, recent. */
  rate: number;
  etaSeconds: number | undefined;
  active: ActiveFile[];
  retries: number;
}

/** What the display shows of the engine's `progress` event. */
export function snapshotOf(event: ProgressEvent, retries = 0): ProgressSnapshot {
  return {
    doneBytes: event.transferredBytes,
    totalBytes: event.totalBytes,
    rate: event.rate,
    etaSeconds: event.etaSeconds,
    active: event.active.map((f) => ({
      path: f.path,
      doneBytes: f.transferredBytes,
      totalBytes: f.totalBytes,
    })),
    retries,
  };
}

/** Where a long command reports progress: a live terminal display, log lines, or nowhere. */
export interface ProgressView {
  update(snapshot: ProgressSnapshot): void;
  /** A line that stays (a plan, a warning), printed above any live display. */
  note(line: string): void;
  /** Removes the live display; called before the summary or an error is printed. */
  close(): void;
}

/** The view for `--quiet` and `--json`: progress is not shown. */
export const silentView: ProgressView = {
  update() {},
  note() {},
  close() {},
};
