import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { main } from './cli.js';
import { fakeIo } from './test-io.js';

async function run(argv: string[], env: Record<string, string> = {}) {
  const fake = fakeIo({ env: { HOME: '/nonexistent', ...env } });
  const code = await main(argv, fake.io);
  return { code, stdout: fake.stdout(), stderr: fake.stderr(), fake };
}

const commands = ['pull', 'resume', 'status', 'verify', 'publish', 'diff', 'bake', 'gc'];

describe('help and version', () => {
  it('prints the version from package.json', async () => {
    const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'));
    const { code, stdout } = await run(['--version']);
    expect(code).toBe(0);
    expect(stdout).toBe(`${pkg.version}\n`);
  });

  it('lists every command in --help', async () => {
    const { code, stdout } = await run(['--help']);
    expect(code).toBe(0);
    for (const name of commands) expect(stdout).toMatch(new RegExp(`^  ${name} `, 'm'));
  });

  it.each(commands)('%s --help shows usage and examples, even next to a bad flag', async (name) => {
    for (const argv of [
      [name, '--help'],
      [name, '-h'],
      [name, '--bogus', '--help'],
      ['help', name],
    ]) {
      const { code, stdout } = await run(argv);
      expect(code).toBe(0);
      expect(stdout).toContain(`Usage: ferry ${name}`);
      expect(stdout).toContain('Examples:');
    }
  });

  it('prints the usage to stderr and exits 2 without a command', async () => {
    const { code, stdout, stderr } = await run([]);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toContain('Usage: ferry <command>');
  });
});

describe('usage errors exit 2 with one line naming what is wrong', () => {
  it.each([
    [['fetch', 's3://bkt/m'], 'ferry: unknown command "fetch"'],
    [['--bogus'], 'ferry: unknown flag --bogus'],
    [['pull', 's3://bkt/m', '--bogus'], 'ferry: pull: unknown flag --bogus'],
    [['pull', 's3://bkt/m', '--to'], 'ferry: pull: --to needs a value'],
    [['pull', 's3://bkt/m', '--json=yes'], 'ferry: pull: --json takes no value'],
    [['pull', 's3://bkt/m', 'extra'], 'ferry: pull: unexpected argument "extra"'],
    [['pull', 's3://bkt/m', '--part-size', '16XB'], 'ferry: --part-size: "16XB" is not a size'],
    [
      ['pull', 's3://bkt/m', '--concurrency', '0'],
      'ferry: --concurrency: "0" is not a whole number from 1 to 1024',
    ],
    [
      ['pull', 's3://bkt/m', '--stall-timeout', '0'],
      'ferry: --stall-timeout: "0" is not a number of seconds above 0 to 3600',
    ],
    [
      ['pull', 's3://bkt/m', '--hedge-after', 'soon'],
      'ferry: --hedge-after: "soon" is not a number of seconds from 0 to 3600',
    ],
    [
      ['pull', 's3://bkt/m', '--verify', 'md5'],
      'ferry: --verify: "md5" is not one of size, stat, hash',
    ],
    [
      ['pull', 'ftp://host/m', '--to', '/tmp/x'],
      'ferry: Unsupported source scheme "ftp://": "ftp://host/m"',
    ],
    [['publish', 'dir', 's3://bkt/m'], 'ferry: publish: --ref is required'],
    [['publish', 'dir'], 'ferry: publish: give the folder and the destination'],
    [
      ['diff', 's3://bkt/m', 'v2'],
      'ferry: diff: give a source with a version and a second version',
    ],
    [['status', 'a', 'b'], 'ferry: status: unexpected argument "b"'],
  ])('%j', async (argv, message) => {
    const { code, stdout, stderr } = await run(argv);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    const [first, second, third] = stderr.split('\n');
    expect(first).toContain(message);
    expect(second).toMatch(/^hint: /);
    expect(third).toBe('');
  });

  it('also prints the error as a JSON line with --json', async () => {
    const { code, fake } = await run(['pull', 's3://bkt/m', '--part-size', 'big', '--json']);
    expect(code).toBe(2);
    expect(fake.jsonLines()).toEqual([
      {
        type: 'error',
        code: 'FERRY_USAGE',
        message: '--part-size: "big" is not a size',
        hint: expect.stringContaining('16MiB'),
        key: '--part-size',
      },
    ]);
  });

  it('shows a stack trace only with --debug or FERRY_DEBUG', async () => {
    const quiet = await run(['pull', 's3://bkt/m', '--part-size', 'big']);
    expect(quiet.stderr).not.toContain('    at ');
    const debug = await run(['pull', 's3://bkt/m', '--part-size', 'big', '--debug']);
    expect(debug.stderr).toContain('    at ');
    const env = await run(['pull', 's3://bkt/m', '--part-size', 'big'], { FERRY_DEBUG: '1' });
    expect(env.stderr).toContain('    at ');
  });
});

describe('runtime errors exit 1', () => {
  it('names the cache that is not there', async () => {
    const { code, stderr, fake } = await run(['status', '/nonexistent/cache']);
    expect(code).toBe(1);
    expect(stderr).toMatch(/^ferry: no ferry cache at \/nonexistent\/cache/);
    expect(stderr).toMatch(/\nhint: /);
    expect(fake.listeners()).toBe(0);
  });
});
