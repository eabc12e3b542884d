import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { differingFiles, makeTempDir, type TempDir, writeModel } from '#fixtures';

const execFileAsync = promisify(execFile);
const WORKSPACE = fileURLToPath(new URL('../..', import.meta.url));
const PACKAGES = ['manifest', 'adapters', 'engine', 'cli'] as const;
const TSC = join(WORKSPACE, 'node_modules', 'typescript', 'bin', 'tsc');
const MiB = 1024 * 1024;

interface PackageJson {
  name: string;
  version: string;
  private?: boolean;
  main?: string;
  types?: string;
  bin?: Record<string, string>;
  exports?: Record<string, Record<string, string>>;
  engines?: { node?: string };
  dependencies?: Record<string, string>;
}

interface Packed {
  name: (typeof PACKAGES)[number];
  tarball: string;
  /** Paths inside the tarball, as `pnpm pack --json` lists them. */
  files: string[];
}

let tmp: TempDir;
let consumer: string;
let packed: Packed[];

/** Runs a command; a failure carries its output, so the test says what went wrong. */
async function run(
  command: string,
  args: string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv },
) {
  try {
    return await execFileAsync(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      maxBuffer: 16 * MiB,
    });
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${command} ${args.join(' ')} failed: ${e.message}\n${e.stdout}\n${e.stderr}`);
  }
}

/**
 * What the consumer's own code runs with: nothing of the workspace's environment, and the
 * `node` of a `#!/usr/bin/env node` bin is the one this test runs on.
 */
function consumerEnv(): NodeJS.ProcessEnv {
  return { PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`, HOME: tmp.path };
}

async function readJson<T>(path: string): Promise<T> {
  return JSON.parse(await readFile(path, 'utf8')) as T;
}

/**
 * The packages a built file imports (relative paths and `node:` built-ins left out), from
 * the forms tsc and the CLI's bundler emit: statements at the start of a line (`import …
 * from '…';`, `export … from '…';`, `import '…';`; double quotes in the bundle) and
 * `import('…')` (`import("…")` in declarations and the bundle).
 */
function importedPackages(code: string): string[] {
  const patterns = [
    /^(?:import|export)\s[^;]*?\sfrom\s(?:'([^']+)'|"([^"]+)");/gm,
    /^import\s'([^']+)';/gm,
    /\bimport\((?:'([^']+)'|"([^"]+)")\)/g,
  ];
  return patterns
    .flatMap((pattern) => [...code.matchAll(pattern)].map((m) => m[1] ?? m[2] ?? '.'))
    .filter((s) => !s.startsWith('.') && !s.startsWith('node:'))
    .map((s) =>
      s
        .split('/')
        .slice(0, s.startsWith('@') ? 2 : 1)
        .join('/'),
    );
}

/** Every file a manifest's entry points name, without a leading `./`. */
function entryPoints(pkg: PackageJson): string[] {
  const targets = [
    pkg.main,
    pkg.types,
    ...Object.values(pkg.bin ?? {}),
    ...Object.values(pkg.exports ?? {}).flatMap((conditions) => Object.values(conditions)),
  ];
  return targets.filter((t) => t !== undefined).map((t) => t.replace(/^\.\//, ''));
}

// What a user does before the packages are on a registry: pack each one, then install the
// tarballs into a project of their own. The install prefers the pnpm store the workspace
// install filled, but may reach the registry: the consumer resolves afresh, and a
// dependency published since the lockfile was written (string_decoder 1.4.0 did) is not in
// the store, which failed a strictly offline install on a fresh machine.
beforeAll(async () => {
  for (const name of PACKAGES) {
    const built = join(WORKSPACE, 'packages', name, 'dist', 'index.js');
    if (!existsSync(built)) throw new Error(`${built} is missing: run \`pnpm build\` first`);
  }
  tmp = await makeTempDir('pack');
  const packs = join(tmp.path, 'packs');
  packed = [];
  for (const name of PACKAGES) {
    const { stdout } = await run('pnpm', ['pack', '--json', '--pack-destination', packs], {
      cwd: join(WORKSPACE, 'packages', name),
    });
    const result = JSON.parse(stdout) as { filename: string; files: Array<{ path: string }> };
    packed.push({ name, tarball: result.filename, files: result.files.map((f) => f.path) });
  }

  consumer = join(tmp.path, 'consumer');
  const typesNode = await readJson<PackageJson>(
    join(WORKSPACE, 'node_modules', '@types', 'node', 'package.json'),
  );
  const tarballs = Object.fromEntries(packed.map((p) => [`@ferry/${p.name}`, `file:${p.tarball}`]));
  await mkdir(consumer);
  await writeFile(
    join(consumer, 'package.json'),
    JSON.stringify({
      name: 'ferry-consumer',
      private: true,
      type: 'module',
      dependencies: tarballs,
      devDependencies: { '@types/node': typesNode.version },
    }),
  );
  // The overrides make the packages' dependencies on each other (`0.1.0`, rewritten from
  // `workspace:*` by pack) resolve to the tarballs rather than to a registry. Without
  // hoisting, a package sees only what it declares: a runtime import that is only a
  // devDependency, or not declared at all, fails here as it would for a user.
  await writeFile(
    join(consumer, 'pnpm-workspace.yaml'),
    [
      'hoist: false',
      'allowBuilds:',
      '  classic-level: true',
      'overrides:',
      ...Object.entries(tarballs).map(([name, spec]) => `  "${name}": "${spec}"`),
      '',
    ].join('\n'),
  );
  await run('pnpm', ['install', '--prefer-offline', '--no-frozen-lockfile'], { cwd: consumer });
});

