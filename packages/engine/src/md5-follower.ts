import { createHash, type Hash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { partRange } from '@ferry/manifest';

/** Bytes read back per step: small enough that the main thread is never busy for long. */
const READ_SIZE = 1 << 20;

/**
 * The MD5 of a file whose parts land out of order, computed in file order as the parts
 * below it complete: each part is read back once, from the page cache, right after it was
 * written, so the check a plain S3 listing needs (its ETag is the only identity it has)
 * costs no second pass over the file after the transfer and adds only the last part's
 * hashing to the time a file takes.
 */
export class Md5Follower {
  readonly #path: string;
  readonly #partSize: number;
  readonly #size: number;
  readonly #done: boolean[];
  readonly #hash: Hash = createHash('md5');
  #next = 0;
  #running: Promise<void> = Promise.resolve();

  constructor(path: string, size: number, partSize: number, parts: number) {
    this.#path = path;
    this.#size = size;
    this.#partSize = partSize;
    this.#done = new Array(parts).fill(false);
  }

  /** Part `index` is written: hash it and every completed part after it that is now in order. */
  partDone(index: number): void {
    this.#done[index] = true;
    const step = this.#running.then(() => this.#advance());
    // Kept for digest() to report; not an unhandled rejection meanwhile.
    step.catch(() => {});
    this.#running = step;
  }

  /** The hex MD5, once every part was reported done; rejects if reading back failed. */
  async digest(): Promise<string> {
    await this.#running;
    if (this.#next < this.#done.length) {
      throw new Error(`Md5Follower: part ${this.#next} of ${this.#path} was never reported done`);
    }
    return this.#hash.digest('hex');
  }

  async #advance(): Promise<void> {
    if (this.#done[this.#next] !== true) return;
    const handle = await open(this.#path, 'r');
    try {
      const buffer = Buffer.allocUnsafe(READ_SIZE);
      while (this.#done[this.#next] === true) {
        const { start, end } = partRange(this.#size, this.#partSize, this.#next);
        for (let at = start; at < end; ) {
          const { bytesRead } = await handle.read(buffer, 0, Math.min(READ_SIZE, end - at), at);
          if (bytesRead === 0) throw new Error(`${this.#path} ended at byte ${at}, before ${end}`);
          this.#hash.update(buffer.subarray(0, bytesRead));
          at += bytesRead;
        }
        this.#next += 1;
      }
    } finally {
      await handle.close();
    }
  }
}
