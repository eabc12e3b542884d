/** `850ms`, `12.3s`, `4m05s`, `2h03m`: short enough for a progress line. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)}s`;
  const whole = Math.round(seconds);
  const minutes = Math.floor(whole / 60);
  if (minutes < 60) return `${minutes}m${String(whole % 60).padStart(2, '0')}s`;
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`;
}

/** Time left, in whole seconds below a minute: `ETA 0s`, `ETA 11s`, `ETA 4m05s`. */
export function formatEta(seconds: number): string {
  return seconds < 59.5 ? `${Math.round(seconds)}s` : formatDuration(seconds * 1000);
}
