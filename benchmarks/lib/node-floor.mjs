// The floor: the least a verifying ranged pull does, in plain Node on one thread, as the
// reference for what Node itself costs per byte (run by the benchmarks like the other tools).
//
//   node node-floor.mjs --out DIR [--conc 8] [--part-mib 16] [--root PATH] [--url-file FILE] [URL...]
//
// Every object is read as explicit `bytes=a-b` ranges of --part-mib MiB, --conc at a time,
// over one keep-alive agent (node:http or node:https). The first range of an object also
// gives its size (Content-Range `a-b/size`): the file is then created and sized
// (ftruncate), and its other ranges queued ahead of the next objects. Every byte goes
// through SHA-256 (node:crypto, one hash per range: the work of checking part digests;
// with no manifest to compare against, the digests are only counted) and is gathered in
// batches of 256 KiB, written at its offset 32 KiB at a time (writeSync): on a VM with free
// page reporting, these machines, larger writes take page-cache memory the guest handed back
// to the host and cost up to 10x the kernel time (the engine's WRITE_SLICE says more); ferry
// and rclone write 32 KiB too. Any status but 206, a Content-Range
// other than the one asked for, a size that changes between ranges or a body of another
// length ends the run with exit code 1. No retries, no fsync.
//
// File names: the URL's path, percent-decoded, less the leading --root (default `/`), under
// --out: `--root /bench/cold/` and `http://h/bench/cold/extra/00/part-0.bin` give
// `DIR/extra/00/part-0.bin`. URLs come as arguments and/or one a line in --url-file (a
// thousand presigned URLs do not fit on a command line). Objects must not be empty.
import { createHash } from 'node:crypto';
import { closeSync, ftruncateSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { dirname, resolve, sep } from 'node:path';
import { parseArgs } from 'node:util';

const USAGE =
  'usage: node-floor.mjs --out DIR [--conc 8] [--part-mib 16] [--root PATH] [--url-file FILE] [URL...]';
const BATCH_BYTES = 256 * 1024;
const WRITE_BYTES = 32 * 1024;

function fail(message) {
  process.stderr.write(`node-floor: ${message}\n`);
  process.exit(1);
}

function positiveInt(text, flag) {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) fail(`${flag}: "${text}" is not a positive integer`);
  return n;
}

const { values, positionals } = (() => {
  try {
    return parseArgs({
      options: {
        out: { type: 'string' },
        conc: { type: 'string', default: '8' },
        'part-mib': { type: 'string', default: '16' },
        root: { type: 'string', default: '/' },
        'url-file': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
    });
  } catch (error) {
    return fail(`${error.message}\n${USAGE}`);
  }
})();
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
if (values.out === undefined) fail(`--out is required\n${USAGE}`);
const out = resolve(values.out);
const conc = positiveInt(values.conc, '--conc');
const partSize = positiveInt(values['part-mib'], '--part-mib') * 2 ** 20;
const root = values.root.endsWith('/') ? values.root : `${values.root}/`;
const urls = [
  ...positionals,
  ...(values['url-file'] === undefined
    ? []
    : readFileSync(values['url-file'], 'utf8')
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l !== '')),
];
if (urls.length === 0) fail(`no URLs\n${USAGE}`);

const agents = {
  'http:': new http.Agent({ keepAlive: true, maxSockets: conc }),
  'https:': new https.Agent({ keepAlive: true, maxSockets: conc }),
};

function fileOf(text) {
  let url;
  try {
    url = new URL(text);
  } catch {
    fail(`not a URL: ${text}`);
  }
  if (!(url.protocol in agents)) fail(`not http(s): ${text}`);
  const path = decodeURIComponent(url.pathname);
  if (!path.startsWith(root)) fail(`${path} is not under --root ${root}`);
  const name = path.slice(root.length);
  const target = resolve(out, name);
  if (name === '' || !target.startsWith(`${out}${sep}`)) fail(`bad file name "${name}"`);
  return { url, name, path: target, size: -1, fd: -1, partsLeft: -1 };
}

