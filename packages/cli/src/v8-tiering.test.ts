import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { tieringFlag } from './v8-tiering.js';

describe('tieringFlag', () => {
  it('raises the optimisation budget on V8 11 (Node 20)', () => {
    expect(tieringFlag('11.3.244.8-node.33', [])).toBe('--interrupt-budget=524288');
  });

  it('leaves V8 12 and later (Node 22, 24) alone', () => {
    expect(tieringFlag('12.4.254.21-node.33', [])).toBeUndefined();
    expect(tieringFlag('13.6.233.10-node.27', [])).toBeUndefined();
  });

  it('keeps a budget given on the command line', () => {
    expect(tieringFlag('11.3.244.8-node.33', ['--interrupt-budget=1000'])).toBeUndefined();
    expect(tieringFlag('11.3.244.8-node.33', ['--interrupt-budget', '1000'])).toBeUndefined();
  });

  it('names a flag this node accepts', () => {
    const flag = tieringFlag(process.versions.v8, []);
    if (flag === undefined) return;
    // node refuses an unknown V8 flag on its command line (exit 9): this one must start.
    const out = execFileSync(process.execPath, [flag, '-p', '1'], { encoding: 'utf8' });
    expect(out.trim()).toBe('1');
  });
});
