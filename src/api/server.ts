/**
 * The signing API: HTTPS JSON-RPC 2.0 with mutual TLS, compatible with op-signer and the Go
 * `op-service/signer` client (system-anchors §1.2, §1.3).
 *
 * TLS: 1.3 minimum, as the Go client dials. Client certificates are requested but not required
 * at the handshake (Go's `VerifyClientCertIfGiven`) so probes reach /healthz, /readyz and /metrics
 * without one; every JSON-RPC call then needs a certificate verified by the CA whose first DNS SAN
 * names a known client (op-signer `auth.go`): none → 401, unverified → 401, no DNS SAN → 401,
 * unknown client → 403. Rate limits are policy and live in the backend, not here.
 *
 * Revocation: with a CRL (`crl.ts`) OpenSSL checks every new handshake against it, and a revoked or
 * expired certificate completes the handshake unverified, like one from another CA: its calls get
 * 401 naming OpenSSL's reason (CERT_REVOKED, CERT_HAS_EXPIRED), while probes still answer.
 * `reloadTls` swaps the files in for new connections (setSecureContext); connections already open
 * are checked again against the new CRL, and against their certificate's expiry, on every call.
 *
 * Limits: at most `maxConnections` open connections (more are dropped at accept), at most
 * `maxConcurrent` signing calls at once and `maxCallsPerClient` per client name; a call beyond
 * either gets -32000 saying the peer is busy.
 *
 * Metrics labels: `potluck_api_requests_total{method,code}` has `method` = a served method name,
 * "unknown" (method not found), "invalid" (malformed request) or "http" (refused before JSON-RPC:
 * 401/403/405/413/415), and `code` = "ok", the JSON-RPC error code, or "http_<status>".
 */
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { RPC_ERRORS, RpcError, type SigningBackend } from './backend.ts';
import {
  errorResponse, parseBody, resultResponse,
  type JsonRpcResponse, type ParsedEntry,
} from './json-rpc.ts';
import { createApiMetrics, type ApiMetrics } from './metrics.ts';
import { callMethod, isServedMethod } from './rpc-methods.ts';
import { ClientAuth, prepareTls, type ApiTls } from './client-auth.ts';
import type { LoadedCrl } from './crl.ts';

export { TlsConfigError, type ApiTls } from './client-auth.ts';

/** 6 blobs × 128 KiB as hex is ≈ 1.6 MB (the blob extension); 8 MiB leaves room and bounds memory. */
export const DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024;
/** Signing calls running at once before new ones are refused with -32000 (txmgr retries, §1.4). */
export const DEFAULT_MAX_CONCURRENT = 32;
/**
 * Signing calls one client name may have running at once. A batcher has a few transactions in
 * flight (op-batcher's --max-pending-tx) and op-node signs one block at a time; 256 still lets the
 * devnet's load test run 200 at once while one client cannot take every slot of a peer.
 */
export const DEFAULT_MAX_CALLS_PER_CLIENT = 256;
/** Open connections (idle keep-alive ones included) before new ones are dropped at accept. */
export const DEFAULT_MAX_CONNECTIONS = 512;
/** An oversized body is read and discarded up to this multiple of the limit, so a client that sends it whole still reads its 413. */
const DRAIN_FACTOR = 4;
/**
 * Idle keep-alive connections are kept this long, longer than any client of ours keeps one: the
 * client should be the side that ends an idle connection, because a request it sends just as the
 * server closes the connection fails with no response (the keep-alive race, `http-retry.ts`). Our
 * RpcClient closes idle sockets after 30 s; Node's agents also honour the `Keep-Alive: timeout=120`
 * header this sends, minus 1 s; Go's default transport (geth's rpc client without TLS) after 90 s.
 * op-service's signer client over TLS sets no idle limit, so for it the server still closes first,
 * but only after 2 minutes of silence; Go resends a request on a connection it saw close.
 */
