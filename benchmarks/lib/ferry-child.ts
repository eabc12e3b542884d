// ferry through the library, for when the CLI is not built: the same commands and the
// same JSON lines as `ferry … --json`, so the runner treats both alike.
import { parseArgs } from 'node:util';
import { pull, verify } from '@ferry/engine';

const [command, ...rest] = process.argv.slice(2);
const { values, positionals } = parseArgs({
  args: rest,
  options: {
    to: { type: 'string' },
    concurrency: { type: 'string' },
    deep: { type: 'boolean' },
    json: { type: 'boolean' },
  },
  allowPositionals: true,
});
const line = (event: unknown) => process.stdout.write(`${JSON.stringify(event)}\n`);

// `<source>@<ref>` as the CLI reads it, for the refs the benchmarks use (`…/stall@latest`).
const sourceRef = /^(.*[^/])@([A-Za-z0-9._-]+)$/.exec(positionals[0] ?? '');

if (command === 'pull' && positionals[0] !== undefined && values.to !== undefined) {
  await pull({
    source: sourceRef?.[1] ?? positionals[0],
    ...(sourceRef?.[2] === undefined ? {} : { ref: sourceRef[2] }),
    root: values.to,
    ...(values.concurrency === undefined ? {} : { concurrency: Number(values.concurrency) }),
    onEvent: line,
  });
} else if (command === 'verify' && positionals[0] !== undefined) {
  const result = await verify({ root: positionals[0], deep: values.deep === true });
  line({ type: 'done', result });
} else {
  process.stderr.write('usage: ferry-child pull <uri> --to <root> | verify <root> [--deep]\n');
  process.exitCode = 2;
}
