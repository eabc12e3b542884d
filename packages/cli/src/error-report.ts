import { isFerryError } from '@ferry/manifest';
import type { CliIo } from './cli-io.js';

/** Exit codes: the contract scripts branch on. */
export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

const USAGE_CODES = new Set([
  'FERRY_USAGE',
  'FERRY_BAD_CONFIG',
  'FERRY_BAD_SOURCE',
  'FERRY_BAD_REF',
]);

/** True for the rejection of an aborted operation, ferry's or the platform's. */
export function isAbort(error: unknown): boolean {
  return (
    isFerryError(error, 'FERRY_ABORTED') || (error instanceof Error && error.name === 'AbortError')
  );
}

/** What the user is told about a failure, and the exit code it gets. */
export interface ErrorReport {
  code: string;
  message: string;
  hint?: string;
  exitCode: number;
}

/** Classifies an error: ferry's own codes, local system errors, or a bug. */
export function describeError(error: unknown): ErrorReport {
  if (isFerryError(error)) {
    return {
      code: error.code,
      message: oneLine(error.message),
      ...(error.hint === undefined ? {} : { hint: oneLine(error.hint) }),
      exitCode: USAGE_CODES.has(error.code)
        ? EXIT.usage
        : error.code === 'FERRY_ABORTED'
          ? EXIT.interrupted
          : EXIT.failed,
    };
  }
  const errno = error as NodeJS.ErrnoException;
  if (error instanceof Error && typeof errno.code === 'string' && errno.syscall !== undefined) {
    // A local file system failure the engine did not wrap: the user can act on it.
    return {
      code: 'FERRY_IO',
      message: oneLine(error.message),
      hint: `Check ${errno.path ?? 'the path'}: permissions, free space and that the disk is mounted.`,
      exitCode: EXIT.failed,
    };
  }
  const message = error instanceof Error ? error.message : String(error);
  return {
    code: 'FERRY_INTERNAL',
    message: oneLine(message),
    hint: 'This is a bug in ferry; rerun with --debug and report the output.',
    exitCode: EXIT.failed,
  };
}

export interface ReportOptions {
  io: CliIo;
  /** Also print the error as a JSON line on stdout. */
  json: boolean;
  /** Print the stack trace and causes. */
  debug: boolean;
}

/** Prints `ferry: <message>` and `hint: …` (and the JSON line); returns the exit code. */
export function reportError(error: unknown, options: ReportOptions): number {
  const report = describeError(error);
  const { io } = options;
  if (options.json) {
    io.stdout.write(
      `${JSON.stringify({
        type: 'error',
        code: report.code,
        message: report.message,
        ...(report.hint === undefined ? {} : { hint: report.hint }),
        ...details(error),
      })}\n`,
    );
  }
  io.stderr.write(`ferry: ${report.message}\n`);
  if (report.hint !== undefined) io.stderr.write(`hint: ${report.hint}\n`);
  if (options.debug) io.stderr.write(debugText(error));
  return report.exitCode;
}

function details(error: unknown): Record<string, string | number> {
  if (!isFerryError(error)) return {};
  const out: Record<string, string | number> = {};
  if (error.key !== undefined) out.key = error.key;
  if (error.url !== undefined) out.url = error.url;
  if (error.statusCode !== undefined) out.statusCode = error.statusCode;
  if (error.requestId !== undefined) out.requestId = error.requestId;
  return out;
}

/** The stack and the chain of causes, for --debug. */
export function debugText(error: unknown): string {
  let text = '';
  let current: unknown = error;
  for (let depth = 0; current !== undefined && depth < 8; depth++) {
    const stack = current instanceof Error ? (current.stack ?? current.message) : String(current);
    text += `${depth === 0 ? '' : 'caused by: '}${stack}\n`;
    current = current instanceof Error ? current.cause : undefined;
  }
  return text;
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
