import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { BenchResult, Scenario } from './lib/scenario.js';

const here = import.meta.dirname;

async function loadScenarios(): Promise<Scenario[]> {
  const files = (await readdir(join(here, 'scenarios'))).filter((f) => f.endsWith('.ts')).sort();
  const loaded: Scenario[] = [];
  for (const file of files) {
    const mod = (await import(join(here, 'scenarios', file))) as { default: Scenario };
    loaded.push(mod.default);
  }
  return loaded;
}

function formatTable(rows: Array<BenchResult & { scenario: string }>): string {
  const header = ['scenario', 'measure', 'value', 'unit', 'baseline', 'ratio'];
  const lines = rows.map((r) => [
    r.scenario,
    r.name,
    r.value.toFixed(r.value >= 100 ? 0 : 2),
    r.unit,
    r.baseline ?? '',
    r.ratio === undefined ? '' : `${r.ratio.toFixed(2)}×`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const fmt = (cells: string[]) =>
    `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [fmt(header), fmt(widths.map((w) => '-'.repeat(w))), ...lines.map(fmt)].join('\n');
}

async function main(): Promise<void> {
  // `pnpm bench -- --scenario x` passes the `--` through; it means nothing here.
  const args = process.argv.slice(2).filter((arg, i) => !(i === 0 && arg === '--'));
  const { values } = parseArgs({
    args,
    options: { scenario: { type: 'string', multiple: true }, list: { type: 'boolean' } },
    allowPositionals: false,
  });
  const all = await loadScenarios();
  if (values.list) {
    for (const s of all) console.log(`${s.name.padEnd(20)} ${s.description}`);
    return;
  }
  const wanted = values.scenario;
  const chosen = wanted ? all.filter((s) => wanted.includes(s.name)) : all;
  const unknown = (wanted ?? []).filter((w) => !all.some((s) => s.name === w));
  if (unknown.length > 0) {
    console.error(`bench: unknown scenario ${unknown.join(', ')}; try --list`);
    process.exitCode = 2;
    return;
  }
  const rows: Array<BenchResult & { scenario: string }> = [];
  for (const scenario of chosen) {
    console.error(`running ${scenario.name}: ${scenario.description}`);
    for (const r of await scenario.run({})) rows.push({ scenario: scenario.name, ...r });
  }
  console.log(formatTable(rows));
  const machine = {
    cores: cpus().length,
    cpu: cpus()[0]?.model,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
  };
  const dir = join(here, 'results');
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(
    file,
    `${JSON.stringify({ date: new Date().toISOString(), machine, rows }, null, 2)}\n`,
  );
  console.error(`results written to ${file}`);
}

await main();
