import type { PullEvent, PullResult } from '@ferry/engine';
import { describe, expect, it } from 'vitest';
import { ProgressDisplay } from './progress-display.js';
import { ProgressLines } from './progress-lines.js';
import type { ProgressSnapshot } from './progress-view.js';
import { PullReporter } from './pull-reporter.js';
import { dryRunSummary, pullSummary } from './pull-summary.js';
import { fakeIo } from './test-io.js';

const ESC = '\x1b';
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

const snapshot = (over: Partial<ProgressSnapshot> = {}): ProgressSnapshot => ({
  doneBytes: 1.2 * GiB,
  totalBytes: 4 * GiB,
  rate: 250 * MiB,
  etaSeconds: 11.4,
  active: [],
  retries: 0,
  ...over,
});

const result: PullResult = {
  versionId: `sha256:${'0123456789ab'.repeat(5)}abcd`,
  dir: '/cache/m',
  files: 13,
  bytes: 4 * MiB,
  fetchedBytes: MiB,
  reusedBytes: 3 * MiB,
  fetchedFiles: 1,
  skippedFiles: 12,
  removed: ['m/old.txt'],
  requests: 4,
  workers: 1,
  durationMs: 400,
  dryRun: false,
};

describe('progress lines (not a terminal)', () => {
  it('prints one short line per interval, not per event', () => {
    const fake = fakeIo();
    const lines = new ProgressLines({ stream: fake.io.stderr, now: fake.io.now, intervalMs: 5000 });
    lines.update(snapshot());
    fake.advance(4999);
    lines.update(snapshot());
    expect(fake.stderr()).toBe('');
    fake.advance(1);
    lines.update(snapshot());
    fake.advance(1000);
    lines.update(snapshot({ retries: 2 }));
    fake.advance(4000);
    lines.update(snapshot({ retries: 2, etaSeconds: undefined }));
    expect(fake.stderr()).toBe(
      'ferry: 1.20 GiB / 4.00 GiB (30%) 250 MiB/s ETA 11s\n' +
        'ferry: 1.20 GiB / 4.00 GiB (30%) 250 MiB/s, 2 retries\n',
    );
  });

  it('prints the last progress at the end, even of a pull shorter than the interval', () => {
    const fake = fakeIo();
    const lines = new ProgressLines({ stream: fake.io.stderr, now: fake.io.now, intervalMs: 5000 });
    lines.update(snapshot({ doneBytes: GiB }));
    fake.advance(800);
    lines.update(snapshot({ doneBytes: 4 * GiB, etaSeconds: 0 }));
    expect(fake.stderr()).toBe('');
    lines.close();
    lines.close();
    expect(fake.stderr()).toBe('ferry: 4.00 GiB / 4.00 GiB (100%) 250 MiB/s ETA 0s\n');
  });
});