afterAll(async () => {
  await tmp?.remove();
});

describe('each packed package', () => {
  it.each(PACKAGES)(
    '@ferry/%s ships a publishable manifest and the files it names',
    async (name) => {
      const { files } = packed.find((p) => p.name === name) as Packed;
      const source = await readJson<PackageJson>(join(WORKSPACE, 'packages', name, 'package.json'));
      // The installed copy of package.json is the one in the tarball, as pack rewrote it.
      const pkg = await readJson<PackageJson>(
        join(consumer, 'node_modules', '@ferry', name, 'package.json'),
      );

      expect(pkg.private).toBeUndefined();
      expect(pkg.engines?.node).toBe('>=20');
      for (const [dep, spec] of Object.entries(pkg.dependencies ?? {})) {
        expect(spec, dep).toMatch(/^\d+\.\d+\.\d+/);
      }
      // The same entry points as in the workspace, less the condition that points at src/.
      expect(Object.keys(pkg.exports ?? {})).toEqual(Object.keys(source.exports ?? {}));
      for (const [subpath, conditions] of Object.entries(source.exports ?? {})) {
        const { 'ferry-source': _, ...published } = conditions;
        expect(pkg.exports?.[subpath]).toEqual(published);
      }
      for (const target of entryPoints(pkg)) expect(files, target).toContain(target);
      expect(files.filter((f) => !f.startsWith('dist/')).sort()).toEqual([
        'README.md',
        'package.json',
      ]);
      expect(files.filter((f) => /\.test\.|\/test-/.test(f))).toEqual([]);
      const installed = join(consumer, 'node_modules', '@ferry', name);
      // One source per map from tsc; the CLI's bundles map back to every file they hold
      // (a chunk of only esbuild's own helpers maps nothing).
      for (const map of files.filter((f) => f.endsWith('.js.map'))) {
        const { sources, sourcesContent, mappings } = await readJson<{
          sources: string[];
          sourcesContent?: Array<string | null>;
          mappings: string;
        }>(join(installed, map));
        if (!(map.startsWith('dist/chunks/') && mappings === '')) {
          expect(sources.length, map).toBeGreaterThan(0);
        }
        expect(sourcesContent, `${map} carries its sources`).toHaveLength(sources.length);
        expect(sourcesContent?.every((s) => typeof s === 'string')).toBe(true);
      }
    },
  );

  it.each(PACKAGES)('@ferry/%s depends on exactly what its code imports', async (name) => {
    const { files } = packed.find((p) => p.name === name) as Packed;
    const installed = join(consumer, 'node_modules', '@ferry', name);
    const pkg = await readJson<PackageJson>(join(installed, 'package.json'));
    const imported = new Set<string>();
    for (const file of files.filter((f) => /\.(js|d\.ts)$/.test(f))) {
      for (const dep of importedPackages(await readFile(join(installed, file), 'utf8'))) {
        imported.add(dep);
      }
    }
    // Read from the files, so a lazily loaded module (the AWS SDK, piscina) counts as much
    // as any other: the runs below never load the S3 code.
    expect([...imported].sort()).toEqual(Object.keys(pkg.dependencies ?? {}).sort());
  });
});

