import {
  type AgentOptions,
  type ClientRequest,
  Agent as HttpAgent,
  type RequestOptions,
  request,
} from 'node:http';
import { Agent as HttpsAgent, type AgentOptions as HttpsAgentOptions } from 'node:https';
import { connect, isIP, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { RawHttpPool } from './raw-http.js';

/**
 * The proxy for requests to `target`, from `HTTPS_PROXY` / `HTTP_PROXY` (either case), unless
 * `NO_PROXY` names the host: `*`, a host name (its subdomains too; a leading `.` is
 * optional), an address, each optionally with `:port`. That is how curl, the AWS CLI and a
 * peer-to-peer proxy such as Dragonfly's dfdaemon expect to be configured. Loopback
 * targets (localhost, 127.0.0.0/8, ::1) go direct unless `NO_PROXY` is set at all, as Go's
 * clients do: a proxy elsewhere cannot reach this machine's loopback.
 */
export function proxyFor(
  target: URL,
  env: Record<string, string | undefined> = process.env,
): URL | undefined {
  const https = target.protocol === 'https:';
  const raw = https ? (env.HTTPS_PROXY ?? env.https_proxy) : (env.HTTP_PROXY ?? env.http_proxy);
  if (raw === undefined || raw === '') return undefined;
  const host = target.hostname.toLowerCase().replace(/^\[|\]$/g, '');
  const port = target.port || (https ? '443' : '80');
  const noProxy = env.NO_PROXY ?? env.no_proxy;
  if (noProxy === undefined && /^(localhost|127\.\d+\.\d+\.\d+|::1)$/.test(host)) return undefined;
  for (const item of (noProxy ?? '').split(',')) {
    const rule = item.trim().toLowerCase();
    if (rule === '') continue;
    if (rule === '*') return undefined;
    const [name = '', rulePort] = rule.replace(/^\./, '').split(/:(?=\d+$)/);
    if (rulePort !== undefined && rulePort !== port) continue;
    if (host === name || host.endsWith(`.${name}`)) return undefined;
  }
  return new URL(raw.includes('://') ? raw : `http://${raw}`);
}

function proxyAuthorization(proxy: URL): Record<string, string> {
  if (proxy.username === '') return {};
  const user = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
  return { 'proxy-authorization': `Basic ${Buffer.from(user).toString('base64')}` };
}

/**
 * Plain HTTP through a forward proxy: connections go to the proxy, and each request names
 * its target in absolute form (`GET http://host/path`), which caching and peer-to-peer
 * proxies need to see.
 */
class HttpProxyAgent extends HttpAgent {
  readonly #proxy: URL;

  constructor(proxy: URL, options: AgentOptions) {
    super(options);
    this.#proxy = proxy;
  }

  override createConnection(): Socket {
    return connect(Number(this.#proxy.port || 80), this.#proxy.hostname);
  }

  /** Rewrites the request line to the absolute form before the headers are sent. */
  addRequest(req: ClientRequest, options: { host?: string; port?: number | string }): void {
    const port =
      options.port === undefined || Number(options.port) === 80 ? '' : `:${options.port}`;
    req.path = `http://${options.host}${port}${req.path}`;
    for (const [name, value] of Object.entries(proxyAuthorization(this.#proxy))) {
      req.setHeader(name, value);
    }
    (
      HttpAgent.prototype as unknown as { addRequest: (...args: unknown[]) => void }
    ).addRequest.call(this, req, options);
  }
}

/** HTTPS through a forward proxy: a `CONNECT` tunnel per connection, TLS inside it. */
export class HttpsProxyAgent extends HttpsAgent {
  readonly #proxy: URL;

  constructor(proxy: URL, options: HttpsAgentOptions) {
    super(options);
    this.#proxy = proxy;
  }

  override createConnection(
    options: RequestOptions,
    callback?: (error: Error | null, stream: Duplex) => void,
  ): undefined {
    const target = `${options.host}:${options.port ?? 443}`;
    const fail = (error: Error) => callback?.(error, undefined as unknown as Duplex);
    const connectRequest = request({
      host: this.#proxy.hostname,
      port: Number(this.#proxy.port || 80),
      method: 'CONNECT',
      path: target,
      headers: { host: target, ...proxyAuthorization(this.#proxy) },
    });
    connectRequest.once('connect', (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        fail(
          new Error(`proxy ${this.#proxy.host} refused CONNECT ${target} (HTTP ${res.statusCode})`),
        );
        return;
      }
      // The request's TLS settings (the agent's CA bundle among them) apply inside the tunnel.
      const host = options.hostname ?? options.host ?? '';
      // Without `path`: with a socket given it would still read as a Unix socket to connect to.
      const { path: _path, ...tlsOptions } = options;
      const tls: TLSSocket = tlsConnect({
        ...(tlsOptions as object),
        socket,
        ...(isIP(host) === 0 ? { servername: host } : {}),
      });
      callback?.(null, tls);
    });
    connectRequest.once('error', fail);
    connectRequest.end();
    return undefined;
  }
}

/**
 * The keep-alive agents a source sends its requests with: direct, or through the proxy the
 * environment names for `target` (see `proxyFor`); and, without a proxy, the pool of ferry's
 * own HTTP and HTTPS client (`RawHttpPool`), unless `FERRY_NODE_HTTP=1` asks for node:http.
 */
export function sourceAgents(
  target: URL,
  options: AgentOptions & { maxSockets: number; readBufferBytes?: number | undefined },
): { http: HttpAgent; https: HttpsAgent; raw: RawHttpPool | undefined; proxy: URL | undefined } {
  const proxy = proxyFor(target);
  if (proxy === undefined) {
    return {
      http: new HttpAgent(options),
      https: new HttpsAgent(options),
      raw:
        process.env.FERRY_NODE_HTTP === '1'
          ? undefined
          : new RawHttpPool({
              maxSockets: options.maxSockets,
              readBufferBytes: options.readBufferBytes,
            }),
      proxy,
    };
  }
  return {
    http: new HttpProxyAgent(proxy, options),
    https: new HttpsProxyAgent(proxy, options),
    raw: undefined,
    proxy,
  };
}
