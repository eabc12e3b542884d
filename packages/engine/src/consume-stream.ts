import type { Readable } from 'node:stream';

/**
 * Feeds every chunk of `body` to `onChunk`, pausing the body while a promise `onChunk`
 * returned is pending; resolves once the body ended and the last promise settled.
 * Rejects with the body's error, `onChunk`'s, or `signal.reason` (destroying the body).
 *
 * 'data' events rather than `for await`: the async iterator costs about 0.4 s of CPU per
 * GiB of 64 KiB socket chunks here, a third of what reading the socket costs at all.
 */
export function consumeStream(
  body: Readable,
  onChunk: (chunk: Buffer) => Promise<void> | undefined,
  signal?: AbortSignal,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let pending: Promise<void> = Promise.resolve();
    let settled = false;
    const fail = (error: unknown) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      body.destroy();
      reject(error);
    };
    const onAbort = () => fail(signal?.reason);
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    body.on('data', (chunk: Buffer) => {
      if (settled) return;
      let step: Promise<void> | undefined;
      try {
        step = onChunk(chunk);
      } catch (error) {
        return fail(error);
      }
      if (step === undefined) return;
      body.pause();
      pending = step.then(() => {
        if (!settled) body.resume();
      });
      pending.catch(fail);
    });
    body.once('error', fail);
    body.once('end', () => {
      pending.then(() => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, fail);
    });
  });
}