describe('a project that installed the tarballs', () => {
  it('runs the ferry bin: --version and a pull of a local folder', async () => {
    const cli = await readJson<PackageJson>(join(WORKSPACE, 'packages', 'cli', 'package.json'));
    const ferry = join(consumer, 'node_modules', '.bin', 'ferry');
    const env = consumerEnv();
    const version = await run(ferry, ['--version'], { cwd: consumer, env });
    expect(version.stdout.trim()).toBe(cli.version);

    const model = join(tmp.path, 'bin-model');
    const files = await writeModel(model, { shards: [3 * MiB], smallFiles: 2 });
    const root = join(tmp.path, 'bin-root');
    await run(ferry, ['pull', model, '--to', root, '--quiet'], { cwd: consumer, env });
    expect(await differingFiles(join(root, 'bin-model'), files)).toEqual([]);
    // On a worker thread: the bundle's `part-worker.js` hands over to the installed engine's.
    const threaded = join(tmp.path, 'bin-root-threads');
    await run(ferry, ['pull', model, '--to', threaded, '--quiet', '--workers', '1'], {
      cwd: consumer,
      env,
    });
    expect(await differingFiles(join(threaded, 'bin-model'), files)).toEqual([]);
  });

  it('imports @ferry/engine from an ES module: pull, FerryError, isFerryError', async () => {
    const model = join(tmp.path, 'lib-model');
    const files = await writeModel(model, { shards: [2 * MiB], seed: 7 });
    const root = join(tmp.path, 'lib-root');
    await writeFile(
      join(consumer, 'pull.mjs'),
      `import { FerryError, isFerryError, pull } from '@ferry/engine';
const [model, root] = process.argv.slice(2);
const result = await pull({ source: model, root });
const failure = await pull({ source: model + '-missing', root }).catch((e) => e);
console.log(JSON.stringify({
  files: result.files,
  code: failure.code,
  ferryError: failure instanceof FerryError && isFerryError(failure),
}));
`,
    );
    const { stdout, stderr } = await run(process.execPath, ['pull.mjs', model, root], {
      cwd: consumer,
      env: consumerEnv(),
    });
    expect(stderr).toBe('');
    expect(JSON.parse(stdout)).toEqual({
      files: files.size,
      code: 'FERRY_NOT_FOUND',
      ferryError: true,
    });
    expect(await differingFiles(join(root, 'lib-model'), files)).toEqual([]);
  });

  // One run checks the packages' own declaration files too (skipLibCheck off, the slow
  // part: every .d.ts of the AWS SDK comes along); the node16 run only resolves.
  it.each([
    { mode: 'nodenext', skipLibCheck: false },
    { mode: 'node16', skipLibCheck: true },
  ])('typechecks against the installed types ($mode)', async ({ mode, skipLibCheck }) => {
    await writeFile(
      join(consumer, 'consumer.ts'),
      `import { LocalSource, type Source } from '@ferry/adapters';
import { main } from '@ferry/cli';
import {
  type FerryErrorCode,
  isFerryError,
  type PullOptions,
  type PullResult,
  pull,
  type SourceOptions,
  type VersionId,
} from '@ferry/engine';
import { encodeManifest, type Manifest } from '@ferry/manifest';

const sourceOptions: SourceOptions = { region: 'us-east-1' };
const source: Source = new LocalSource('/data/model');
const options: PullOptions = { source, root: '/var/cache/models', sourceOptions };
export const result: Promise<PullResult> = pull(options);
export const id = async (): Promise<VersionId | undefined> => (await result).versionId;
export const code = (e: unknown): FerryErrorCode | undefined => (isFerryError(e) ? e.code : undefined);
export const encode = (m: Manifest): string => encodeManifest(m);
export const run = (io: Parameters<typeof main>[1]): Promise<number> => main(['--version'], io);
// @ts-expect-error: a code ferry does not have (the types are real, not any)
export const wrong: FerryErrorCode = 'FERRY_NO_SUCH_CODE';
`,
    );
    await writeFile(
      join(consumer, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: mode,
          moduleResolution: mode,
          target: 'ES2022',
          strict: true,
          noEmit: true,
          skipLibCheck,
          types: ['node'],
        },
        files: ['consumer.ts'],
      }),
    );
    await run(process.execPath, [TSC, '-p', 'tsconfig.json'], { cwd: consumer });
  });
});
