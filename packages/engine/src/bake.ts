import { FerryError } from '@ferry/manifest';
import { gc } from './gc.js';
import { pull } from './pull.js';
import type { PullEvent, PullOptions, PullResult } from './types.js';
import { verify } from './verify.js';

/**
 * Pulls and leaves the cache ready to be baked into a container image: no partial files,
 * no interrupted pulls, every file durable and vouched for by the stat index, so a pull
 * from the image transfers nothing and reads no file content, also after an image layer
 * cut the mtimes to whole seconds (see `statVouches`).
 */
export async function bake(
  options: PullOptions & { onEvent?: (event: PullEvent) => void },
): Promise<PullResult> {
  // An image is built once and started many times, maybe after a crash of the builder.
  const result = await pull({ ...options, durable: true });
  await gc({ root: options.root });
  const report = await verify({ root: options.root });
  const [first] = report.problems;
  if (first) {
    throw new FerryError(
      'FERRY_INTEGRITY',
      `bake: ${first.path} is not as pulled: ${first.detail}`,
      {
        key: first.path,
        hint: 'Something changed the cache during the bake; run it again.',
      },
    );
  }
  return result;
}
