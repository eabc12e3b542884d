import { setFlagsFromString } from 'node:v8';

/**
 * Node 20's V8 (11.3) sends a function to TurboFan once it has used up 66 KB of bytecode
 * budget (`--interrupt-budget=67584`). A command lives a second or two and runs a few
 * thousand functions a few hundred times each (one request, one hash, one file at a time):
 * on a pull of 1,000 × 64 KiB a fifth of the CPU went to compiling code that was done before
 * it paid back. A budget of 512 KB optimises what stays hot (the per-chunk path of a
 * large pull keeps its speed) and leaves the rest in the baseline tiers: 0.82× the CPU and
 * 0.85× the peak RSS on those 1,000 files; a no-op over a 100k-entry version spends ~5 %
 * more CPU, in the same wall time. V8 12 (Node 22 and later) tiers through Maglev, has no
 * such flag and gained nothing from budgets: it is left alone.
 */
const BUDGET_FLAG = '--interrupt-budget';
const BUDGET = 512 * 1024;

/** The V8 flag the CLI sets for this runtime, or undefined when it leaves V8 as it is. */
export function tieringFlag(
  v8Version: string = process.versions.v8,
  execArgv: readonly string[] = process.execArgv,
): string | undefined {
  const major = Number.parseInt(v8Version, 10);
  if (!(major <= 11)) return undefined;
  // Whoever starts node with their own budget keeps it.
  if (execArgv.some((arg) => arg === BUDGET_FLAG || arg.startsWith(`${BUDGET_FLAG}=`))) {
    return undefined;
  }
  return `${BUDGET_FLAG}=${BUDGET}`;
}

/** Sets `tieringFlag()` for the whole process (worker threads included); call it first. */
export function tuneTiering(): void {
  const flag = tieringFlag();
  if (flag !== undefined) setFlagsFromString(flag);
}
