import { describe, expect, it } from 'vitest';
import { EventChannel } from './event-channel.js';

describe('EventChannel', () => {
  it('yields every item in push order, including those pushed while it drains', async () => {
    const channel = new EventChannel<number>();
    for (let i = 0; i < 100_000; i++) channel.push(i);
    const seen: number[] = [];
    for await (const item of channel.drain()) {
      seen.push(item);
      if (item === 5) channel.push(-1);
      if (item === -1) channel.close();
    }
    expect(seen.length).toBe(100_001);
    expect(seen.slice(0, 3)).toEqual([0, 1, 2]);
    expect(seen.at(-2)).toBe(99_999);
    expect(seen.at(-1)).toBe(-1);
  });

  it('throws a failure only after the items pushed before it', async () => {
    const channel = new EventChannel<string>();
    channel.push('a');
    channel.push('b');
    channel.fail(new Error('boom'));
    const seen: string[] = [];
    await expect(
      (async () => {
        for await (const item of channel.drain()) seen.push(item);
      })(),
    ).rejects.toThrow('boom');
    expect(seen).toEqual(['a', 'b']);
  });
});
