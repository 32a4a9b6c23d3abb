/**
 * The keep-alive race (issue 12), reproduced deterministically, and the retry rule that fixes it
 * (`src/api/http-retry.ts`): a request that goes out on a reused socket the server has closed gets
 * no response byte; it is resent on a fresh socket, and only then.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { Worker } from 'node:worker_threads';
import { createPublicClient, http as viemHttp, type Hex } from 'viem';
import { RpcClient, RpcTransportError, CLIENT_IDLE_MS } from '../../src/api/client.ts';
import { FETCH_IDLE_MS, HttpExchangeError, MAX_RETRIES, nodeFetch } from '../../src/api/http-retry.ts';
import { API_KEEP_ALIVE_MS } from '../../src/api/server.ts';
import { l1Fetch } from '../../src/devnet/l1-node.ts';
import { startTestServer, testCerts, type Certs } from './helpers.ts';

let certs: Certs;
before(async () => { certs = await testCerts(); });

/** The messages of an error and its causes, outermost first. */
function causes(e: unknown): string[] {
  const out: string[] = [];
  for (let x = e as { message?: string; cause?: unknown } | undefined; x; x = x.cause as typeof x) out.push(String(x.message));
  return out;
}

const rpcReply = (body: string, result: unknown) => JSON.stringify({ jsonrpc: '2.0', id: (JSON.parse(body) as { id: number }).id, result });

/**
 * A JSON-RPC server in a worker thread, so it keeps running while the test's own thread is stalled
 * (as a client busy with KZG work is). `closeIdle()` makes it close its idle keep-alive sockets, as
 * its idle timeout would, and blocks this thread until it has: this thread never gets to see the close.
 */
class WorkerServer {
  private constructor(private readonly worker: Worker, private readonly flag: Int32Array, readonly url: string) {}

  static async start(tls: { cert: string; key: string } | null): Promise<WorkerServer> {
    const flag = new Int32Array(new SharedArrayBuffer(4));
    const worker = new Worker(`
      const { parentPort, workerData } = require('node:worker_threads');
      const { flag, tls } = workerData;
      let handled = 0;
      const handler = (q, r) => {
        let body = '';
        q.on('data', (d) => { body += d; });
        q.on('end', () => {
          handled++;
          const text = JSON.stringify({ jsonrpc: '2.0', id: JSON.parse(body).id, result: 'served ' + handled });
          r.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
          r.end(text);
        });
      };
      const srv = tls ? require('node:https').createServer({ ...tls, minVersion: 'TLSv1.3' }, handler) : require('node:http').createServer(handler);
      srv.keepAliveTimeout = 600000;
      srv.listen(0, '127.0.0.1', () => parentPort.postMessage(srv.address().port));
      parentPort.on('message', (m) => {
        if (m === 'close-idle') {
          srv.closeIdleConnections();
          setImmediate(() => { Atomics.store(flag, 0, 1); Atomics.notify(flag, 0); });
        } else if (m === 'handled') parentPort.postMessage(handled);
      });
    `, { eval: true, workerData: { flag, tls } });
    const port = await new Promise<number>((res) => worker.once('message', res));
    return new WorkerServer(worker, flag, `${tls ? 'https' : 'http'}://127.0.0.1:${port}/`);
  }

  /** Closes the server's idle sockets while this thread is blocked (Atomics.wait), and returns once they are closed. */
  closeIdleWhileStalled(): void {
    Atomics.store(this.flag, 0, 0);
    this.worker.postMessage('close-idle');
    Atomics.wait(this.flag, 0, 0, 10_000); // 'not-equal' if the worker was quicker than this line
    assert.equal(Atomics.load(this.flag, 0), 1, 'the worker closed its idle sockets');
  }

  handled(): Promise<number> {
    const n = new Promise<number>((res) => this.worker.once('message', res));
    this.worker.postMessage('handled');
    return n;
  }

  stop(): Promise<number> {
    return this.worker.terminate();
  }
}

/** A plain Node agent client with no retry: what the race does to a client without the rule. */
function bareCall(agent: http.Agent, url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const body = '{"jsonrpc":"2.0","id":1,"method":"health_status","params":[]}';
    const req = (u.protocol === 'https:' ? https : http).request({
      agent, hostname: u.hostname, port: u.port, method: 'POST', path: '/',
      headers: { 'content-type': 'application/json', 'content-length': String(body.length) },
    }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => { text += d.toString(); });
      res.on('end', () => resolve(text));
    });
    req.on('error', (e: NodeJS.ErrnoException) => reject(Object.assign(e, { reusedSocket: req.reusedSocket })));
    req.end(body);
  });
}

