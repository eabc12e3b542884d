import { cpus } from 'node:os';
import { type BenchResult, median, type Scenario } from '../lib/scenario.js';
import { spawnMeasured } from '../lib/spawn-measured.js';
import { runSync } from '../lib/sync-run.js';
import { ferryTool } from '../lib/sync-tools.js';

interface Contender {
  name: string;
  command(root: string, dir: string): { command: string; args: string[] };
}

const scenario: Scenario = {
  name: 'verify-deep',
  description:
    '`ferry verify --deep` (re-hash every file) and `ferry verify` of a pulled model dataset, next to sha256sum on every core (files in the page cache)',
  async run({ context }) {
    const origin = (await context.origins())[0];
    const published = origin && (await context.published(origin, 'model'));
    if (origin === undefined || published === undefined) return [];
    const root = await context.freshDir('verify-deep');
    const pulled = await runSync(
      ferryTool(context.ferry, undefined),
      origin,
      published.prefix,
      root,
      {
        expected: published.files,
      },
    );
    const dir = pulled.result?.dir;
    if (dir === undefined || pulled.problems.length > 0) {
      throw new Error(`verify-deep: the pull failed: ${pulled.problems.join('; ')}`);
    }
    const cores = cpus().length;
    const contenders: Contender[] = [
      {
        name: 'ferry verify --deep',
        command: (r) => context.ferry.command(['verify', r, '--deep']),
      },
      { name: 'ferry verify', command: (r) => context.ferry.command(['verify', r]) },
      {
        // The floor for reading and hashing the same files with SHA-256 on every core. The
        // folder is a link to its version directory: `$1/` follows it (without the slash,
        // find hashed nothing and the baseline was 18 GB/s). No file at all fails the run.
        name: `sha256sum ×${cores} (baseline)`,
        command: (_r, d) => ({
          command: 'bash',
          args: [
            '-c',
            `set -o pipefail; [ -n "$(find "$1/" -type f -print -quit)" ] || exit 3; find "$1/" -type f -print0 | xargs -0 -P ${cores} -n 8 sha256sum >/dev/null`,
            'bash',
            d,
          ],
        }),
      },
    ];
    const walls = new Map<string, number[]>();
    const peaks = new Map<string, number>();
    const cpuTimes = new Map<string, number[]>();
    const failures: string[] = [];
    for (let run = 0; run < context.config.runs; run++) {
      for (let i = 0; i < contenders.length; i++) {
        const c = contenders[(i + run) % contenders.length] as Contender;
        const { command, args } = c.command(root, dir);
        const m = await spawnMeasured(command, args, { env: { ...process.env } });
        if (m.code !== 0) failures.push(`${c.name}: exit ${m.code} ${m.stderr.trim().slice(-200)}`);
        walls.set(c.name, [...(walls.get(c.name) ?? []), m.wallMs]);
        peaks.set(c.name, Math.max(peaks.get(c.name) ?? 0, m.peakRssBytes));
        if (m.cpuMs !== undefined) cpuTimes.set(c.name, [...(cpuTimes.get(c.name) ?? []), m.cpuMs]);
      }
    }
    const baseline = median(walls.get(contenders[2]?.name ?? '') ?? [Number.NaN]);
    return contenders.map((c, i): BenchResult => {
      const wallMs = median(walls.get(c.name) ?? [Number.NaN]);
      const hashes = i !== 1;
      const problems = failures.filter((f) => f.startsWith(c.name));
      const cpuMs = cpuTimes.get(c.name);
      const cpuSeconds = cpuMs === undefined ? undefined : median(cpuMs) / 1000;
      return {
        name: c.name,
        origin: 'local disk',
        tool: c.name,
        value: hashes ? published.bytes / 1e6 / (wallMs / 1000) : wallMs / 1000,
        unit: hashes ? 'MB/s' : 's',
        wallMs,
        // GNU time measures the sha256sum tree too (its largest process); /proc polling alone
        // saw only the shell.
        ...((peaks.get(c.name) ?? 0) > 0 ? { peakRssBytes: peaks.get(c.name) ?? 0 } : {}),
        ...(cpuSeconds === undefined
          ? {}
          : { cpuSeconds, cpuPerGiB: cpuSeconds / (published.bytes / 2 ** 30) }),
        correct: problems.length === 0,
        ...(problems.length === 0 ? {} : { problems }),
        ...(hashes ? { vsCeiling: baseline / wallMs } : {}),
        extra: { bytes: published.bytes, files: published.files.size },
      };
    });
  },
};

export default scenario;
