import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** How ferry is run: the built CLI binary, or the library through a small child script. */
export type FerryMode = 'cli' | 'lib';

export interface FerryDriver {
  mode: FerryMode;
  describe: string;
  /** Command and arguments for `ferry <args…>`; the output is JSON lines either way. */
  command(args: string[]): { command: string; args: string[] };
}

const cliBin = fileURLToPath(new URL('../../packages/cli/dist/bin.js', import.meta.url));
const childScript = fileURLToPath(new URL('./ferry-child.ts', import.meta.url));

/**
 * `auto` takes the CLI when it is built (`pnpm build`), as users run it; otherwise the
 * library under tsx, whose start-up compiles TypeScript and so adds a few hundred ms to
 * every run (it shows in the warm figures, not in the transfer rates).
 */
export function ferryDriver(choice: 'auto' | FerryMode): FerryDriver {
  const mode: FerryMode = choice === 'auto' ? (existsSync(cliBin) ? 'cli' : 'lib') : choice;
  if (mode === 'cli') {
    if (!existsSync(cliBin)) throw new Error(`--ferry cli: ${cliBin} is missing; run pnpm build`);
    return {
      mode,
      describe: `CLI ${cliBin}`,
      command: (args) => ({ command: process.execPath, args: [cliBin, ...args, '--json'] }),
    };
  }
  return {
    mode,
    describe: 'library (@ferry/engine sources under tsx)',
    command: (args) => ({
      command: process.execPath,
      args: ['--conditions', 'ferry-source', '--import', 'tsx', childScript, ...args],
    }),
  };
}
