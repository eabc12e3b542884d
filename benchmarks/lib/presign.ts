import { execFile, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';

export interface PresignOptions {
  /** aws-cli v2 (`/usr/bin/aws`). */
  aws: string;
  /** Global arguments placed before `s3 presign`, e.g. `--endpoint-url URL`. */
  globalArgs: string[];
  env: Record<string, string | undefined>;
  /** Lifetime of the URLs. @default 3600 */
  expiresIn?: number;
}

// `aws s3 presign` run once per URI inside one Python interpreter: aws-cli's own command
// driver with the same arguments, ~10 ms a URL where a process per URL costs ~0.5 s (a
// thousand small files would add minutes to every run). One URI a line on stdin.
const DRIVER_LOOP = `
import contextlib, io, json, sys
import awscli.clidriver
driver = awscli.clidriver.create_clidriver()
base = json.loads(sys.argv[1])
for line in sys.stdin:
    uri = line.rstrip('\\n')
    if not uri:
        continue
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = driver.main(base + ['s3', 'presign', uri, '--expires-in', sys.argv[2]])
    if rc != 0:
        sys.exit(rc)
    print(out.getvalue().strip())
`;

/** The interpreter of a Python `aws` script (Debian's awscli), or undefined for a binary. */
async function pythonOf(aws: string): Promise<string | undefined> {
  const head = await readFile(aws, 'latin1').then(
    (t) => t.slice(0, 200),
    () => '',
  );
  const shebang = /^#!\s*(\S*python\S*)/.exec(head)?.[1];
  return shebang;
}

function runWithInput(
  command: string,
  args: string[],
  env: Record<string, string | undefined>,
  input: string,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.once('error', reject);
    child.once('close', (code) =>
      code === 0
        ? resolve(stdout)
        : reject(new Error(`${command} exited with ${code}: ${stderr.trim().slice(-300)}`)),
    );
    child.stdin.end(input);
  });
}

function presignOne(uri: string, options: PresignOptions, expiresIn: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      options.aws,
      [...options.globalArgs, 's3', 'presign', uri, '--expires-in', String(expiresIn)],
      { env: options.env },
      (error, stdout) => (error ? reject(error) : resolve(stdout.trim())),
    );
  });
}

/**
 * Presigned GET URLs for `uris` (`s3://bucket/key`), in the same order, made by
 * `aws [globalArgs] s3 presign <uri> --expires-in <s>`: in one interpreter when aws is a
 * Python script, else one process per URI (four at a time).
 */
export async function presignGetUrls(uris: string[], options: PresignOptions): Promise<string[]> {
  const expiresIn = options.expiresIn ?? 3600;
  const python = await pythonOf(options.aws);
  let urls: string[];
  if (python !== undefined) {
    const stdout = await runWithInput(
      python,
      ['-c', DRIVER_LOOP, JSON.stringify(options.globalArgs), String(expiresIn)],
      options.env,
      `${uris.join('\n')}\n`,
    );
    urls = stdout.split('\n').filter((l) => l !== '');
  } else {
    urls = new Array<string>(uris.length);
    let next = 0;
    const lane = async () => {
      while (next < uris.length) {
        const i = next++;
        urls[i] = await presignOne(uris[i] as string, options, expiresIn);
      }
    };
    await Promise.all(Array.from({ length: 4 }, lane));
  }
  if (urls.length !== uris.length || urls.some((u) => !/^https?:\/\//.test(u))) {
    throw new Error(`aws s3 presign gave ${urls.length} URLs for ${uris.length} objects`);
  }
  return urls;
}
