import { Readable } from 'node:stream';
import { AbortError, FerryError, throwIfAborted } from '@ferry/manifest';
import type { S3Connection } from './s3-connection.js';
import type { WriteOptions } from './source.js';
import { checkKey } from './source-key.js';

/** S3's smallest part size; parts grow past it only for objects over 80 GB. */
const MIN_PART_SIZE = 8 * 1024 * 1024;
const MAX_PARTS = 10_000;
/** Parts uploaded at once; a multipart upload buffers at most this × the part size. */
const UPLOAD_QUEUE = 4;

/**
 * Uploads `body` to `key` (relative to the source root, checked): one PutObject up to the part size
 * (`uploadPartSize`, 8 MiB by default, more for objects over 80 GB), else a multipart
 * upload of 4 parts at once, buffering at most 4 × part size. A body that is not exactly
 * `size` bytes fails the upload with FERRY_INTEGRITY (and aborts a multipart one).
 */
export async function s3Upload(
  connection: S3Connection,
  key: string,
  body: Readable | Uint8Array,
  options: WriteOptions,
): Promise<{ etag?: string }> {
  const { signal, size } = options;
  throwIfAborted(signal);
  const normal = checkKey(key);
  const objectKey = connection.root + normal;
  const partSize = Math.max(
    connection.config.partSize ?? MIN_PART_SIZE,
    Math.ceil(size / MAX_PARTS),
  );
  if (body instanceof Uint8Array && body.length !== size) {
    throw lengthMismatch(normal, body.length, size);
  }
  // The SDK pipes a stream body into the request without watching it for errors, so a
  // body that fails (too short, too long, a read error) must abort the request itself.
  const controller = new AbortController();
  const onAbort = () => controller.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  let bodyError: unknown;
  let checked: Uint8Array | Readable = body;
  if (body instanceof Readable) {
    checked = Readable.from(exactly(body, size, normal));
    checked.once('error', (error) => {
      bodyError = error;
      controller.abort(error);
    });
  }
  try {
    if (size <= partSize) {
      const put = await connection.send(normal, controller.signal, (client, s3, request) =>
        client.send(
          new s3.PutObjectCommand({
            Bucket: connection.bucket,
            Key: objectKey,
            Body: checked,
            ContentLength: size,
          }),
          request,
        ),
      );
      return put.ETag === undefined ? {} : { etag: put.ETag };
    }
    const { s3, client } = await connection.sdk();
    const upload = new s3.Upload({
      client,
      params: { Bucket: connection.bucket, Key: objectKey, Body: checked, ContentLength: size },
      partSize,
      queueSize: UPLOAD_QUEUE,
      leavePartsOnError: false,
      abortController: controller,
    });
    // CreateMultipartUpload, one UploadPart per part, CompleteMultipartUpload.
    connection.count(Math.ceil(size / partSize) + 2);
    const done = await upload.done();
    return done.ETag === undefined ? {} : { etag: done.ETag };
  } catch (error) {
    if (bodyError !== undefined) throw bodyError;
    if (signal?.aborted) throw new AbortError(signal.reason);
    throw connection.error(error, normal, signal);
  } finally {
    signal?.removeEventListener('abort', onAbort);
    if (body instanceof Readable) body.destroy();
  }
}

/** Yields `body` unchanged, failing when it is not exactly `size` bytes. */
async function* exactly(body: Readable, size: number, key: string): AsyncGenerator<Buffer> {
  let seen = 0;
  for await (const chunk of body) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
    seen += buffer.length;
    if (seen > size) throw lengthMismatch(key, seen, size);
    yield buffer;
  }
  if (seen !== size) throw lengthMismatch(key, seen, size);
}

function lengthMismatch(key: string, seen: number, size: number): FerryError {
  return new FerryError(
    'FERRY_INTEGRITY',
    `The body for ${key} has ${seen > size ? 'more than ' : ''}${seen} bytes, not the ${size} given`,
    {
      key,
      hint: 'The data being published changed or was cut short; check the input file and publish again.',
    },
  );
}
