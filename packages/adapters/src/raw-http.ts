import type { IncomingHttpHeaders } from 'node:http';
import { connect, isIP, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';
import { AbortError, throwIfAborted } from '@ferry/manifest';

/**
 * What a source reads a response through: `node:http`'s `IncomingMessage`, or this module's
 * `RawResponse`. Both are the body as a stream, with the status and the headers (lower-case
 * names) beside it.
 */
export type HttpResponse = Readable & {
  readonly statusCode?: number | undefined;
  readonly headers: IncomingHttpHeaders;
};

/** A body-less request to an HTTP or HTTPS origin. */
export interface RawRequest {
  method: 'GET' | 'HEAD';
  /** @default 'http:' */
  protocol?: 'http:' | 'https:';
  hostname: string;
  port: number;
  /** The request target: path and query, already percent-encoded. */
  path: string;
  headers: Readonly<Record<string, string>>;
}

export interface RawSendOptions {
  signal?: AbortSignal | undefined;
  /** Time allowed until the response headers. */
  timeoutMs: number;
  /** The error a request that got no response headers in time fails with. */
  timeoutError(): Error;
}

/**
 * Socket reads land in buffers of this size by default. node:http reads 64 KiB at a time; on
 * loopback and fast links a socket holds far more, and reading it in 1 MiB steps took a
 * one-thread ranged pull of 768 MiB from nginx from 1.52 to 1.10 CPU-s (`benchmarks/README.md`).
 */
const READ_BUFFER = 1 << 20;
/** Status line and headers together; node:http allows 16 KiB. */
const MAX_HEAD = 64 * 1024;
/** The blank line that ends a response's head. */
const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');
/** A chunk-size line or a trailer line. */
const MAX_LINE = 8 * 1024;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: [^\r\n]*)?$/;
/** Headers of which node:http keeps the first of several, as this client does. */
const SINGLE = new Set([
  'age',
  'authorization',
  'content-length',
  'content-range',
  'content-type',
  'etag',
  'expires',
  'from',
  'host',
  'if-modified-since',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'proxy-authorization',
  'referer',
  'retry-after',
  'server',
  'user-agent',
]);

/** A protocol error, with a code in node:http's style, so that both clients' failures map alike. */
function parseError(detail: string, code = 'HPE_INVALID_CONSTANT'): Error {
  return Object.assign(new Error(`Parse Error: ${detail}`), { code });
}

/** A connection the server closed before the response was whole, as node:http reports it. */
function cutShort(): Error {
  return Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
}

/**
 * A keep-alive pool of HTTP/1.1 connections, plain or TLS, for body-less requests (ranged
 * GETs and HEADs), read with the socket's `onread` into 1 MiB buffers: the hot path of a pull
 * moves its bytes through one callback per socket read (per TLS record over HTTPS, 16 KiB)
 * and a stream push, instead of node:http's parser, its 64 KiB reads and the
 * `IncomingMessage` machinery around each chunk. Over TLS that took a one-thread ranged pull
 * of 768 MiB from nginx from 1.55–1.62 to 1.03–1.07 CPU-s (SHA-256 of every byte, three
 * pairs). TLS is `node:tls` with its defaults, as node:https uses them: the system's and
 * `NODE_EXTRA_CA_CERTS`'s roots, the server's name checked against its certificate (SNI for
 * names, not IP addresses), and sessions resumed per origin.
 *
 * Only what a pull needs is spoken: one request at a time per connection (no pipelining),
 * bodies framed by `Content-Length`, chunked or by the close, 1xx responses skipped.
 * Proxies stay with node:http (the sources decide). A connection reused from the pool that
 * fails before any response byte (the server closed it while idle) is replaced once,
 * transparently, as the request could not have reached the server's application.
 */
export class RawHttpPool {
  readonly #maxSockets: number;
  readonly #readBytes: number;
  readonly #idle = new Map<string, Connection[]>();
  readonly #open = new Map<string, number>();
  readonly #waiting = new Map<string, (() => void)[]>();
  /** The last TLS session of each origin, offered by its next connection. */
  readonly #sessions = new Map<string, Buffer>();
  readonly #ca: string | Buffer | undefined;
  #destroyed = false;

  /** `ca`: the roots HTTPS servers are checked against instead of the default ones. */
  constructor(options: {
    maxSockets: number;
    readBufferBytes?: number | undefined;
    ca?: string | Buffer | undefined;
  }) {
    this.#maxSockets = options.maxSockets;
    this.#readBytes = options.readBufferBytes ?? READ_BUFFER;
    this.#ca = options.ca;
  }