export const API_KEEP_ALIVE_MS = 120_000;
/** Time to receive a request's headers once it has begun (Node 20 counts from the request's first byte, not from idle). */
const HEADERS_TIMEOUT_MS = 20_000;
/** Time to receive a whole request; it bounds receiving, not the signing that follows. */
const REQUEST_TIMEOUT_MS = 60_000;
/** geth's accepted request media types (`rpc/http.go`); anything else is 415, as op-service does. */
const JSON_TYPES = new Set(['application/json', 'application/json-rpc', 'application/jsonrequest']);

export interface ApiServerOptions {
  host: string;
  /** 0 = an ephemeral port (tests). */
  port: number;
  tls: ApiTls;
  backend: SigningBackend;
  log: Logger;
  metrics?: ApiMetrics;
  maxBodyBytes?: number;
  maxConcurrent?: number;
  maxCallsPerClient?: number;
  maxConnections?: number;
  /** How long close() lets in-flight calls finish before it cuts the connections (ms). */
  closeGraceMs?: number;
  /** The clock for the expiry of client certificates on open connections (tests). */
  now?: () => number;
}

export interface ApiServer {
  /** `https://host:port` */
  url: string;
  port: number;
  metrics: ApiMetrics;
  /**
   * Checks the files, then serves new connections with them; throws (CrlError, TlsConfigError)
   * and keeps the previous ones if they are not usable. Returns what the CRL holds.
   */
  reloadTls(tls: ApiTls): Promise<{ crl: { revoked: number; nextUpdate: Date } | null }>;
  /** What is open now: connections and signing calls in flight (for the shutdown log). */
  activity(): { connections: number; inFlight: number };
  close(): Promise<void>;
}

