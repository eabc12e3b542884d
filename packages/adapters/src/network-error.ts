import { AbortError, FerryError, isFerryError } from '@ferry/manifest';

/** What a failed request was about, for the message. */
export interface NetworkContext {
  /** Endpoint or origin (`http://127.0.0.1:9000`), named in the message and hint. */
  endpoint: string;
  key?: string | undefined;
  url?: string | undefined;
  /** Environment variable that configures the endpoint, named in the hint. */
  endpointVariable?: string | undefined;
}

const CONNECT_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);
const DNS_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN']);
const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'ESOCKETTIMEDOUT', 'TimeoutError', 'RequestTimeout']);
/** OpenSSL's verdicts on a server certificate, as Node's TLS sockets report them. */
const UNTRUSTED_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'INVALID_CA',
]);

/**
 * OpenSSL's complaint when the first bytes a server sends are not a TLS record: an
 * `https://` URL that names a port speaking plain HTTP. Node reports it as
 * `ERR_SSL_WRONG_VERSION_NUMBER` from the handshake, or as `EPROTO` with OpenSSL's text.
 */
const NOT_TLS_CODES = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG']);
const NOT_TLS_TEXT = /wrong version number|packet length too long/i;

/**
 * Classifies an error thrown by a socket, an HTTP client or a body stream. FerryErrors and
 * AbortErrors pass through, and so do errors of the code itself (`programmingError`);
 * everything else is a retryable FERRY_TRANSIENT that names the endpoint, because resets,
 * refusals and timeouts are what flaky networks produce.
 */
export function networkError(error: unknown, context: NetworkContext): Error {
  if (isFerryError(error) || error instanceof AbortError || programmingError(error)) return error;
  const code = errorCode(error);
  const { endpoint, key, url } = context;
  const where = url ?? endpoint;
  const check =
    context.endpointVariable === undefined
      ? 'the source URI'
      : `${context.endpointVariable} (or the source URI)`;
  const details = { key, url, cause: error, retryable: true };
  // No retry mends a certificate: the user must, so these fail at once and say how.
  if (
    code !== undefined &&
    (UNTRUSTED_CODES.has(code) || code === 'ERR_TLS_CERT_ALTNAME_INVALID')
  ) {
    return new FerryError(
      'FERRY_BAD_SOURCE',
      `The TLS certificate of ${endpoint} is not trusted (${code})`,
      {
        ...details,
        retryable: false,
        hint:
          code === 'ERR_TLS_CERT_ALTNAME_INVALID'
            ? `The certificate does not name this host: reach the server by a name it was issued for, in ${check}.`
            : code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID'
              ? `The server's certificate is outside its dates: renew it on the server, or check this machine's clock.`
              : 'Trust the authority that signed it: NODE_EXTRA_CA_CERTS=/path/to/ca.pem (PEM, one or more certificates).',
      },
    );
  }
  if (notTls(code, error) && endpoint.startsWith('https:')) {
    return new FerryError('FERRY_BAD_SOURCE', `${endpoint} does not speak TLS (${code})`, {
      ...details,
      retryable: false,
      hint: `The port answers in plain HTTP: use ${endpoint.replace(/^https:/, 'http:')} in ${check}.`,
    });
  }
  if (code !== undefined && CONNECT_CODES.has(code)) {
    return new FerryError('FERRY_TRANSIENT', `Cannot connect to ${endpoint} (${code})`, {
      ...details,
      hint: `Check that the server at ${endpoint} is running and that ${check} names it.`,
    });
  }
  if (code !== undefined && DNS_CODES.has(code)) {
    return new FerryError('FERRY_TRANSIENT', `Cannot resolve the host of ${endpoint} (${code})`, {
      ...details,
      hint: `Check the host name in ${check} and the DNS settings.`,
    });
  }
  if (code !== undefined && TIMEOUT_CODES.has(code)) {
    return new FerryError(
      'FERRY_TRANSIENT',
      `Timed out talking to ${endpoint} (${code}): ${where}`,
      {
        ...details,
        hint: `The server at ${endpoint} did not answer in time; ferry retries, and if it persists check the network.`,
      },
    );
  }
  const message = error instanceof Error ? error.message : String(error);
  return new FerryError(
    'FERRY_TRANSIENT',
    `Connection to ${endpoint} failed (${code ?? message}): ${where}`,
    {
      ...details,
      hint: 'The connection broke mid-request; ferry retries these, and if it persists check the network and the server.',
    },
  );
}

function notTls(code: string | undefined, error: unknown): boolean {
  if (code === undefined) return false;
  if (NOT_TLS_CODES.has(code)) return true;
  return code === 'EPROTO' && error instanceof Error && NOT_TLS_TEXT.test(error.message);
}

function errorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  if ('code' in error && typeof error.code === 'string') return error.code;
  if ('name' in error && typeof error.name === 'string' && TIMEOUT_CODES.has(error.name))
    return error.name;
  // AggregateError from happy-eyeballs connects carries the per-address errors.
  if ('errors' in error && Array.isArray(error.errors)) return errorCode(error.errors[0]);
  return undefined;
}

/**
 * A TypeError, RangeError, ReferenceError or SyntaxError that no socket or client raised (those
 * carry a `code`, as `ERR_INVALID_CHAR` does): a bug on this side, which retrying six times
 * and calling it a broken connection would only hide. The CLI reports it as FERRY_INTERNAL.
 */
function programmingError(error: unknown): error is Error {
  return (
    (error instanceof TypeError ||
      error instanceof RangeError ||
      error instanceof ReferenceError ||
      error instanceof SyntaxError) &&
    errorCode(error) === undefined
  );
}