describe('progress display (terminal)', () => {
  const active = [
    { path: 'model-00001-of-00004.safetensors', doneBytes: 300 * MiB, totalBytes: 1000 * MiB },
    { path: 'model-00002-of-00004.safetensors', doneBytes: 10 * MiB, totalBytes: 1000 * MiB },
    { path: 'model-00003-of-00004.safetensors', doneBytes: 0, totalBytes: 1000 * MiB },
  ];

  it('draws the bar and the files in flight, then redraws them in place', () => {
    const fake = fakeIo({ tty: true, columns: 100 });
    const display = new ProgressDisplay({ stream: fake.io.stderr, now: fake.io.now, maxFiles: 2 });
    display.update(snapshot({ active, retries: 1 }));
    const first = fake.stderr();
    expect(first.startsWith('\x1b[?25l')).toBe(true);
    expect(first).toContain(
      ' 30% ███████░░░░░░░░░░░░░░░░░ 1.20 GiB / 4.00 GiB  250 MiB/s  ETA 11s  1 retry\n',
    );
    expect(first).toContain('   30%   1000 MiB  model-00001-of-00004.safetensors\n');
    expect(first).toContain('  … 1 more\n');
    fake.advance(200);
    display.update(snapshot({ doneBytes: 2 * GiB, active }));
    // Back up over the 4 lines drawn, clear, draw again.
    expect(fake.stderr().slice(first.length).startsWith(`${ESC}[4F${ESC}[J 50% `)).toBe(true);
  });

  it('redraws at most every 100 ms', () => {
    const fake = fakeIo({ tty: true });
    const display = new ProgressDisplay({ stream: fake.io.stderr, now: fake.io.now });
    display.update(snapshot());
    const drawn = fake.stderr().length;
    fake.advance(50);
    display.update(snapshot({ doneBytes: 2 * GiB }));
    expect(fake.stderr().length).toBe(drawn);
    fake.advance(50);
    display.update(snapshot({ doneBytes: 2 * GiB }));
    expect(fake.stderr().length).toBeGreaterThan(drawn);
  });

  it.each([
    [
      60,
      ' 30% ████░░░░░░░░░░ 1.20 GiB / 4.00 GiB  250 MiB/s  ETA 11s',
      '   30%   1000 MiB  model-00001-of-00004.safetensors',
    ],
    [44, ' 30% 1.20 GiB / 4.00 GiB  250 MiB/s', '   30%   1000 MiB  …01-of-00004.safetensors'],
    [20, ' 30% 1.20 GiB', '   30%  …afetensors'],
  ])(
    'fits a %i-column terminal by dropping fields, never cutting a number',
    (columns, head, file) => {
      const fake = fakeIo({ tty: true, columns });
      const display = new ProgressDisplay({ stream: fake.io.stderr, now: fake.io.now });
      display.update(snapshot({ active }));
      const lines = fake
        .stderr()
        .replace(new RegExp(`${ESC}\\[[0-9;?]*[a-zA-Z]`, 'g'), '')
        .split('\n');
      expect(lines[0]).toBe(head);
      expect(lines[1]).toBe(file);
    },
  );

  it('cuts lines to the terminal width so a redraw never wraps', () => {
    const fake = fakeIo({ tty: true, columns: 40 });
    const display = new ProgressDisplay({ stream: fake.io.stderr, now: fake.io.now });
    display.update(snapshot({ active }));
    for (const line of fake
      .stderr()
      .replace(new RegExp(`${ESC}\\[[0-9;?]*[a-zA-Z]`, 'g'), '')
      .split('\n')) {
      expect([...line].length).toBeLessThanOrEqual(39);
    }
  });

  it('prints notes above the live lines, and clears everything on close', () => {
    const fake = fakeIo({ tty: true });
    const display = new ProgressDisplay({ stream: fake.io.stderr, now: fake.io.now });
    display.update(snapshot());
    const before = fake.stderr().length;
    display.note('plan: fetch 1 file');
    expect(
      fake.stderr().slice(before).startsWith(`${ESC}[1F${ESC}[Jferry: plan: fetch 1 file\n 30% `),
    ).toBe(true);
    const beforeClose = fake.stderr().length;
    display.close();
    expect(fake.stderr().slice(beforeClose)).toBe('\x1b[1F\x1b[J\x1b[?25h');
    display.close();
    expect(fake.stderr().length).toBe(beforeClose + '\x1b[1F\x1b[J\x1b[?25h'.length);
  });
});