  /** Resolves once the response headers arrived; the body is left unread. */
  async send(request: RawRequest, options: RawSendOptions): Promise<RawResponse> {
    throwIfAborted(options.signal);
    const head = requestHead(request);
    const key = `${request.protocol ?? 'http:'}//${request.hostname}:${request.port}`;
    for (let fresh = false; ; fresh = true) {
      const connection = await this.#connection(key, request, fresh, options.signal);
      try {
        return await connection.exchange(head, request.method, options);
      } catch (error) {
        if (!(error instanceof StaleConnection)) throw error;
      }
    }
  }

  /** Closes every connection; requests in flight fail. */
  destroy(): void {
    this.#destroyed = true;
    for (const list of this.#idle.values()) for (const c of list) c.close();
    this.#idle.clear();
  }

  async #connection(
    key: string,
    request: RawRequest,
    fresh: boolean,
    signal: AbortSignal | undefined,
  ): Promise<Connection> {
    for (;;) {
      if (this.#destroyed) throw new AbortError('the source was closed');
      const idle = this.#idle.get(key);
      const reused = fresh ? undefined : idle?.pop();
      if (reused !== undefined) return reused;
      const open = this.#open.get(key) ?? 0;
      if (open < this.#maxSockets) {
        this.#open.set(key, open + 1);
        return new Connection(
          this.#opener(key, request),
          this.#readBytes,
          request.protocol === 'https:',
          (c, reusable) => this.#released(key, c, reusable),
        );
      }
      if (fresh && idle !== undefined && idle.length > 0) {
        // Full, but an idle connection can make way for the fresh one this request needs.
        idle.shift()?.close();
        continue;
      }
      await this.#slot(key, signal);
    }
  }

  /** A new socket for `request`'s origin, reading through `onread`. */
  #opener(key: string, request: RawRequest): (onread: OnRead) => Socket {
    const { hostname: host, port } = request;
    if (request.protocol !== 'https:') {
      return (onread) =>
        connect({
          host,
          port,
          noDelay: true,
          keepAlive: true,
          keepAliveInitialDelay: 1000,
          onread,
        });
    }
    return (onread) => {
      const session = this.#sessions.get(key);
      // node:tls takes `onread` as node:net does (the types leave it out).
      const options: ConnectionOptions & { onread: OnRead } = {
        host,
        port,
        ...(isIP(host) === 0 ? { servername: host } : {}),
        ...(this.#ca === undefined ? {} : { ca: this.#ca }),
        ...(session === undefined ? {} : { session }),
        onread,
      };
      const socket = tlsConnect(options);
      socket.setNoDelay(true);
      socket.setKeepAlive(true, 1000);
      socket.on('session', (session: Buffer) => this.#sessions.set(key, session));
      return socket;
    };
  }

  #slot(key: string, signal: AbortSignal | undefined): Promise<void> {
    throwIfAborted(signal);
    return new Promise((resolve, reject) => {
      const list = this.#waiting.get(key) ?? [];
      this.#waiting.set(key, list);
      const onAbort = () => {
        const at = list.indexOf(wake);
        if (at >= 0) list.splice(at, 1);
        reject(new AbortError(signal?.reason));
      };
      const wake = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      list.push(wake);
    });
  }

  /** A connection finished its exchange (`reusable`) or closed; one waiting request goes on. */
  #released(key: string, connection: Connection, reusable: boolean): void {
    if (reusable && !this.#destroyed) {
      const idle = this.#idle.get(key) ?? [];
      this.#idle.set(key, idle);
      idle.push(connection);
    } else {
      this.#open.set(key, (this.#open.get(key) ?? 1) - 1);
      const idle = this.#idle.get(key);
      const at = idle?.indexOf(connection) ?? -1;
      if (at >= 0) idle?.splice(at, 1);
    }
    this.#waiting.get(key)?.shift()?.();
  }
}

/** Thrown by a reused connection that broke before any response byte: the pool retries. */
class StaleConnection extends Error {}

type BodyState = 'length' | 'chunk-size' | 'chunk-data' | 'chunk-end' | 'trailers' | 'close';

