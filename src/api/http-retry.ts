/**
 * One HTTP exchange on a pooled keep-alive socket, and the one retry rule this project's HTTP
 * clients share (issue 12: the keep-alive race, handled as a class).
 *
 * The race: a client keeps an idle connection open; the server closes it after its own idle
 * timeout; a request the client sends at that moment (or after an event loop stall long enough
 * that it never saw the close) goes out on a dead socket and fails before any response byte.
 *
 * The rule: a request is sent again (at most MAX_RETRIES times) only if it went out on a REUSED
 * keep-alive socket and that socket closed (ECONNRESET, EPIPE) before a single byte of response
 * arrived. A fresh socket that fails, a timeout, an abort, or any failure after the first response
 * byte is never retried: once a response has started, the server certainly ran the request.
 *
 * Why resending is safe even then: "no byte" is what the race looks like, but a server that read
 * the request and died before answering looks the same, so the request may have run once. Each
 * caller may therefore resend only what is safe to run twice; the callers say why (RpcClient for
 * the signing API, `nodeFetch` users for the L1).
 */
import http from 'node:http';
import https from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';

/** Resends after the keep-alive race: each one may hit another stale pooled socket, so more than one. */
export const MAX_RETRIES = 3;

export interface Exchange {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface ExchangeRequest {
  agent: http.Agent;
  url: URL;
  method: string;
  /** Path and query; default the url's. */
  path?: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  /** From sending to the whole response; ETIMEDOUT after it. 0 or absent: none. */
  timeoutMs?: number;
  maxResponseBytes?: number;
  signal?: AbortSignal;
}

/** A failed exchange. `noResponse`: the socket closed before any response byte; `reusedSocket`: it carried an earlier request. */
export class HttpExchangeError extends Error {
  override readonly name = 'HttpExchangeError';
  readonly code: string | undefined;
  readonly reusedSocket: boolean;
  readonly noResponse: boolean;
  constructor(message: string, code: string | undefined, reusedSocket: boolean, noResponse: boolean, cause?: unknown) {
    super(message, { cause });
    this.code = code;
    this.reusedSocket = reusedSocket;
    this.noResponse = noResponse;
  }
}

/** The keep-alive race: see the module comment. */
export function isKeepAliveRace(e: unknown): boolean {
  return e instanceof HttpExchangeError && e.reusedSocket && e.noResponse && (e.code === 'ECONNRESET' || e.code === 'EPIPE');
}

/** One exchange, no retry. */
export function exchangeOnce(r: ExchangeRequest): Promise<Exchange> {
  const mod = r.url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    let gotByte = false;
    let settled = false;
    const req = mod.request({
      agent: r.agent,
      protocol: r.url.protocol,
      hostname: r.url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: r.url.port || (r.url.protocol === 'https:' ? 443 : 80),
      method: r.method,
      path: r.path ?? r.url.pathname + r.url.search,
      headers: {
        ...(r.body === undefined ? {} : { 'content-length': String(Buffer.byteLength(r.body)) }),
        ...r.headers,
      },
    }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (r.maxResponseBytes !== undefined && size > r.maxResponseBytes) {
          req.destroy(Object.assign(new Error(`response exceeds ${r.maxResponseBytes} bytes`), { code: 'ERESPONSETOOLARGE' }));
        } else chunks.push(c);
      });
      res.on('end', () => done(() => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) })));
      res.on('error', fail);
      res.on('close', () => { if (!res.complete) fail(Object.assign(new Error('the response was cut short'), { code: 'ECONNRESET' })); });
    });
    // Any decrypted byte from the server after this request took the socket counts as a response
    // byte (TLS records such as close_notify are not data and do not count).
    req.on('socket', (socket) => {
      const mark = () => { gotByte = true; };
      socket.on('data', mark);
      req.once('close', () => socket.off('data', mark));
    });
    const timer = r.timeoutMs ? setTimeout(() => {
      req.destroy(Object.assign(new Error(`no response within ${r.timeoutMs} ms`), { code: 'ETIMEDOUT' }));
    }, r.timeoutMs) : undefined;
    const onAbort = () => req.destroy(Object.assign(new Error('the request was aborted'), { code: 'ABORT_ERR', name: 'AbortError' }));
    if (r.signal?.aborted) onAbort();
    else r.signal?.addEventListener('abort', onAbort, { once: true });
    function done(f: () => void): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      r.signal?.removeEventListener('abort', onAbort);
      f();
    }
    function fail(err: NodeJS.ErrnoException): void {
      done(() => reject(new HttpExchangeError(err.message, err.code, req.reusedSocket, !gotByte, err)));
    }
    req.on('error', fail);
    req.end(r.body);
  });
}

/**
 * How long nodeFetch's pooled sockets stay idle: under the 5 s that Node's HTTP server (and so
 * Hardhat's node) keeps them, so that normally the client ends an idle connection first. Node's
 * agent has no idle limit unless given one.
 */
export const FETCH_IDLE_MS = 4_000;

/** One exchange, resent after the keep-alive race when `mayResend` (the caller's judgement that running it twice is safe). */
export async function exchange(r: ExchangeRequest, mayResend = true): Promise<Exchange> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await exchangeOnce(r);
    } catch (e) {
      if (!mayResend || attempt >= MAX_RETRIES || !isKeepAliveRace(e) || r.signal?.aborted) throw e;
    }
  }
}

/**
 * A `fetch` over node:http with the retry rule, for viem's http transport (`fetchFn`) and plain
 * calls to the devnet's L1. Node's built-in fetch (undici) cannot tell "no response byte" from a
 * response cut short inside its head, and viem never retries eth_sendRawTransaction; this can and does.
 * Resending to an Ethereum node is safe: reads are reads, and a signed transaction sent twice is the
 * same transaction (the node answers "already known" or "nonce too low", never includes it twice).
 */
export function nodeFetch(opts: { agent?: http.Agent } = {}): (input: string | URL | Request, init?: RequestInit) => Promise<Response> {
  const agents = {
    http: opts.agent ?? new http.Agent({ keepAlive: true, timeout: FETCH_IDLE_MS }),
    https: opts.agent ?? new https.Agent({ keepAlive: true, timeout: FETCH_IDLE_MS }),
  };
  return async (input, init = {}) => {
    if (input instanceof Request) throw new TypeError('nodeFetch: pass a URL and an init object, not a Request');
    const url = new URL(String(input));
    const body = init.body;
    if (body != null && typeof body !== 'string' && !(body instanceof Uint8Array)) throw new TypeError('nodeFetch: the body must be a string or bytes');
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((v, k) => { headers[k] = v; });
    let r: Exchange;
    try {
      r = await exchange({
        agent: url.protocol === 'https:' ? agents.https : agents.http, url, method: init.method ?? 'GET', headers,
        ...(body != null ? { body } : {}), ...(init.signal ? { signal: init.signal } : {}),
      });
    } catch (e) {
      if (init.signal?.aborted) throw init.signal.reason;
      throw new TypeError('fetch failed', { cause: e });
    }
    const out = new Headers();
    for (const [k, v] of Object.entries(r.headers)) for (const x of Array.isArray(v) ? v : v === undefined ? [] : [v]) out.append(k, x);
    return new Response(r.status === 204 || r.status === 304 ? null : new Uint8Array(r.body), { status: r.status, headers: out });
  };
}
