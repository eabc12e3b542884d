import type { Readable } from 'node:stream';

/** Collects a small body as UTF-8 text (manifests, refs), closing the stream on failure. */
export async function readAllText(body: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks).toString('utf8');
}
