import { randomUUID } from 'node:crypto';
import { type BigIntStats, constants, type Dirent } from 'node:fs';
import { copyFile, mkdir, open, readdir, realpath, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { AbortError, compareUtf8, FerryError, isFerryError, throwIfAborted } from '@ferry/manifest';
import { checkedRead } from './checked-body.js';
import { checkEtag, checkRangeRequest, type RangeRequest } from './http-response.js';
import { readAllText } from './read-all-text.js';
import type {
  ObjectInfo,
  OpenedRange,
  ReadOptions,
  ReadTextOptions,
  SignalOptions,
  Source,
  SourceCapabilities,
  SourceMetrics,
  WriteOptions,
} from './source.js';
import { checkKey, checkListedKey, checkPrefix } from './source-key.js';

/** Names `write()` gives its partial files; listings skip them. */
const TEMP_PREFIX = '.ferry-tmp-';

/**
 * A directory on the local filesystem as a source. Reads are ranged file reads, listing
 * walks the tree in key order (UTF-8 byte order, as S3 lists; `compareUtf8`), and symlinks are followed
 * only while they resolve inside the root: anything else is FERRY_BAD_PATH.
 *
 * The ETag is `"<inode>-<size>-<mtime ns>"` in hex: a strong token that changes when the
 * file is replaced (a rename brings a new inode) or its size or mtime changes. It is not a
 * content hash: an in-place rewrite of the same size within the filesystem's timestamp
 * granularity keeps the token.
 *
 * `write()` streams to a temp file next to the target, fsyncs it and renames it into
 * place, so a reader never sees half a file.
 */
export class LocalSource implements Source {
  readonly uri: string;
  readonly capabilities: SourceCapabilities = { list: true, rangeReads: true, write: true };
  readonly metrics: SourceMetrics = { requests: 0, bytesRead: 0 };
  readonly #root: string;
  #realRoot: Promise<string> | undefined;

  /** `root` must be absolute; `openSource` resolves relative paths. */
  constructor(root: string) {
    this.#root = root;
    this.uri = pathToFileURL(root).href;
  }

  async *list(prefix?: string, options: SignalOptions = {}): AsyncIterable<ObjectInfo> {
    const wanted = checkPrefix(prefix);
    const root = await this.#resolveRoot();
    const slash = wanted.lastIndexOf('/');
    const startDir = slash === -1 ? '' : wanted.slice(0, slash);
    const start = await this.#inside(root, startDir, startDir).catch((error: unknown) => {
      if (isFerryError(error, 'FERRY_NOT_FOUND')) return undefined;
      throw error;
    });
    if (start === undefined) return;
    yield* this.#walk(root, start, startDir, wanted, new Set([start]), options.signal);
  }

  async stat(key: string, options: SignalOptions = {}): Promise<ObjectInfo> {
    throwIfAborted(options.signal);
    const normal = checkKey(key);
    const file = await this.#inside(await this.#resolveRoot(), normal, normal);
    this.metrics.requests += 1;
    const info = await stat(file, { bigint: true }).catch((error: unknown) => {
      throw fsError(error, normal, file);
    });
    if (!info.isFile()) throw notAFile(normal, file);
    return objectInfo(normal, info);
  }

  read(key: string, options: ReadOptions = {}): Promise<Readable> {
    return checkedRead(this, key, options);
  }

  async openRange(key: string, options: ReadOptions = {}): Promise<OpenedRange> {
    const { signal, ifMatch } = options;
    throwIfAborted(signal);
    const normal = checkKey(key);
    const start = options.start ?? 0;
    const file = await this.#inside(await this.#resolveRoot(), normal, normal);
    const request: RangeRequest = { key: normal, url: file, start, end: options.end, ifMatch };
    checkRangeRequest(request);
    this.metrics.requests += 1;
    const handle = await open(file, 'r').catch((error: unknown) => {
      throw fsError(error, normal, file);
    });
    try {
      const info = await handle.stat({ bigint: true });
      if (!info.isFile()) throw notAFile(normal, file);
      const size = Number(info.size);
      checkEtag(request, localEtag(info));
      const end = options.end ?? size;
      if (end > size || start > end) {
        throw new FerryError(
          'FERRY_RANGE_MISMATCH',
          `Range [${start}, ${end}) is outside ${file} (${size} bytes)`,
          {
            key: normal,
            hint: 'The file is shorter than expected, so it probably changed; run the command again.',
          },
        );
      }
      throwIfAborted(signal);
      if (start === end) {
        await handle.close();
        return { ...this.#rangeErrors(normal, file), body: Readable.from([]), length: 0 };
      }
      return {
        ...this.#rangeErrors(normal, file),
        body: handle.createReadStream({ start, end: end - 1 }),
        length: end - start,
      };
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  #rangeErrors(key: string, file: string): Omit<OpenedRange, 'body' | 'length'> {
    return {
      mapError: (error) => fsError(error, key, file),
      shortError: (received, expected) =>
        new FerryError(
          'FERRY_SOURCE_CHANGED',
          `${file} ended after ${received} of ${expected} bytes`,
          {
            key,
            hint: 'The file shrank during the transfer; run the command again.',
          },
        ),
      longError: (expected) =>
        new FerryError('FERRY_SOURCE_CHANGED', `${file} delivered more than ${expected} bytes`, {
          key,
          hint: 'The file changed during the transfer; run the command again.',
        }),
    };
  }

  async delete(key: string, options: SignalOptions = {}): Promise<void> {
    throwIfAborted(options.signal);
    const normal = checkKey(key);
    let file: string;
    try {
      file = await this.#inside(await this.#resolveRoot(), normal, normal);
    } catch (error) {
      if (isFerryError(error, 'FERRY_NOT_FOUND')) return;
      throw error;
    }
    this.metrics.requests += 1;
    await unlink(file).catch((error: unknown) => {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw fsError(error, normal, file);
    });
  }

  async readText(key: string, options: ReadTextOptions = {}): Promise<string> {
    return readAllText(await this.read(key, options), key, options.maxBytes);
  }

  async writeText(key: string, text: string, options: SignalOptions = {}): Promise<void> {
    const body = Buffer.from(text, 'utf8');
    await this.write(key, body, { size: body.length, signal: options.signal });
  }

  async write(
    key: string,
    body: Readable | Uint8Array,
    options: WriteOptions,
  ): Promise<{ etag?: string }> {
    const { signal, size } = options;
    throwIfAborted(signal);
    const normal = checkKey(key);
    const realParent = await this.#targetFolder(normal);
    const temp = join(realParent, `${TEMP_PREFIX}${randomUUID()}`);
    const handle = await open(temp, 'wx').catch((error: unknown) => {
      throw fsError(error, normal, temp);
    });
    let written = 0;
    try {
      const chunks: AsyncIterable<Uint8Array> | Uint8Array[] =
        body instanceof Uint8Array ? [body] : body;
      for await (const chunk of chunks) {
        throwIfAborted(signal);
        written += chunk.length;
        if (written > size) break;
        await handle.write(chunk);
      }
      if (written !== size) {
        throw new FerryError(
          'FERRY_INTEGRITY',
          `The body for ${normal} has ${written > size ? 'more than ' : ''}${written} bytes, not the ${size} given`,
          {
            key: normal,
            hint: 'The data being published changed or was cut short; check the input file and publish again.',
          },
        );
      }
      await handle.sync();
      await handle.close();
      this.metrics.requests += 1;
      await rename(temp, join(realParent, normal.slice(normal.lastIndexOf('/') + 1)));
    } catch (error) {
      if (body instanceof Readable) body.destroy();
      await handle.close().catch(() => {});
      await unlink(temp).catch(() => {});
      throw isFerryError(error) || error instanceof AbortError
        ? error
        : fsError(error, normal, temp);
    }
    const { etag } = await this.stat(normal);
    return etag === undefined ? {} : { etag };
  }

  async copy(from: string, to: string, options: SignalOptions = {}): Promise<void> {
    throwIfAborted(options.signal);
    const source = checkKey(from);
    const normal = checkKey(to);
    const file = await this.#inside(await this.#resolveRoot(), source, source);
    const realParent = await this.#targetFolder(normal);
    const temp = join(realParent, `${TEMP_PREFIX}${randomUUID()}`);
    try {
      // A reflink where the file system has them, else a copy; either way a new file whose
      // modification time is now, as `write` gives.
      await copyFile(file, temp, constants.COPYFILE_FICLONE);
      const handle = await open(temp, 'r+');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
      this.metrics.requests += 1;
      await rename(temp, join(realParent, normal.slice(normal.lastIndexOf('/') + 1)));
    } catch (error) {
      await unlink(temp).catch(() => {});
      throw isFerryError(error) ? error : fsError(error, source, file);
    }
  }

  async close(): Promise<void> {}

  /**
   * The real folder `key` goes in, created as needed (the root too: publishing to a new
   * folder is normal), never through a symlink that leads outside the root.
   */
  async #targetFolder(normal: string): Promise<string> {
    await mkdir(this.#root, { recursive: true }).catch((error: unknown) => {
      throw fsError(error, normal, this.#root);
    });
    const root = await this.#resolveRoot();
    const target = join(root, ...normal.split('/'));
    const parent = dirname(target);
    // Refuse before mkdir creates anything through a symlinked directory that leads out.
    await this.#existingAncestorInside(root, parent, normal);
    await mkdir(parent, { recursive: true }).catch((error: unknown) => {
      throw fsError(error, normal, parent);
    });
    // The parent may be a symlink resolving elsewhere; never write through it.
    const parentKey = normal.includes('/') ? normal.slice(0, normal.lastIndexOf('/')) : '';
    return this.#inside(root, parentKey, normal);
  }

  #resolveRoot(): Promise<string> {
    this.#realRoot ??= realpath(this.#root).catch((error: unknown) => {
      this.#realRoot = undefined;
      throw new FerryError('FERRY_NOT_FOUND', `The source directory ${this.#root} does not exist`, {
        key: this.#root,
        cause: error,
        remoteCode: 'NoSuchDirectory',
        hint: 'Check the path given as the source; an object store needs its scheme (s3://bucket/prefix, https://host/path).',
      });
    });
    return this.#realRoot;
  }

  /**
   * The real path of `relative` under `root`, refusing symlinks that resolve outside it.
   * `key` names the object the caller asked about, for the error.
   */
  async #inside(root: string, relative: string, key: string): Promise<string> {
    const path = relative === '' ? root : join(root, ...relative.split('/'));
    const real = await realpath(path).catch((error: unknown) => {
      throw fsError(error, key, path);
    });
    if (!isInside(root, real)) throw outsideRoot(key, path, real);
    return real;
  }

  async #existingAncestorInside(root: string, dir: string, key: string): Promise<void> {
    for (let current = dir; ; current = dirname(current)) {
      const real = await realpath(current).catch(() => undefined);
      if (real !== undefined) {
        if (!isInside(root, real)) throw outsideRoot(key, current, real);
        return;
      }
      if (current === root || dirname(current) === current) return;
    }
  }

  async *#walk(
    root: string,
    dir: string,
    dirKey: string,
    wanted: string,
    chain: Set<string>,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<ObjectInfo> {
    throwIfAborted(signal);
    this.metrics.requests += 1;
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (error) {
      throw fsError(error, dirKey, dir);
    }
    const children: Array<{ name: string; sortKey: string; kind: 'file' | 'dir'; path: string }> =
      [];
    for (const entry of entries) {
      if (entry.name.startsWith(TEMP_PREFIX)) continue;
      const key = dirKey === '' ? entry.name : `${dirKey}/${entry.name}`;
      // Only entries that can hold keys starting with the prefix.
      if (!key.startsWith(wanted) && !wanted.startsWith(`${key}/`)) continue;
      let path = join(dir, entry.name);
      let isDir = entry.isDirectory();
      let isFile = entry.isFile();
      if (entry.isSymbolicLink()) {
        const real = await realpath(path).catch(() => undefined);
        if (real === undefined) continue; // dangling link: nothing to read
        if (!isInside(root, real)) throw outsideRoot(key, path, real);
        const target = await stat(real).catch(() => undefined);
        if (target === undefined) continue;
        path = real;
        isDir = target.isDirectory();
        isFile = target.isFile();
      }
      if (!isDir && !isFile) continue; // sockets, fifos, devices
      // Walking a directory in place of `name/` keeps keys in byte order: `a-b` < `a/c`.
      const sortKey = isDir ? `${entry.name}/` : entry.name;
      children.push({ name: entry.name, sortKey, kind: isDir ? 'dir' : 'file', path });
    }
    children.sort((a, b) => compareUtf8(a.sortKey, b.sortKey));
    for (const child of children) {
      const key = dirKey === '' ? child.name : `${dirKey}/${child.name}`;
      if (child.kind === 'dir') {
        if (chain.has(child.path)) continue; // a symlink loop back to an ancestor
        yield* this.#walk(root, child.path, key, wanted, new Set([...chain, child.path]), signal);
        continue;
      }
      const info = await stat(child.path, { bigint: true }).catch(() => undefined);
      if (info === undefined || !info.isFile()) continue; // removed while listing
      yield objectInfo(checkListedKey(key, this.uri), info);
    }
  }
}

