import { PassThrough, Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { consumeStream } from './consume-stream.js';

describe('consumeStream', () => {
  it('delivers every chunk in order and waits for pending work before resolving', async () => {
    const seen: string[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    await consumeStream(Readable.from(['a', 'b', 'c', 'd'].map((s) => Buffer.from(s))), (chunk) => {
      seen.push(chunk.toString());
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      return new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        inFlight--;
        seen.push(`done ${chunk.toString()}`);
      });
    });
    expect(seen).toEqual(['a', 'done a', 'b', 'done b', 'c', 'done c', 'd', 'done d']);
    expect(maxInFlight).toBe(1);
  });

  it('rejects with the body error, or the chunk handler error, and destroys the body', async () => {
    const body = new PassThrough();
    const failing = consumeStream(body, () => undefined);
    body.write('x');
    body.destroy(new Error('reset'));
    await expect(failing).rejects.toThrow('reset');

    const other = new PassThrough();
    const throwing = consumeStream(other, () => Promise.reject(new Error('disk full')));
    other.write('x');
    await expect(throwing).rejects.toThrow('disk full');
    expect(other.destroyed).toBe(true);
  });

  it('stops on abort with the signal reason and removes its listener', async () => {
    const controller = new AbortController();
    const body = new PassThrough();
    const consuming = consumeStream(body, () => undefined, controller.signal);
    body.write('x');
    controller.abort(new Error('stop'));
    await expect(consuming).rejects.toThrow('stop');
    expect(body.destroyed).toBe(true);

    const done = new AbortController();
    let removed = 0;
    const remove = done.signal.removeEventListener.bind(done.signal);
    done.signal.removeEventListener = ((...args: Parameters<typeof remove>) => {
      removed++;
      remove(...args);
    }) as typeof done.signal.removeEventListener;
    await consumeStream(Readable.from([Buffer.from('y')]), () => undefined, done.signal);
    expect(removed).toBe(1);
  });
});
