import { describe, expect, it } from 'vitest';
import { didYouMean } from './did-you-mean.js';

const COMMANDS = ['pull', 'resume', 'status', 'verify', 'publish', 'diff', 'bake', 'gc', 'refs'];

describe('didYouMean', () => {
  it.each([
    ['pul', 'pull'],
    ['plul', 'pull'],
    ['statsu', 'status'],
    ['verfy', 'verify'],
    ['publsh', 'publish'],
    ['fetch', undefined],
    ['x', undefined],
    ['gcc', 'gc'],
  ])('%s → %s', (word, want) => {
    expect(didYouMean(word, COMMANDS)).toBe(want);
  });

  it('suggests flags by name', () => {
    expect(didYouMean('too', ['to', 'config', 'concurrency'])).toBe('to');
    expect(didYouMean('concurency', ['to', 'config', 'concurrency'])).toBe('concurrency');
  });
});