/** One request's progress on its connection. */
interface Exchange {
  resolve(response: RawResponse): void;
  reject(error: unknown): void;
  method: 'GET' | 'HEAD';
  /** Response bytes seen: once any arrived, a failure is no longer a stale connection. */
  seen: boolean;
  head: string;
  response: RawResponse | undefined;
  state: BodyState;
  /** Bytes left of the body (`length`) or of the current chunk (`chunk-data`). */
  left: number;
  line: string;
  keepAlive: boolean;
  timer: NodeJS.Timeout | undefined;
  signal: AbortSignal | undefined;
  onAbort: () => void;
}

/**
 * Bytes a TLS connection gathers before it hands them to the body: a TLS socket delivers one
 * record (16 KiB) per read, and each chunk costs its reader a stream push, a hash update and
 * a copy into its write batch; gathered, the reader gets chunks of a whole write batch. No
 * more than the pool's read size, which `--bwlimit` lowers so that its pacer stays smooth.
 */
const TLS_GATHER = 256 * 1024;

/** What a connection gives its socket to read with. */
interface OnRead {
  buffer: () => Buffer;
  callback: (bytes: number, buffer: Uint8Array) => boolean;
}

class Connection {
  readonly #socket: Socket;
  readonly #released: (connection: Connection, reusable: boolean) => void;
  readonly #readBytes: number;
  #buffer: Buffer | undefined;
  /** TLS: small reads are gathered here (see `TLS_GATHER`) for `#gathering`'s body; 0: not. */
  readonly #gatherSize: number;
  #gather: Buffer | undefined;
  #gathered = 0;
  #gathering: RawResponse | undefined;
  #handOverQueued = false;
  #exchange: Exchange | undefined;
  /** Exchanges done on this socket: a failure of a reused one before any byte is stale. */
  #served = 0;
  #gone = false;

