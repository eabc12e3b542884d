import { type ParseArgsConfig, parseArgs } from 'node:util';
import { FerryError } from '@ferry/manifest';
import { didYouMean } from './did-you-mean.js';

type OptionsConfig = NonNullable<ParseArgsConfig['options']>;

/** Parsed flag values: strings for string options, booleans for boolean ones; absent when not given. */
export type FlagValues<T extends OptionsConfig> = {
  [K in keyof T]?: T[K] extends { multiple: true }
    ? string[]
    : T[K]['type'] extends 'string'
      ? string
      : boolean;
};

/** Flags every command takes. */
export const COMMON_OPTIONS = {
  json: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  debug: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies OptionsConfig;

/**
 * Parses a command's arguments strictly: an unknown flag, a missing value or too many
 * arguments is a FERRY_USAGE error naming the flag and the command.
 */
export function parseCommandArgs<const T extends OptionsConfig>(
  command: string,
  args: string[],
  options: T,
  maxPositionals: number,
): { values: FlagValues<T & typeof COMMON_OPTIONS>; positionals: string[] } {
  let parsed: { values: FlagValues<T & typeof COMMON_OPTIONS>; positionals: string[] };
  try {
    const result = parseArgs({
      args,
      options: { ...COMMON_OPTIONS, ...options },
      allowPositionals: true,
      strict: true,
    });
    // With strict parsing every value has its option's type (an array for `multiple` ones).
    parsed = {
      values: result.values as FlagValues<T & typeof COMMON_OPTIONS>,
      positionals: result.positionals,
    };
  } catch (error) {
    throw usageFromParseArgs(command, error, Object.keys({ ...COMMON_OPTIONS, ...options }));
  }
  const extra = parsed.positionals[maxPositionals];
  if (extra !== undefined && parsed.values.help !== true) {
    throw usageError(command, `unexpected argument ${JSON.stringify(extra)}`);
  }
  return parsed;
}

/** A FERRY_USAGE error for `ferry <command>` pointing at its help. */
export function usageError(command: string, message: string, hint?: string): FerryError {
  return new FerryError('FERRY_USAGE', `${command}: ${message}`, {
    hint: hint ?? `Run \`ferry ${command} --help\` for usage and examples.`,
  });
}

function usageFromParseArgs(command: string, error: unknown, flags: string[]): FerryError {
  const code = (error as { code?: string }).code;
  const message = error instanceof Error ? error.message : String(error);
  const flag = /'(-{1,2}[^' ]+)/.exec(message)?.[1];
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': {
      const guess =
        flag?.startsWith('--') === true
          ? didYouMean(flag.slice(2).split('=')[0] ?? '', flags)
          : undefined;
      return usageError(
        command,
        `unknown flag ${flag ?? message}`,
        guess === undefined
          ? undefined
          : `Did you mean --${guess}? Run \`ferry ${command} --help\` for all flags.`,
      );
    }
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return usageError(
        command,
        message.includes('argument missing')
          ? `${flag ?? 'a flag'} needs a value`
          : `${flag ?? 'a flag'} takes no value`,
      );
    default:
      return usageError(command, message);
  }
}

/** A whole number in `[min, max]` from a flag value. */
export function parseCount(text: string, flag: string, max: number, min = 1): number {
  const value = /^\d+$/.test(text.trim()) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new FerryError(
      'FERRY_USAGE',
      `${flag}: ${JSON.stringify(text)} is not a whole number from ${min} to ${max}`,
      {
        key: flag,
        hint: `Give a count, e.g. ${flag} 16.`,
      },
    );
  }
  return value;
}

/** Seconds (`10`, `2.5`, `10s`) from a flag value, in milliseconds; `0` only when `zero` allows it. */
export function parseSeconds(text: string, flag: string, zero: boolean): number {
  const match = /^(\d+(?:\.\d+)?)s?$/.exec(text.trim());
  const value = match ? Number(match[1]) : Number.NaN;
  if (!Number.isFinite(value) || (value === 0 && !zero) || value > 3600) {
    throw new FerryError(
      'FERRY_USAGE',
      `${flag}: ${JSON.stringify(text)} is not a number of seconds${zero ? ' from 0' : ' above 0'} to 3600`,
      { key: flag, hint: `Give seconds, e.g. ${flag} 10.` },
    );
  }
  return Math.round(value * 1000);
}

/** One of `choices` from a flag value. */
export function parseChoice<const C extends string>(
  text: string,
  flag: string,
  choices: readonly C[],
): C {
  const found = choices.find((c) => c === text);
  if (found === undefined) {
    throw new FerryError(
      'FERRY_USAGE',
      `${flag}: ${JSON.stringify(text)} is not one of ${choices.join(', ')}`,
      {
        key: flag,
        hint: `Use ${choices.map((c) => `${flag} ${c}`).join(' or ')}.`,
      },
    );
  }
  return found;
}