const files = urls.map(fileOf);
// Ranges to fetch; an object's first range is queued first, its others once its size is known.
const queue = files.map((file) => ({ file, start: 0, end: partSize - 1, first: true }));
let inFlight = 0;
let requests = 0;
let bytes = 0;
let digests = 0;

function sized(file, size) {
  file.size = size;
  file.partsLeft = Math.ceil(size / partSize);
  mkdirSync(dirname(file.path), { recursive: true });
  file.fd = openSync(file.path, 'w');
  ftruncateSync(file.fd, size);
  const rest = [];
  for (let start = partSize; start < size; start += partSize) {
    rest.push({ file, start, end: Math.min(size, start + partSize) - 1, first: false });
  }
  // Ahead of the other objects: finish what is open before opening more.
  queue.unshift(...rest);
}

function partDone(file) {
  file.partsLeft--;
  if (file.partsLeft === 0) closeSync(file.fd);
}

function fetchRange(task) {
  const { file } = task;
  const label = `${file.name} bytes=${task.start}-${task.end}`;
  requests++;
  const request = (file.url.protocol === 'https:' ? https : http).get(
    file.url,
    { agent: agents[file.url.protocol], headers: { range: `bytes=${task.start}-${task.end}` } },
    (response) => {
      if (response.statusCode !== 206) fail(`${label}: HTTP ${response.statusCode}, want 206`);
      const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(response.headers['content-range'] ?? '');
      if (range === null) fail(`${label}: Content-Range "${response.headers['content-range']}"`);
      const [start, end, size] = [Number(range[1]), Number(range[2]), Number(range[3])];
      if (task.first) sized(file, size);
      else if (size !== file.size) fail(`${label}: size ${size}, was ${file.size}`);
      const want = Math.min(task.end, size - 1);
      if (start !== task.start || end !== want) {
        fail(`${label}: Content-Range ${start}-${end}, want ${task.start}-${want}`);
      }
      const expected = want - task.start + 1;
      const hash = createHash('sha256');
      let received = 0;
      let batch = [];
      let batchBytes = 0;
      let at = task.start;
      const flush = () => {
        if (batchBytes === 0) return;
        for (const chunk of batch) {
          for (let from = 0; from < chunk.length; from += WRITE_BYTES) {
            const length = Math.min(WRITE_BYTES, chunk.length - from);
            const written = writeSync(file.fd, chunk, from, length, at);
            if (written !== length) fail(`${label}: wrote ${written} of ${length} bytes`);
            at += length;
          }
        }
        batch = [];
        batchBytes = 0;
      };
      response.on('data', (chunk) => {
        received += chunk.length;
        if (received > expected) fail(`${label}: more than ${expected} bytes`);
        hash.update(chunk);
        batch.push(chunk);
        batchBytes += chunk.length;
        if (batchBytes >= BATCH_BYTES) flush();
      });
      response.on('error', (error) => fail(`${label}: ${error.message}`));
      response.on('end', () => {
        if (!response.complete) fail(`${label}: the body was cut short`);
        if (received !== expected) fail(`${label}: ${received} bytes, want ${expected}`);
        flush();
        hash.digest();
        digests++;
        bytes += received;
        partDone(file);
        inFlight--;
        pump();
      });
    },
  );
  request.on('error', (error) => fail(`${label}: ${error.message}`));
}

function pump() {
  while (inFlight < conc && queue.length > 0) {
    inFlight++;
    fetchRange(queue.shift());
  }
  if (inFlight === 0 && queue.length === 0) {
    for (const agent of Object.values(agents)) agent.destroy();
    process.stdout.write(
      `${JSON.stringify({ type: 'done', files: files.length, bytes, requests, digests })}\n`,
    );
  }
}

pump();
