import type { Handoff, Source, SourceOptions } from '@ferry/adapters';

/** A handoff is renewed this long before its credentials expire. */
const RENEW_BEFORE_MS = 5 * 60_000;

/**
 * The options worker threads open the pull's source with: the main thread's `handoff()`
 * when the source has one (an S3 source hands over its resolved address and credentials,
 * so no worker loads the AWS SDK), renewed before it expires; else the options as given.
 */
export function workerSourceOptions(
  source: Source,
  given: SourceOptions,
): () => Promise<SourceOptions> {
  let current: Promise<Handoff> | undefined;
  const fresh = (): Promise<Handoff> => {
    const handoff = source.handoff?.() ?? Promise.resolve({ options: given });
    // A failed handoff is not kept: the next part asks again.
    handoff.catch(() => {
      if (current === handoff) current = undefined;
    });
    current = handoff;
    return handoff;
  };
  return async () => {
    let handoff = await (current ?? fresh());
    if (handoff.expiresAt !== undefined && handoff.expiresAt - Date.now() < RENEW_BEFORE_MS) {
      handoff = await fresh();
    }
    return handoff.options;
  };
}