describe('the race: the server closes an idle socket while the client is stalled, then the client reuses it', () => {
  test('without the rule the request fails: ECONNRESET on the reused socket, and the server never saw it', async () => {
    const s = await WorkerServer.start({ cert: certs.server.certPem, key: certs.server.keyPem });
    const agent = new https.Agent({ keepAlive: true, ca: certs.ca.certPem, minVersion: 'TLSv1.3' });
    try {
      assert.match(await bareCall(agent, s.url), /"served 1"/);
      await new Promise((r) => setImmediate(r)); // the socket goes back to the agent's free list
      s.closeIdleWhileStalled();
      await assert.rejects(bareCall(agent, s.url), (e: NodeJS.ErrnoException & { reusedSocket: boolean }) =>
        e.code === 'ECONNRESET' && e.message === 'socket hang up' && e.reusedSocket === true);
      assert.equal(await s.handled(), 1);
    } finally {
      agent.destroy();
      await s.stop();
    }
  });

  test('RpcClient (the signing API client, TLS) resends it on a fresh socket: one answer, the lost request never ran', async () => {
    const s = await WorkerServer.start({ cert: certs.server.certPem, key: certs.server.keyPem });
    const c = new RpcClient({ url: s.url, ca: certs.ca.certPem });
    try {
      assert.equal(await c.call('health_status'), 'served 1');
      await new Promise((r) => setImmediate(r));
      s.closeIdleWhileStalled();
      assert.equal(await c.call('health_status'), 'served 2');
      assert.equal(await s.handled(), 2);
    } finally {
      c.close();
      await s.stop();
    }
  });

  test('nodeFetch (the devnet\'s fetch to its L1, plain HTTP) resends it likewise', async () => {
    const s = await WorkerServer.start(null);
    const f = nodeFetch();
    const post = async () => (await f(s.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"jsonrpc":"2.0","id":7,"method":"eth_chainId"}' })).json();
    try {
      assert.deepEqual(await post(), { jsonrpc: '2.0', id: 7, result: 'served 1' });
      await new Promise((r) => setImmediate(r));
      s.closeIdleWhileStalled();
      assert.deepEqual(await post(), { jsonrpc: '2.0', id: 7, result: 'served 2' });
      assert.equal(await s.handled(), 2);
    } finally {
      await s.stop();
    }
  });
});

/**
 * An in-process server that answers the first request on each connection and treats the second
 * one on the same connection as `second` says: 'close' shuts the socket the moment the request
 * arrives (the server's idle close crossing the request on the wire), 'partial' sends the start of
 * a response first. `handled` counts every request that reached the handler.
 */
async function reuseServer(second: 'close' | 'partial', tls?: Certs): Promise<{ url: string; handled: () => number; stop: () => Promise<void> }> {
  const perSocket = new Map<Socket, number>();
  let handled = 0;
  const handler = (q: http.IncomingMessage, r: http.ServerResponse) => {
    let body = '';
    q.on('data', (d: Buffer) => { body += d.toString(); });
    q.on('end', () => {
      handled++;
      const n = (perSocket.get(q.socket) ?? 0) + 1;
      perSocket.set(q.socket, n);
      if (n > 1) {
        if (second === 'partial') q.socket.write('HTTP/1.1 200 OK\r\ncontent-type: appl');
        q.socket.destroy();
        return;
      }
      const text = rpcReply(body, `0x${'ab'.repeat(32)}`);
      r.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      r.end(text);
    });
  };
  const s = tls ? https.createServer({ cert: tls.server.certPem, key: tls.server.keyPem }, handler) : http.createServer(handler);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${(s.address() as AddressInfo).port}/`,
    handled: () => handled,
    stop: () => new Promise<void>((r) => { s.closeAllConnections(); s.close(() => r()); }),
  };
}

describe('the race on the wire: the server closes the connection as the reused request arrives', () => {
  const RAW_TX: Hex = '0x02f86b827a6980843b9aca00847735940082520894000000000000000000000000000000000000000080c001a0';

  test('viem\'s eth_sendRawTransaction over the built-in fetch fails with the error of the flaky devnet run; over l1Fetch it goes through', async () => {
    const s = await reuseServer('close');
    try {
      const bare = createPublicClient({ transport: viemHttp(s.url) });
      assert.equal(await bare.request({ method: 'eth_blockNumber' }), `0x${'ab'.repeat(32)}`);
      await new Promise((r) => setImmediate(r)); // undici returns the socket to its pool
      await assert.rejects(bare.sendRawTransaction({ serializedTransaction: RAW_TX }), (e: Error) => {
        assert.deepEqual(causes(e).slice(-2), ['fetch failed', 'other side closed']);
        return true;
      });
      assert.equal(s.handled(), 2, 'viem did not retry eth_sendRawTransaction');
      const before = s.handled();

      const fixed = createPublicClient({ transport: viemHttp(s.url, { retryCount: 0, fetchFn: l1Fetch }) });
      assert.equal(await fixed.sendRawTransaction({ serializedTransaction: RAW_TX }), `0x${'ab'.repeat(32)}`);
      await new Promise((r) => setImmediate(r));
      assert.equal(await fixed.sendRawTransaction({ serializedTransaction: RAW_TX }), `0x${'ab'.repeat(32)}`, 'the second call reuses the socket, is cut, and is resent');
      assert.equal(s.handled(), before + 3, 'two calls, one of them cut and resent');
    } finally {
      await s.stop();
    }
  });

  test('RpcClient resends a signing call cut this way, and does not resend a method it does not know to be safe', async () => {
    const s = await reuseServer('close', certs);
    const c = new RpcClient({ url: s.url, ca: certs.ca.certPem });
    try {
      assert.equal(await c.call('eth_signTransaction', [{}]), `0x${'ab'.repeat(32)}`);
      assert.equal(await c.call('eth_signTransaction', [{}]), `0x${'ab'.repeat(32)}`);
      assert.equal(s.handled(), 3, 'first call, the cut one, its resend on a new socket');
      await assert.rejects(c.call('eth_sendTransaction', [{}]), (e: unknown) =>
        e instanceof RpcTransportError && e.code === 'ECONNRESET' && (e.cause as HttpExchangeError).reusedSocket && (e.cause as HttpExchangeError).noResponse);
      assert.equal(s.handled(), 4, 'not resent');
    } finally {
      c.close();
      await s.stop();
    }
  });

  test('never resent once a response byte has arrived', async () => {
    const s = await reuseServer('partial');
    const f = nodeFetch();
    const post = () => f(s.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}' });
    try {
      assert.equal((await post()).status, 200);
      await assert.rejects(post(), (e: Error) => {
        const cause = e.cause as HttpExchangeError;
        return e instanceof TypeError && e.message === 'fetch failed' && cause instanceof HttpExchangeError
          && cause.reusedSocket && !cause.noResponse;
      });
      assert.equal(s.handled(), 2, 'not resent');
    } finally {
      await s.stop();
    }
  });

  test(`a run of dead pooled sockets: resent up to ${MAX_RETRIES} times, then the error`, async () => {
    const s = await reuseServer('close');
    const agent = new http.Agent({ keepAlive: true, maxSockets: MAX_RETRIES + 2 });
    const f = nodeFetch({ agent });
    const post = () => f(s.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}' });
    try {
      // MAX_RETRIES + 2 sockets, each having served one request, all idle in the pool.
      await Promise.all(Array.from({ length: MAX_RETRIES + 2 }, post));
      assert.equal(s.handled(), MAX_RETRIES + 2);
      await assert.rejects(post(), (e: Error) => e instanceof TypeError && (e.cause as HttpExchangeError).code === 'ECONNRESET');
      assert.equal(s.handled(), 2 * MAX_RETRIES + 3, 'the first try and MAX_RETRIES resends, each on another pooled socket');
    } finally {
      agent.destroy();
      await s.stop();
    }
  });
});

describe('who closes an idle connection first', () => {
  let stop: () => Promise<void>;
  let url: string;
  before(async () => {
    const { api } = await startTestServer();
    url = api.url;
    stop = () => api.close();
  });
  after(async () => { await stop(); });

  test('the API server announces Keep-Alive: timeout=120 and keeps idle sockets longer than every client of ours', async () => {
    const r = await new RpcClient({ url, ca: certs.ca.certPem }).get('/healthz');
    assert.equal(r.status, 200);
    const reply = await new Promise<http.IncomingMessage>((res, rej) =>
      https.get(`${url}/healthz`, { ca: certs.ca.certPem, agent: new https.Agent({ keepAlive: true, ca: certs.ca.certPem }) }, res).on('error', rej));
    reply.resume();
    assert.equal(reply.headers['keep-alive'], 'timeout=120');
    assert.equal(API_KEEP_ALIVE_MS, 120_000);
    assert.ok(API_KEEP_ALIVE_MS > 90_000, "longer than Go's default transport keeps an idle connection");
    assert.ok(API_KEEP_ALIVE_MS > CLIENT_IDLE_MS);
    assert.ok(FETCH_IDLE_MS < 5_000, "shorter than Node's (and so hardhat's) default server keep-alive");
  });
});