function localEtag(info: BigIntStats): string {
  return `"${info.ino.toString(16)}-${info.size.toString(16)}-${info.mtimeNs.toString(16)}"`;
}

function objectInfo(key: string, info: BigIntStats): ObjectInfo {
  return {
    key,
    size: Number(info.size),
    etag: localEtag(info),
    lastModified: new Date(Number(info.mtimeMs)),
  };
}

/** Whether the real path `real` is `root` or below it (the file system root included). */
function isInside(root: string, real: string): boolean {
  return real === root || real.startsWith(root.endsWith(sep) ? root : root + sep);
}

function outsideRoot(key: string, path: string, real: string): FerryError {
  return new FerryError(
    'FERRY_BAD_PATH',
    `${path} is a symlink resolving outside the source root (to ${real})`,
    {
      key,
      hint: 'Replace the symlink with the file itself, or open the source at a directory that contains its target.',
    },
  );
}

function notAFile(key: string, path: string): FerryError {
  return new FerryError('FERRY_NOT_FOUND', `${path} is not a regular file`, {
    key,
    hint: 'Keys name files; list the directory to see the files under it.',
  });
}

function fsError(error: unknown, key: string, path: string): FerryError {
  if (isFerryError(error)) return error;
  const code =
    typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : undefined;
  if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') {
    return new FerryError('FERRY_NOT_FOUND', `Not found: ${path}`, {
      key,
      cause: error,
      hint: 'Check the source directory and the path; list the directory to see what exists.',
    });
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return new FerryError('FERRY_ACCESS_DENIED', `Permission denied: ${path}`, {
      key,
      cause: error,
      hint: 'Give the user running ferry read permission on the file (and write permission on the directory to publish).',
    });
  }
  return new FerryError('FERRY_IO', `File system error on ${path} (${code ?? String(error)})`, {
    key,
    cause: error,
    hint: 'Check the disk and the file system (space, mount state, hardware errors).',
  });
}