describe('summaries', () => {
  it('says what a pull fetched, reused, skipped and removed, with time and rate', () => {
    expect(pullSummary(result, 's3://bkt/m@v2')).toBe(
      'pulled s3://bkt/m@v2 into /cache/m: 13 files, 4.00 MiB (sha256:0123456789ab)\n' +
        'fetched 1 file (1.00 MiB), reused 3.00 MiB, skipped 12 files, removed 1 in 400ms, 2.50 MiB/s\n',
    );
    expect(
      pullSummary({ ...result, fetchedBytes: 0, fetchedFiles: 0, removed: [] }, 's3://bkt/m'),
    ).toContain('\nfetched nothing, reused 3.00 MiB, skipped 12 files, removed 0 in 400ms\n');
  });

  it('says what a dry run would do', () => {
    const plan = {
      fetch: { files: 2, bytes: 3 * MiB },
      resumedBytes: MiB,
      reuse: { files: 1, bytes: MiB },
      skip: { files: 10, bytes: 10 * MiB },
      hashed: { files: 3, bytes: 3 * MiB },
      remove: { files: 1 },
    };
    expect(dryRunSummary(plan, 's3://bkt/m', '/cache/m')).toBe(
      'dry run: s3://bkt/m into /cache/m\n' +
        'would fetch 2 files (3.00 MiB) (1.00 MiB already on disk), reuse 1 file (1.00 MiB), ' +
        'skip 10 files (3 of them read and hashed: no record vouched for them), remove 1 file; nothing was changed\n',
    );
  });
});

describe('pull reporter', () => {
  const events: PullEvent[] = [
    {
      type: 'resolved',
      source: 's3://bkt/m',
      ref: 'v2',
      published: true,
      files: 13,
      bytes: 4 * MiB,
    },
    {
      type: 'plan',
      plan: {
        fetch: { files: 1, bytes: MiB },
        resumedBytes: 0,
        reuse: { files: 0, bytes: 0 },
        skip: { files: 12, bytes: 3 * MiB },
        hashed: { files: 0, bytes: 0 },
        remove: { files: 0 },
      },
    },
    {
      type: 'retry',
      path: 'a.bin',
      part: 0,
      attempt: 2,
      code: 'FERRY_TRANSIENT',
      message: 'reset',
    },
    {
      type: 'progress',
      transferredBytes: MiB,
      totalBytes: MiB,
      rate: MiB,
      etaSeconds: 0,
      active: [],
    },
    { type: 'done', result },
  ];

  it('writes one JSON object per event on stdout with --json, the result last', () => {
    const fake = fakeIo({ tty: true });
    const reporter = new PullReporter({ io: fake.io, mode: 'json', debug: false });
    for (const e of events) reporter.event(e);
    reporter.close();
    const lines = fake.stdout().split('\n');
    // One line per event, each a whole object, the stream ending with a newline.
    expect(lines.pop()).toBe('');
    expect(lines[0]).toBe(
      '{"type":"resolved","source":"s3://bkt/m","ref":"v2","published":true,"files":13,"bytes":4194304}',
    );
    expect(lines.map((l) => (JSON.parse(l) as { type: string }).type)).toEqual([
      'resolved',
      'plan',
      'retry',
      'progress',
      'done',
    ]);
    expect(JSON.parse(lines[2] as string)).toEqual({
      type: 'retry',
      path: 'a.bin',
      part: 0,
      attempt: 2,
      code: 'FERRY_TRANSIENT',
      message: 'reset',
    });
    expect(fake.jsonLines().at(-1)).toEqual({ type: 'done', result });
    // Nothing for a human on a terminal: scripts read stdout, and stderr stays quiet.
    expect(fake.stderr()).toBe('');
  });

  it('logs the plan and progress to stderr and the summary to stdout', () => {
    const fake = fakeIo({ env: { FERRY_PROGRESS_INTERVAL: '0' } });
    const reporter = new PullReporter({ io: fake.io, mode: 'lines', debug: false });
    for (const e of events) reporter.event(e);
    expect(fake.stderr()).toBe(
      'ferry: s3://bkt/m@v2: fetch 1 file (1.00 MiB), skip 12 files\n' +
        'ferry: 1.00 MiB / 1.00 MiB (100%) 1.00 MiB/s ETA 0s, 1 retry\n',
    );
    expect(fake.stdout()).toBe(pullSummary(result, 's3://bkt/m@v2'));
  });

  it('prints nothing but errors with --quiet', () => {
    const fake = fakeIo({ tty: true });
    const reporter = new PullReporter({ io: fake.io, mode: 'quiet', debug: false });
    for (const e of events) reporter.event(e);
    expect(fake.stdout() + fake.stderr()).toBe('');
  });
});
