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

if (command === 'pull' && positionals[0] !== undefined && values.to !== undefined) {
  await pull({
    source: positionals[0],
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