  constructor(
    open: (onread: OnRead) => Socket,
    readBytes: number,
    gathers: boolean,
    released: (connection: Connection, reusable: boolean) => void,
  ) {
    this.#gatherSize = gathers ? Math.min(TLS_GATHER, readBytes) : 0;
    this.#released = released;
    this.#readBytes = readBytes;
    this.#socket = open({
      buffer: () => {
        this.#buffer ??= Buffer.allocUnsafe(this.#readBytes);
        return this.#buffer;
      },
      callback: (bytes, buffer) => this.#read(bytes, buffer as Buffer),
    });
    this.#socket.on('error', (error) => this.#ended(error));
    this.#socket.on('close', () => this.#ended(undefined));
  }

  exchange(head: string, method: 'GET' | 'HEAD', options: RawSendOptions): Promise<RawResponse> {
    if (this.#served > 0) this.#socket.ref();
    return new Promise((resolve, reject) => {
      const { signal } = options;
      const exchange: Exchange = {
        resolve,
        reject,
        method,
        seen: false,
        head: '',
        response: undefined,
        state: 'length',
        left: 0,
        line: '',
        keepAlive: false,
        timer: setTimeout(() => this.#fail(options.timeoutError()), options.timeoutMs),
        signal,
        onAbort: () => this.#fail(new AbortError(signal?.reason)),
      };
      this.#exchange = exchange;
      signal?.addEventListener('abort', exchange.onAbort, { once: true });
      // The last body may have paused the socket before it ended.
      this.#socket.resume();
      this.#socket.write(head);
    });
  }

  close(): void {
    this.#socket.destroy();
  }

  /** The socket's read callback; `false` pauses the socket until the body is read again. */
  #read(bytes: number, buffer: Buffer): boolean {
    const exchange = this.#exchange;
    if (exchange === undefined) {
      // Nothing was asked: a server that talks out of turn cannot be trusted with the next.
      this.close();
      return false;
    }
    exchange.seen = true;
    let at = 0;
    let flowing = true;
    try {
      while (at < bytes && this.#exchange === exchange) {
        if (exchange.response === undefined) {
          at = this.#readHead(exchange, buffer, at, bytes);
          continue;
        }
        switch (exchange.state) {
          case 'length':
          case 'chunk-data': {
            const take = Math.min(exchange.left, bytes - at);
            flowing = this.#deliver(exchange.response, buffer, at, take, bytes) && flowing;
            at += take;
            exchange.left -= take;
            if (exchange.left === 0) {
              if (exchange.state === 'length') this.#complete(exchange, at < bytes);
              else exchange.state = 'chunk-end';
            }
            break;
          }
          case 'close':
            flowing = this.#deliver(exchange.response, buffer, at, bytes - at, bytes) && flowing;
            at = bytes;
            break;
          default:
            at = this.#readLine(exchange, buffer, at, bytes);
        }
      }
    } catch (error) {
      this.#fail(error);
      return false;
    }
    // A body that is whole no longer holds the socket back: it must hear the next response.
    return flowing || this.#exchange !== exchange;
  }

  /** Reads status line and headers; returns where the body starts, or `end` if not yet. */
  #readHead(exchange: Exchange, buffer: Buffer, at: number, end: number): number {
    const before = exchange.head.length;
    // Only the head's bytes become text: the read that holds it usually holds the start of
    // the body too (all of a small file's). Turning up to 64 KiB of it into a string made
    // 64 MiB of strings for 1,000 files of 64 KiB; without them such a pull from s3rver took
    // 1.11 CPU-s instead of 1.19 and 85 MiB of peak RSS instead of 118 (ten pairs).
    const found = buffer.subarray(at, end).indexOf(HEAD_END);
    const headEnd = found < 0 ? end : at + found + HEAD_END.length;
    exchange.head += buffer.toString('latin1', at, Math.min(headEnd, at + MAX_HEAD + 4 - before));
    const stop = exchange.head.indexOf('\r\n\r\n', Math.max(0, before - 3));
    if (stop < 0) {
      if (exchange.head.length > MAX_HEAD)
        throw parseError('Header overflow', 'HPE_HEADER_OVERFLOW');
      return end;
    }
    const text = exchange.head.slice(0, stop);
    const bodyAt = at + stop + 4 - before;
    exchange.head = '';
    const { statusCode, version, headers } = parseHead(text);
    if (statusCode >= 100 && statusCode < 200) return bodyAt;
    const connection = String(headers.connection ?? '').toLowerCase();
    exchange.keepAlive =
      version === 1 ? !/(^|,)\s*close\s*(,|$)/.test(connection) : /keep-alive/.test(connection);
    const framing = bodyFraming(exchange.method, statusCode, headers);
    const response = new RawResponse(statusCode, headers, this.#socket);
    exchange.response = response;
    clearTimeout(exchange.timer);
    exchange.signal?.removeEventListener('abort', exchange.onAbort);
    response.abandon = () => {
      if (this.#exchange === exchange) this.close();
    };
    exchange.resolve(response);
    if (framing === 'close') {
      exchange.state = 'close';
      exchange.keepAlive = false;
    } else if (framing === 'chunked') {
      exchange.state = 'chunk-size';
    } else if (framing === 0) {
      this.#complete(exchange, bodyAt < end);
    } else {
      exchange.state = 'length';
      exchange.left = framing;
    }
    return bodyAt;
  }

  /** Chunk-size lines, the CRLF after a chunk, and trailers. */
  #readLine(exchange: Exchange, buffer: Buffer, at: number, end: number): number {
    const newline = buffer.indexOf(10, at);
    const stop = newline < 0 || newline >= end ? end : newline + 1;
    exchange.line += buffer.toString('latin1', at, stop);
    if (exchange.line.length > MAX_LINE) throw parseError('Chunk line too long');
    if (!exchange.line.endsWith('\r\n')) {
      if (stop < end || exchange.line.endsWith('\n')) throw parseError('Bare LF in chunked body');
      return stop;
    }
    const line = exchange.line.slice(0, -2);
    exchange.line = '';
    if (exchange.state === 'chunk-end') {
      if (line !== '') throw parseError('Missing CRLF after a chunk', 'HPE_STRICT');
      exchange.state = 'chunk-size';
    } else if (exchange.state === 'chunk-size') {
      const size = /^([0-9A-Fa-f]{1,12})[ \t]*(;.*)?$/.exec(line);
      if (size === null)
        throw parseError('Invalid character in chunk size', 'HPE_INVALID_CHUNK_SIZE');
      exchange.left = Number.parseInt(size[1] as string, 16);
      exchange.state = exchange.left === 0 ? 'trailers' : 'chunk-data';
    } else if (line === '') {
      this.#complete(exchange, stop < end);
    }
    return stop;
  }

  /** Hands `[at, at + length)` of the read to the body; `false` if it wants no more for now. */
  #deliver(
    response: RawResponse,
    buffer: Buffer,
    at: number,
    length: number,
    read: number,
  ): boolean {
    if (length === 0) return true;
    if (this.#gatherSize > 0) return this.#gatherBytes(response, buffer, at, length);
    // A small read that cannot be lent is copied: most of its buffer is not body.
    if (!canLend(response) && read < this.#readBytes / 2) {
      const chunk = Buffer.allocUnsafe(length);
      buffer.copy(chunk, 0, at, at + length);
      return response.push(chunk);
    }
    return pushView(response, buffer.subarray(at, at + length), () => {
      if (this.#buffer === buffer) this.#buffer = undefined;
    });
  }

  /**
   * Copies a small read into the gathering buffer, handing it to the body when full and, at
   * the latest, once the event loop has read everything ready (`setImmediate`); `false` if the
   * body wants no more for now.
   */
  #gatherBytes(response: RawResponse, buffer: Buffer, at: number, length: number): boolean {
    let more = true;
    for (let from = at, end = at + length; from < end; ) {
      this.#gather ??= Buffer.allocUnsafe(this.#gatherSize);
      const take = Math.min(end - from, this.#gatherSize - this.#gathered);
      buffer.copy(this.#gather, this.#gathered, from, from + take);
      this.#gathered += take;
      this.#gathering = response;
      from += take;
      if (this.#gathered === this.#gatherSize) more = this.#handOver() && more;
    }
    if (this.#gathered > 0 && !this.#handOverQueued) {
      this.#handOverQueued = true;
      setImmediate(() => {
        this.#handOverQueued = false;
        if (!this.#handOver()) this.#socket.pause();
      });
    }
    return more;
  }

  /** Pushes what is gathered to its body; `false` if the body wants no more for now. */
  #handOver(): boolean {
    const response = this.#gathering;
    const gather = this.#gather;
    if (response === undefined || gather === undefined || this.#gathered === 0) return true;
    const chunk = gather.subarray(0, this.#gathered);
    this.#gathered = 0;
    this.#gathering = undefined;
    return pushView(response, chunk, () => {
      this.#gather = undefined;
    });
  }

  /** The body is whole; the connection goes back to the pool unless bytes follow it or it must close. */
  #complete(exchange: Exchange, trailing: boolean): void {
    this.#handOver();
    exchange.response?.push(null);
    this.#exchange = undefined;
    this.#served += 1;
    if (!exchange.keepAlive || trailing) {
      this.close();
      return;
    }
    this.#socket.unref();
    this.#released(this, true);
  }

  /** Ends the exchange in flight with `error` (before its headers: the request fails). */
  #fail(error: unknown): void {
    this.#gathered = 0;
    this.#gathering = undefined;
    const exchange = this.#exchange;
    this.close();
    if (exchange === undefined) return;
    this.#exchange = undefined;
    clearTimeout(exchange.timer);
    exchange.signal?.removeEventListener('abort', exchange.onAbort);
    if (exchange.response === undefined) exchange.reject(error);
    else exchange.response.destroy(error instanceof Error ? error : new Error(String(error)));
  }

  /** The socket closed or failed: the exchange in flight fails, the pool forgets the socket. */
  #ended(error: Error | undefined): void {
    const exchange = this.#exchange;
    if (exchange !== undefined) {
      if (exchange.response !== undefined && exchange.state === 'close' && error === undefined) {
        this.#complete(exchange, false);
      } else if (!exchange.seen && this.#served > 0) {
        this.#fail(new StaleConnection());
      } else {
        this.#fail(error ?? cutShort());
      }
    }
    this.close();
    if (!this.#gone) {
      this.#gone = true;
      this.#released(this, false);
    }
  }
}

/** The body reads a chunk before `push` returns: it can be lent its memory (`RawResponse.lend`). */
function canLend(response: RawResponse): boolean {
  return response.lending && response.readableFlowing === true && response.readableLength === 0;
}

/**
 * Pushes `view`, a view of a buffer the connection reuses: lent when the body reads it at
 * once, else the body keeps it and `giveUp` makes the connection read into a new buffer (so
 * too when the stream kept a lent chunk all the same).
 */
function pushView(response: RawResponse, view: Buffer, giveUp: () => void): boolean {
  const lent = canLend(response);
  const more = response.push(view);
  if (!lent || response.readableLength > 0) giveUp();
  return more;
}

/** A response read by `RawHttpPool`: the body as a stream that pauses the socket when full. */
export class RawResponse extends Readable {
  readonly statusCode: number;
  readonly headers: IncomingHttpHeaders;
  readonly #socket: Socket;
  #lending = false;
  /** Set by the connection: the body was dropped before its end, so the socket must close. */
  abandon: () => void = () => {};

  constructor(statusCode: number, headers: IncomingHttpHeaders, socket: Socket) {
    super();
    // A body can fail before its reader attaches (a bad chunk in the read that brought the
    // headers): the error stays on the stream (`errored`, `finished`, async iteration) instead
    // of escaping as an uncaught 'error' event.
    this.on('error', () => {});
    this.statusCode = statusCode;
    this.headers = headers;
    this.#socket = socket;
  }

  /**
   * From now on a chunk is lent: its memory holds the next socket read once its 'data'
   * listener returned, so that a large body is read through one buffer and allocates
   * nothing. Only for a reader that hashes, writes or copies every chunk before returning.
   */
  lend(): void {
    this.#lending = true;
  }

  get lending(): boolean {
    return this.#lending;
  }

  override _read(): void {
    if (!this.#socket.destroyed) this.#socket.resume();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.readableEnded) this.abandon();
    callback(error);
  }
}

/** The request's head, checked as node:http checks it: nothing that could split a header. */
function requestHead(request: RawRequest): string {
  if (!/^[\x21-\x7e]+$/.test(request.path)) {
    throw Object.assign(new TypeError('Request path contains unescaped characters'), {
      code: 'ERR_UNESCAPED_CHARACTERS',
    });
  }
  let host: string | undefined;
  let head = `${request.method} ${request.path} HTTP/1.1\r\n`;
  for (const [name, value] of Object.entries(request.headers)) {
    if (!TOKEN.test(name)) {
      throw Object.assign(new TypeError(`Header name must be a valid HTTP token ["${name}"]`), {
        code: 'ERR_INVALID_HTTP_TOKEN',
      });
    }
    if (/[^\t\x20-\x7e\x80-\xff]/.test(value)) {
      throw Object.assign(new TypeError(`Invalid character in header content ["${name}"]`), {
        code: 'ERR_INVALID_CHAR',
      });
    }
    if (name.toLowerCase() === 'host') host = value;
    else head += `${name}: ${value}\r\n`;
  }
  const hostname = request.hostname.includes(':') ? `[${request.hostname}]` : request.hostname;
  const defaultPort = request.protocol === 'https:' ? 443 : 80;
  host ??= request.port === defaultPort ? hostname : `${hostname}:${request.port}`;
  return `${head}Host: ${host}\r\nConnection: keep-alive\r\n\r\n`;
}

function parseHead(text: string): {
  statusCode: number;
  version: 0 | 1;
  headers: IncomingHttpHeaders;
} {
  const lines = text.split('\r\n');
  const status = STATUS_LINE.exec(lines[0] ?? '');
  if (status === null) throw parseError(`Invalid status line "${(lines[0] ?? '').slice(0, 80)}"`);
  const headers: Record<string, string | string[]> = {};
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon) : '';
    if (!TOKEN.test(name)) throw parseError('Invalid header token', 'HPE_INVALID_HEADER_TOKEN');
    const value = line.slice(colon + 1).trim();
    if (/[\0\r\n]/.test(value))
      throw parseError('Invalid header value char', 'HPE_INVALID_HEADER_TOKEN');
    const lower = name.toLowerCase();
    const prior = headers[lower];
    if (prior === undefined) headers[lower] = lower === 'set-cookie' ? [value] : value;
    else if (Array.isArray(prior)) prior.push(value);
    else if (lower === 'content-length' && prior !== value) {
      throw parseError('Duplicate Content-Length', 'HPE_UNEXPECTED_CONTENT_LENGTH');
    } else if (!SINGLE.has(lower)) headers[lower] = `${prior}, ${value}`;
  }
  return { statusCode: Number(status[2]), version: status[1] === '1' ? 1 : 0, headers };
}

/** How the body ends: its length, chunked, or at the close (RFC 9112 §6.3). */
function bodyFraming(
  method: 'GET' | 'HEAD',
  statusCode: number,
  headers: IncomingHttpHeaders,
): number | 'chunked' | 'close' {
  if (method === 'HEAD' || statusCode === 204 || statusCode === 304) return 0;
  const encoding = headers['transfer-encoding'];
  const length = headers['content-length'];
  if (encoding !== undefined) {
    if (length !== undefined) {
      throw parseError('Content-Length with Transfer-Encoding', 'HPE_UNEXPECTED_CONTENT_LENGTH');
    }
    return /(^|,)\s*chunked\s*$/i.test(encoding) ? 'chunked' : 'close';
  }
  if (length === undefined) return 'close';
  if (!/^\d{1,15}$/.test(length))
    throw parseError('Invalid Content-Length', 'HPE_INVALID_CONTENT_LENGTH');
  return Number(length);
}
