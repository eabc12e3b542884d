import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { FerryError } from '@ferry/manifest';

/** What `readText` reads at most unless told otherwise: far above any real manifest. */
export const MAX_TEXT_BYTES = 256 * 2 ** 20;

/**
 * Collects a small body as UTF-8 text (manifests, refs), closing the stream on failure or
 * once it passes `maxBytes`: a hostile or broken object cannot make ferry buffer gigabytes.
 */
export async function readAllText(
  body: Readable,
  key: string,
  maxBytes: number = MAX_TEXT_BYTES,
): Promise<string> {
  // Decoded as it arrives: a large manifest is then held once, as text, not also as its
  // chunks and their concatenation (three copies at the peak, and the chunks' memory kept).
  const decoder = new StringDecoder('utf8');
  let text = '';
  let size = 0;
  for await (const chunk of body) {
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
    size += bytes.length;
    if (size > maxBytes) {
      body.destroy();
      throw new FerryError(
        'FERRY_BAD_RESPONSE',
        `${key} is larger than ${maxBytes} bytes, more than it can be`,
        {
          key,
          hint: 'The object is broken or hostile: check what was published there.',
        },
      );
    }
    text += decoder.write(bytes);
  }
  return text + decoder.end();
}
