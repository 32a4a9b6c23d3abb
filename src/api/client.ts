/**
 * A small mTLS JSON-RPC client for the signing API (CLI, devnet, tests), dialing as the Go
 * `op-service/signer` client does (system-anchors §1.2): TLS 1.3 minimum, the server verified
 * against the given CA, our client certificate presented. Plus a viem transport on top of it.
 */
import https from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import { custom, numberToHex, type CustomTransport } from 'viem';
import { exchange, type HttpExchangeError } from './http-retry.ts';

export interface RpcClientOptions {
  /** `https://host:port[/path]` */
  url: string;
  /** PEM of the CA that issued the server's certificate. */
  ca: string | Buffer;
  /** Our client certificate and key (PEM); omit both to call without one (probes). */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Deadline per call, from sending to the whole response (default 30 s). */
  timeoutMs?: number;
  /** Extra headers on every request (op-service's `--signer.header`). */
  headers?: Record<string, string>;
}

/** The server answered with a JSON-RPC error (or an HTTP error without one). */
export class RpcCallError extends Error {
  override readonly name = 'RpcCallError';
  readonly code: number;
  readonly data: unknown;
  readonly httpStatus: number;
  constructor(code: number, message: string, data: unknown, httpStatus: number) {
    super(message);
    this.code = code;
    this.data = data;
    this.httpStatus = httpStatus;
  }
}

/** No answer: connection, TLS or timeout failure. `code` is Node's (ECONNREFUSED, ETIMEDOUT, a TLS verify code). */
export class RpcTransportError extends Error {
  override readonly name = 'RpcTransportError';
  readonly code: string | undefined;
  constructor(message: string, code: string | undefined, cause?: unknown) {
    super(message, { cause });
    this.code = code;
  }
}

export interface HttpReply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** Responses above this are refused (the largest legitimate one is a signed tx, a few KB). */
const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;
/**
 * How long a pooled socket may sit idle. Node's agent keeps idle sockets forever unless told (it
 * honours a server's `Keep-Alive: timeout=` hint only to shorten a timeout it already has).
 */
export const CLIENT_IDLE_MS = 30_000;

/**
 * Methods resent after the keep-alive race (`http-retry.ts`), where the first attempt may have run:
 * health_status reads; potluck_provideBlobs stores blobs by their versioned hash, so twice is once;
 * a signing call with the same params asks again for the same content at the same nonce, which the
 * peers' anti-equivocation records approve as the same content, so the worst case is a second valid
 * signature of the same transaction or payload (txmgr re-signs the same way when it bumps fees) and
 * one more presignature spent. Any other method is not resent.
 */
const RESENDABLE = new Set(['health_status', 'eth_signTransaction', 'opsigner_signBlockPayload', 'opsigner_signBlockPayloadV2', 'potluck_provideBlobs']);

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export class RpcClient {
  readonly url: URL;
  private readonly agent: https.Agent;
  private readonly timeoutMs: number;
  private readonly headers: Record<string, string>;
  private nextId = 1;

  constructor(opts: RpcClientOptions) {
    this.url = new URL(opts.url);
    if (this.url.protocol !== 'https:') throw new TypeError(`url: must be https://, got ${opts.url}`);
    // Idle sockets close after CLIENT_IDLE_MS, well before the API server drops them
    // (API_KEEP_ALIVE_MS): the client, not the server, should end an idle connection.
    this.agent = new https.Agent({ ca: opts.ca, cert: opts.cert, key: opts.key, minVersion: 'TLSv1.3', keepAlive: true, timeout: CLIENT_IDLE_MS });
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.headers = { ...opts.headers };
  }

  /** Calls `method`; returns its result or throws RpcCallError / RpcTransportError. */
  async call<T = unknown>(method: string, params: unknown[] | Record<string, unknown> = []): Promise<T> {
    const id = this.nextId++;
    const r = await this.request('POST', this.url.pathname + this.url.search, JSON.stringify({ jsonrpc: '2.0', id, method, params }), {}, RESENDABLE.has(method));
    let msg: unknown;
    try {
      msg = JSON.parse(r.body);
    } catch {
      throw new RpcCallError(RPC_INTERNAL, `HTTP ${r.status}: the response is not JSON: ${JSON.stringify(r.body.slice(0, 200))}`, undefined, r.status);
    }
    if (isObject(msg) && isObject(msg['error'])) {
      const e = msg['error'];
      throw new RpcCallError(typeof e['code'] === 'number' ? e['code'] : RPC_INTERNAL, String(e['message'] ?? ''), e['data'], r.status);
    }
    if (r.status !== 200 || !isObject(msg) || msg['jsonrpc'] !== '2.0' || msg['id'] !== id || !Object.hasOwn(msg, 'result')) {
      throw new RpcCallError(RPC_INTERNAL, `HTTP ${r.status}: not a JSON-RPC 2.0 response to request ${id}: ${JSON.stringify(r.body.slice(0, 200))}`, undefined, r.status);
    }
    return msg['result'] as T;
  }

  /** GET `path` (/healthz, /readyz, /metrics). */
  async get(path: string): Promise<{ status: number; body: string }> {
    const r = await this.request('GET', path);
    return { status: r.status, body: r.body };
  }

  /**
   * One raw HTTP request. A request lost to the keep-alive race (a reused socket that closed before
   * any response byte, `http-retry.ts`) is sent again if `mayResend` (default: for GET and HEAD only).
   */
  async request(method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}, mayResend = method === 'GET' || method === 'HEAD'): Promise<HttpReply> {
    try {
      const r = await exchange({
        agent: this.agent, url: this.url, method, path, timeoutMs: this.timeoutMs, maxResponseBytes: MAX_RESPONSE_BYTES,
        headers: {
          ...this.headers,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          accept: 'application/json',
          ...headers,
        },
        ...(body === undefined ? {} : { body }),
      }, mayResend);
      return { status: r.status, headers: r.headers, body: r.body.toString('utf8') };
    } catch (e) {
      const err = e as HttpExchangeError;
      throw new RpcTransportError(`signing API unreachable: ${err.message}`, err.code, err);
    }
  }

  /** Closes the pooled keep-alive sockets. */
  close(): void {
    this.agent.destroy();
  }
}

const RPC_INTERNAL = -32603;


/**
 * A viem transport over `client`, for `createWalletClient({ account: '0x…', transport })` (a
 * JSON-RPC account: viem sends eth_signTransaction). The signing API serves no eth_chainId, which
 * viem asks first; pass `chainId` to answer it locally. viem's own retries are off: a sign call is
 * not blindly repeatable; the client resends only after the keep-alive race, as said above.
 */
export function viemTransport(client: RpcClient, opts: { chainId?: number } = {}): CustomTransport {
  return custom({
    async request({ method, params }: { method: string; params?: unknown }) {
      if (method === 'eth_chainId' && opts.chainId !== undefined) return numberToHex(opts.chainId);
      return client.call(method, (params ?? []) as unknown[] | Record<string, unknown>);
    },
  }, { retryCount: 0 });
}
