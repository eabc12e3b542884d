import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { readAllText } from './read-all-text.js';

describe('readAllText', () => {
  it('decodes a character cut between two chunks', async () => {
    const body = Readable.from([
      Buffer.from('{"p":"caf'),
      Buffer.from([0xc3]),
      Buffer.from([0xa9, 0x22, 0x7d]),
    ]);
    expect(await readAllText(body, 'k')).toBe('{"p":"café"}');
  });

  it('refuses a body past maxBytes, naming the key', async () => {
    const body = Readable.from([Buffer.alloc(6), Buffer.alloc(6)]);
    await expect(readAllText(body, 'refs/v1', 10)).rejects.toMatchObject({
      code: 'FERRY_BAD_RESPONSE',
      message: 'refs/v1 is larger than 10 bytes, more than it can be',
    });
  });
});
