/**
 * A small mTLS JSON-RPC client for the signing API (CLI, devnet, tests), dialing as the Go
 * `op-service/signer` client does (system-anchors §1.2): TLS 1.3 minimum, the server verified
 * against the given CA, our client certificate presented. Plus a viem transport on top of it.
 */
import https from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import { custom, numberToHex, type CustomTransport } from 'viem';

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
    this.agent = new https.Agent({ ca: opts.ca, cert: opts.cert, key: opts.key, minVersion: 'TLSv1.3', keepAlive: true });
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.headers = { ...opts.headers };
  }

  /** Calls `method`; returns its result or throws RpcCallError / RpcTransportError. */
  async call<T = unknown>(method: string, params: unknown[] | Record<string, unknown> = []): Promise<T> {
    const id = this.nextId++;
    const r = await this.request('POST', this.url.pathname + this.url.search, JSON.stringify({ jsonrpc: '2.0', id, method, params }));
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
   * One raw HTTP request. A keep-alive socket the server closed while idle fails with ECONNRESET
   * (or EPIPE) on reuse; that request is retried once on a fresh socket (node20-stack §4).
   */
  async request(method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<HttpReply> {
    try {
      return await this.once(method, path, body, headers);
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { reusedSocket?: boolean };
      if (e.reusedSocket && (e.code === 'ECONNRESET' || e.code === 'EPIPE')) {
        try {
          return await this.once(method, path, body, headers);
        } catch (err2) {
          throw transportError(err2);
        }
      }
      throw transportError(err);
    }
  }

  /** Closes the pooled keep-alive sockets. */
  close(): void {
    this.agent.destroy();
  }

  private once(method: string, path: string, body: string | Buffer | undefined, headers: Record<string, string>): Promise<HttpReply> {
    return new Promise((resolve, reject) => {
      let responded = false;
      const req = https.request({
        agent: this.agent,
        protocol: 'https:',
        hostname: this.url.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: this.url.port || 443,
        method,
        path,
        headers: {
          ...this.headers,
          ...(body === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }),
          accept: 'application/json',
          ...headers,
        },
      }, (res) => {
        responded = true;
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_RESPONSE_BYTES) req.destroy(Object.assign(new Error(`response exceeds ${MAX_RESPONSE_BYTES} bytes`), { code: 'ERESPONSETOOLARGE' }));
          else chunks.push(c);
        });
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', fail);
        res.on('close', () => { if (!res.complete) fail(Object.assign(new Error('the response was cut short'), { code: 'ECONNRESET' })); });
      });
      const timer = setTimeout(() => {
        req.destroy(Object.assign(new Error(`no response within ${this.timeoutMs} ms`), { code: 'ETIMEDOUT' }));
      }, this.timeoutMs);
      function fail(err: NodeJS.ErrnoException): void {
        clearTimeout(timer);
        // Retry-safe only if the server sent nothing back: a reset mid-response may follow a signature.
        reject(Object.assign(err, { reusedSocket: req.reusedSocket && !responded }));
      }
      req.on('error', fail);
      req.end(body);
    });
  }
}

const RPC_INTERNAL = -32603;

function transportError(err: unknown): RpcTransportError {
  if (err instanceof RpcTransportError) return err;
  const e = err as NodeJS.ErrnoException;
  return new RpcTransportError(`signing API unreachable: ${e.message}`, e.code, err);
}

/**
 * A viem transport over `client`, for `createWalletClient({ account: '0x…', transport })` (a
 * JSON-RPC account: viem sends eth_signTransaction). The signing API serves no eth_chainId, which
 * viem asks first; pass `chainId` to answer it locally. No retries: a sign call is not blindly repeatable.
 */
export function viemTransport(client: RpcClient, opts: { chainId?: number } = {}): CustomTransport {
  return custom({
    async request({ method, params }: { method: string; params?: unknown }) {
      if (method === 'eth_chainId' && opts.chainId !== undefined) return numberToHex(opts.chainId);
      return client.call(method, (params ?? []) as unknown[] | Record<string, unknown>);
    },
  }, { retryCount: 0 });
}