export async function startApiServer(opts: ApiServerOptions): Promise<ApiServer> {
  const { backend, log } = opts;
  const metrics = opts.metrics ?? createApiMetrics();
  const maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const maxConcurrent = opts.maxConcurrent ?? DEFAULT_MAX_CONCURRENT;
  const maxPerClient = opts.maxCallsPerClient ?? DEFAULT_MAX_CALLS_PER_CLIENT;
  let inFlight = 0;
  const perClient = new Map<string, number>();
  const initial = await prepareTls(opts.tls);
  const auth = new ClientAuth(backend, initial, opts.now);
  const sockets = new Set<Socket>();

  const server = https.createServer({
    ...initial.options,
    requestCert: true,
    rejectUnauthorized: false,
    handshakeTimeout: 10_000,
  }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      log.error({ err }, 'signing API: request handler failed');
      if (!res.headersSent && !res.destroyed) sendJson(res, 500, errorResponse(null, RPC_ERRORS.internal, 'internal error'));
    });
  });
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.headersTimeout = HEADERS_TIMEOUT_MS;
  server.keepAliveTimeout = API_KEEP_ALIVE_MS;
  server.maxConnections = opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  server.on('tlsClientError', (err) => log.debug({ err: err.message }, 'signing API: TLS handshake failed'));
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  let lastDropLog = 0;
  server.on('drop', (d?: { remoteAddress?: string }) => {
    metrics.connectionsDropped.inc();
    // One line a minute at most: a flood of connections must not become a flood of logs.
    if (Date.now() - lastDropLog > 60_000) {
      lastDropLog = Date.now();
      log.warn({ limit: server.maxConnections, remote: d?.remoteAddress }, 'signing API: connection limit reached, dropping new connections');
    }
  });
  const showCrl = (crl: LoadedCrl | null) => metrics.crlNextUpdate.set(crl ? crl.nextUpdate.getTime() / 1000 : 0);
  showCrl(initial.crl);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    const isGet = req.method === 'GET' || req.method === 'HEAD';
    switch (path) {
      case '/healthz':
        if (!isGet) return notAllowed(res, 'GET, HEAD');
        return sendJson(res, 200, { status: 'ok' });
      case '/readyz': {
        if (!isGet) return notAllowed(res, 'GET, HEAD');
        let r;
        try {
          r = backend.readiness();
        } catch (err) {
          log.error({ err }, 'signing API: readiness check failed');
          r = { ready: false as const, reason: 'readiness check failed' };
        }
        return sendJson(res, r.ready ? 200 : 503, r.ready ? { ready: true } : { ready: false, reason: r.reason });
      }
      case '/metrics': {
        if (!isGet) return notAllowed(res, 'GET, HEAD');
        const text = await metrics.registry.metrics();
        res.writeHead(200, { 'content-type': metrics.registry.contentType, 'content-length': Buffer.byteLength(text) });
        res.end(text);
        return;
      }
      case '/':
        return handleRpc(req, res);
      default:
        return sendJson(res, 404, { error: `no such path: ${JSON.stringify((path ?? '').slice(0, 64))}` });
    }
  }

  /** An HTTP-level refusal on the JSON-RPC path: a JSON-RPC error body (id null) with a telling status. */
  function refuse(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
    metrics.requests.inc({ method: 'http', code: `http_${status}` });
    sendJson(res, status, errorResponse(null, RPC_ERRORS.invalidRequest, message), headers);
  }

  async function handleRpc(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST') return refuse(res, 405, `HTTP method ${req.method} is not allowed: JSON-RPC takes POST`, { allow: 'POST' });
    const who = auth.identify(req.socket as TLSSocket);
    if (!who.ok) {
      log.info({ status: who.status, reason: who.message }, 'signing API: caller refused');
      return refuse(res, who.status, who.message);
    }
    const mediaType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (!JSON_TYPES.has(mediaType)) {
      return refuse(res, 415, `invalid content type ${JSON.stringify(mediaType.slice(0, 64))}, only application/json is supported`);
    }
    const tooLarge = `request body exceeds ${maxBody} bytes`;
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (declared > maxBody * DRAIN_FACTOR) return refuse(res, 413, tooLarge, { connection: 'close' });

    const body = await readBody(req, maxBody);
    if (body === 'aborted') return;
    if (body === 'too-large') return refuse(res, 413, tooLarge, { connection: 'close' });

    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(body);
    } catch {
      metrics.requests.inc({ method: 'invalid', code: String(RPC_ERRORS.parse) });
      return sendJson(res, 200, errorResponse(null, RPC_ERRORS.parse, 'parse error: the body is not valid UTF-8'));
    }
    const parsed = parseBody(text);
    if (parsed.kind === 'invalid') {
      metrics.requests.inc({ method: 'invalid', code: errorCodeOf(parsed.response) });
      return sendJson(res, 200, parsed.response);
    }
    if (parsed.kind === 'single') {
      const out = await runEntry(parsed.entry, who.client);
      return out === null ? sendEmpty(res) : sendJson(res, 200, out);
    }
    // A batch runs in order, one call at a time, as geth does: signing requests may depend on each other's records.
    const outs: JsonRpcResponse[] = [];
    for (const entry of parsed.entries) {
      const out = await runEntry(entry, who.client);
      if (out !== null) outs.push(out);
    }
    return outs.length === 0 ? sendEmpty(res) : sendJson(res, 200, outs);
  }

  /** Runs one entry; returns its response, or null for a notification. */
  async function runEntry(entry: ParsedEntry, client: string): Promise<JsonRpcResponse | null> {
    if (!entry.ok) {
      metrics.requests.inc({ method: 'invalid', code: errorCodeOf(entry.response) });
      return entry.response;
    }
    const req = entry.request;
    const method = isServedMethod(req.method) ? req.method : 'unknown';
    const endTimer = metrics.requestDuration.startTimer({ method });
    let response: JsonRpcResponse;
    let code: number | null = null;
    try {
      let result: unknown;
      if (method === 'health_status' || method === 'unknown') {
        result = await callMethod(backend, req, { client });
      } else {
        if (inFlight >= maxConcurrent) throw new RpcError(RPC_ERRORS.unavailable, `server busy: ${inFlight} signing calls in flight, retry later`);
        const mine = perClient.get(client) ?? 0;
        if (mine >= maxPerClient) throw new RpcError(RPC_ERRORS.unavailable, `peer busy: client ${JSON.stringify(client)} has ${mine} calls in flight (the limit per client), retry later`);
        inFlight++;
        perClient.set(client, mine + 1);
        try {
          result = await callMethod(backend, req, { client });
        } finally {
          inFlight--;
          const left = perClient.get(client)! - 1;
          if (left === 0) perClient.delete(client);
          else perClient.set(client, left);
        }
      }
      response = resultResponse(req.id, result);
    } catch (err) {
      if (err instanceof RpcError) {
        code = err.code;
        response = errorResponse(req.id, err.code, err.message, err.data);
        if (method !== 'unknown') log.info({ client, method, code, reason: err.message }, 'signing API: call refused');
      } else {
        // Never echo an unexpected error: its message or stack may say more than a caller should see.
        code = RPC_ERRORS.internal;
        response = errorResponse(req.id, RPC_ERRORS.internal, 'internal error');
        log.error({ err, client, method }, 'signing API: internal error');
      }
    }
    endTimer();
    metrics.requests.inc({ method, code: code === null ? 'ok' : String(code) });
    const signing = method === 'eth_signTransaction' ? metrics.signTransaction
      : method === 'opsigner_signBlockPayload' || method === 'opsigner_signBlockPayloadV2' ? metrics.signBlockPayload : null;
    signing?.inc({ client, status: code === null ? 'success' : 'error', error: code === null ? '' : errorLabel(code) });
    return req.notification ? null : response;
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => log.error({ err }, 'signing API: server error'));
  const port = (server.address() as AddressInfo).port;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  log.info({ url: `https://${host}:${port}` }, 'signing API listening');

  let closing: Promise<void> | null = null;
  return {
    url: `https://${host}:${port}`,
    port,
    metrics,
    async reloadTls(tls) {
      const next = await prepareTls(tls);
      server.setSecureContext(next.options);
      auth.use(next);
      showCrl(next.crl);
      return { crl: next.crl ? { revoked: next.crl.count, nextUpdate: next.crl.nextUpdate } : null };
    },
    activity: () => ({ connections: sockets.size, inFlight }),
    close() {
      closing ??= new Promise<void>((resolve) => {
        const force = setTimeout(() => server.closeAllConnections(), opts.closeGraceMs ?? 2_000);
        force.unref();
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}

const errorCodeOf = (r: JsonRpcResponse): string => ('error' in r ? String(r.error.code) : 'ok');

/** op-signer's `error` label values (`service.go`) where a code maps onto one; others name the code. */
function errorLabel(code: number): string {
  switch (code) {
    case RPC_ERRORS.invalidTransaction: return 'invalid_transaction';
    case RPC_ERRORS.unauthorizedTransaction: return 'unauthorized_transaction';
    case RPC_ERRORS.invalidBlockPayload: return 'invalid_blockPayload';
    case RPC_ERRORS.unauthorizedBlockPayload: return 'unauthorized_blockPayload';
    case RPC_ERRORS.invalidParams: return 'invalid_params';
    case RPC_ERRORS.internal: return 'internal';
    case RPC_ERRORS.unavailable: return 'unavailable';
    default: return `code_${code}`;
  }
}

/**
 * Reads the body up to `limit` bytes. Past the limit it keeps reading and discarding (up to
 * DRAIN_FACTOR × limit) so the client, which is still sending, can read the 413 that follows;
 * a client that sends more than that is cut off.
 */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | 'too-large' | 'aborted'> {
  return new Promise((resolve) => {
    let chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= limit) chunks.push(c);
      else {
        chunks = [];
        if (size > limit * DRAIN_FACTOR) req.destroy();
      }
    });
    req.on('end', () => resolve(size <= limit ? Buffer.concat(chunks, size) : 'too-large'));
    req.on('error', () => resolve('aborted'));
    req.on('close', () => { if (!req.complete) resolve('aborted'); });
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Notifications only: JSON-RPC sends nothing back. */
function sendEmpty(res: ServerResponse): void {
  res.writeHead(204);
  res.end();
}

function notAllowed(res: ServerResponse, allow: string): void {
  sendJson(res, 405, { error: `method not allowed: use ${allow}` }, { allow });
}
