/**
 * The signing API over real HTTPS with mutual TLS (system-anchors §1.2, §1.3), against a fake
 * backend: transport, authentication, JSON-RPC handling, metrics. Policy is the backend's business.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { RPC_ERRORS, RpcError } from '../../src/api/backend.ts';
import { RpcCallError, RpcClient } from '../../src/api/client.ts';
import { createApiMetrics } from '../../src/api/metrics.ts';
import { DEFAULT_MAX_BODY_BYTES, startApiServer, type ApiServer } from '../../src/api/server.ts';
import type { PemPair } from '../../src/api/tls-certs.ts';
import {
  FakeBackend, SIGNATURE_65, SIGNED_TX, VERSION, captureLogger, rawRequest, rpcAs, testCerts, type Certs,
} from './helpers.ts';

let certs: Certs;
let backend: FakeBackend;
let logs: ReturnType<typeof captureLogger>;
let api: ApiServer;
let batcher: RpcClient;

before(async () => {
  certs = await testCerts();
  backend = new FakeBackend();
  logs = captureLogger();
  api = await startApiServer({
    host: '127.0.0.1', port: 0,
    tls: { ca: certs.ca.certPem, cert: certs.server.certPem, key: certs.server.keyPem },
    backend, log: logs.log, metrics: createApiMetrics({ defaultMetrics: false }),
  });
  batcher = new RpcClient({ url: api.url, ca: certs.ca.certPem, cert: certs.batcher.certPem, key: certs.batcher.keyPem });
});

after(async () => {
  batcher.close();
  await api.close();
});

const rpc = (body: unknown, cert: PemPair | null = certs.batcher) => rpcAs(api.port, certs.ca.certPem, cert, body);
const call = (method: string, params?: unknown, id: unknown = 1) =>
  rpc(params === undefined ? { jsonrpc: '2.0', id, method } : { jsonrpc: '2.0', id, method, params });
const err = (id: unknown, code: number, message: string) => ({ jsonrpc: '2.0', id, error: { code, message } });

describe('probes', () => {
  test('GET /healthz answers 200 without a client certificate', async () => {
    const r = await rawRequest({ port: api.port, ca: certs.ca.certPem, cert: null, method: 'GET', path: '/healthz' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(r.body), { status: 'ok' });
  });

  test('/readyz is 200 when ready and 503 with the reason when not', async () => {
    const ok = await rawRequest({ port: api.port, ca: certs.ca.certPem, cert: null, method: 'GET', path: '/readyz' });
    assert.equal(ok.status, 200);
    assert.deepEqual(JSON.parse(ok.body), { ready: true });
    backend.ready = { ready: false, reason: 'insufficient quorum peers' };
    try {
      const no = await rawRequest({ port: api.port, ca: certs.ca.certPem, cert: null, method: 'GET', path: '/readyz' });
      assert.equal(no.status, 503);
      assert.deepEqual(JSON.parse(no.body), { ready: false, reason: 'insufficient quorum peers' });
    } finally {
      backend.ready = { ready: true };
    }
  });

  test('probe paths take GET only; unknown paths are 404', async () => {
    const post = await rawRequest({ port: api.port, ca: certs.ca.certPem, cert: null, path: '/healthz', body: '{}' });
    assert.equal(post.status, 405);
    assert.equal(post.headers['allow'], 'GET, HEAD');
    const missing = await rawRequest({ port: api.port, ca: certs.ca.certPem, cert: null, method: 'GET', path: '/nope' });
    assert.equal(missing.status, 404);
    assert.deepEqual(JSON.parse(missing.body), { error: 'no such path: "/nope"' });
  });
});

describe('authentication (op-signer auth.go: first DNS SAN of a CA-verified certificate)', () => {
  const health = { jsonrpc: '2.0', id: 1, method: 'health_status' };

  test('no client certificate → 401', async () => {
    const r = await rpc(health, null);
    assert.equal(r.status, 401);
    assert.deepEqual(r.json, err(null, RPC_ERRORS.invalidRequest, 'client certificate was not provided'));
  });

  test('a certificate from another CA → 401 naming the verification error', async () => {
    const r = await rpc(health, certs.fromOtherCa);
    assert.equal(r.status, 401);
    assert.deepEqual(r.json, err(null, RPC_ERRORS.invalidRequest, 'client certificate was not accepted: UNABLE_TO_VERIFY_LEAF_SIGNATURE'));
  });

  test('a verified certificate without a DNS SAN → 401', async () => {
    const r = await rpc(health, certs.noDnsSan);
    assert.equal(r.status, 401);
    assert.deepEqual(r.json, err(null, RPC_ERRORS.invalidRequest, 'client certificate verified but did not contain DNS SAN extension'));
  });

  test('a verified certificate of an unknown client → 403 naming it', async () => {
    const r = await rpc(health, certs.stranger);
    assert.equal(r.status, 403);
    assert.deepEqual(r.json, err(null, RPC_ERRORS.invalidRequest, 'client "stranger" is not authorized'));
  });

  test('a resumed TLS session keeps the client identity', async () => {
    const agent = new https.Agent({ keepAlive: false, ca: certs.ca.certPem, cert: certs.proposer.certPem, key: certs.proposer.keyPem });
    try {
      backend.calls = [];
      const reused: boolean[] = [];
      for (let i = 0; i < 2; i++) {
        const status = await new Promise<number>((resolve, reject) => {
          const req = https.request({ host: '127.0.0.1', port: api.port, method: 'POST', path: '/', agent, headers: { 'content-type': 'application/json' } }, (res) => {
            reused.push((req.socket as TLSSocket).isSessionReused());
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          });
          req.on('error', reject);
          req.end(JSON.stringify({ jsonrpc: '2.0', id: i, method: 'eth_signTransaction', params: [{ i }] }));
        });
        assert.equal(status, 200);
      }
      assert.deepEqual(reused, [false, true]);
      assert.deepEqual(backend.calls.map((c) => c.ctx.client), ['proposer', 'proposer']);
    } finally {
      agent.destroy();
    }
  });

  test('refused callers never reach the backend', async () => {
    const before = backend.calls.length;
    for (const cert of [null, certs.fromOtherCa, certs.noDnsSan, certs.stranger]) {
      await rpc({ jsonrpc: '2.0', id: 1, method: 'eth_signTransaction', params: [{}] }, cert);
    }
    assert.equal(backend.calls.length, before);
  });
});

describe('methods', () => {
  test('health_status returns the version, with params absent or []', async () => {
    assert.equal(await batcher.call('health_status'), VERSION);
    assert.deepEqual((await call('health_status')).json, { jsonrpc: '2.0', id: 1, result: VERSION });
  });

  test('eth_signTransaction passes params[0] and the client name, and returns the result', async () => {
    const args = { from: '0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266', nonce: '0x2a', accessList: [], gasPrice: null };
    backend.calls = [];
    assert.equal(await batcher.call('eth_signTransaction', [args]), SIGNED_TX);
    assert.deepEqual(backend.calls, [{ method: 'signTransaction', args, ctx: { client: 'batcher' } }]);
  });

  test('the client name is the certificate\'s, per connection', async () => {
    const proposer = new RpcClient({ url: api.url, ca: certs.ca.certPem, cert: certs.proposer.certPem, key: certs.proposer.keyPem });
    try {
      backend.calls = [];
      await proposer.call('eth_signTransaction', [{}]);
      await batcher.call('eth_signTransaction', [{}]);
      assert.deepEqual(backend.calls.map((c) => c.ctx.client), ['proposer', 'batcher']);
    } finally {
      proposer.close();
    }
  });

  test('opsigner_signBlockPayload is V1, opsigner_signBlockPayloadV2 is V2', async () => {
    backend.calls = [];
    const v1 = { domain: [0], chainId: 10 };
    const v2 = { domain: '0x00', chainId: '10' };
    assert.equal(await batcher.call('opsigner_signBlockPayload', [v1]), SIGNATURE_65);
    assert.equal(await batcher.call('opsigner_signBlockPayloadV2', [v2]), SIGNATURE_65);
    assert.deepEqual(backend.calls, [
      { method: 'signBlockPayload', args: v1, version: 1, ctx: { client: 'batcher' } },
      { method: 'signBlockPayload', args: v2, version: 2, ctx: { client: 'batcher' } },
    ]);
  });

  test('potluck_provideBlobs takes six 128 KiB blobs (≈1.6 MB of hex) under the default body limit', async () => {
    const blob = `0x${'00'.repeat(131072)}`;
    const blobs = Array.from({ length: 6 }, () => blob);
    backend.calls = [];
    const hashes = await batcher.call<string[]>('potluck_provideBlobs', [blobs]);
    assert.equal(hashes.length, 6);
    assert.equal(backend.calls.length, 1);
    assert.deepEqual(backend.calls[0]!.args, blobs);
  });

  test('an RpcError from the backend keeps its code, message and data', async () => {
    backend.onSignTransaction = async () => { throw new RpcError(RPC_ERRORS.unauthorizedTransaction, 'to address not authorized', { rule: 'to' }); };
    try {
      const r = await call('eth_signTransaction', [{}], 7);
      assert.equal(r.status, 200);
      assert.deepEqual(r.json, { jsonrpc: '2.0', id: 7, error: { code: -32011, message: 'to address not authorized', data: { rule: 'to' } } });
      await assert.rejects(batcher.call('eth_signTransaction', [{}]), (e: unknown) => {
        assert.ok(e instanceof RpcCallError);
        assert.equal(e.code, -32011);
        assert.equal(e.message, 'to address not authorized');
        assert.deepEqual(e.data, { rule: 'to' });
        assert.equal(e.httpStatus, 200);
        return true;
      });
    } finally {
      backend.onSignTransaction = async () => SIGNED_TX;
    }
  });

  test('any other error is -32603 "internal error", logged but never echoed', async () => {
    backend.onSignBlockPayload = async () => { throw new Error('share file /secret/path unreadable'); };
    try {
      const r = await call('opsigner_signBlockPayloadV2', [{}], 'x');
      assert.deepEqual(r.json, err('x', -32603, 'internal error'));
      const logged = logs.records().find((l) => l['msg'] === 'signing API: internal error');
      assert.ok(logged, 'the internal error is logged');
      assert.equal((logged['err'] as { message: string }).message, 'share file /secret/path unreadable');
      assert.equal(logged['client'], 'batcher');
    } finally {
      backend.onSignBlockPayload = async () => SIGNATURE_65;
    }
  });

  test('unknown method → -32601 naming it', async () => {
    assert.deepEqual((await call('eth_chainId', [])).json, err(1, -32601, 'the method "eth_chainId" does not exist/is not available'));
  });

  test('eth_sign → -32601, deliberately not served', async () => {
    assert.deepEqual((await call('eth_sign', ['0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266', '0xdeadbeef'])).json, err(1, -32601,
      'the method eth_sign is deliberately not served: Potluck never signs raw bytes or typed data, only transactions (eth_signTransaction) and block payloads (opsigner_signBlockPayload[V2])'));
  });

  test('params: an object, too few or too many → -32602 naming the method', async () => {
    assert.deepEqual((await call('eth_signTransaction', { from: '0x' })).json,
      err(1, -32602, 'invalid params: eth_signTransaction takes positional params (an array), got an object'));
    assert.deepEqual((await call('eth_signTransaction', [])).json, err(1, -32602, 'invalid params: eth_signTransaction takes exactly 1 param, got 0'));
    assert.deepEqual((await call('eth_signTransaction')).json, err(1, -32602, 'invalid params: eth_signTransaction takes exactly 1 param, got 0'));
    assert.deepEqual((await call('opsigner_signBlockPayload', [{}, {}])).json, err(1, -32602, 'invalid params: opsigner_signBlockPayload takes exactly 1 param, got 2'));
    assert.deepEqual((await call('health_status', [1])).json, err(1, -32602, 'invalid params: health_status takes exactly 0 params, got 1'));
  });
});

describe('JSON-RPC framing', () => {
  test('bad JSON → -32700 with id null', async () => {
    const r = await rpc('{"jsonrpc":"2.0","id":1,');
    assert.equal(r.status, 200);
    const e = (r.json as { error: { code: number; message: string }; id: unknown });
    assert.equal(e.id, null);
    assert.equal(e.error.code, -32700);
    assert.match(e.error.message, /^parse error: /);
  });

  test('a body that is not UTF-8 → -32700', async () => {
    const r = await rawRequest({ port: api.port, ca: certs.ca.certPem, cert: certs.batcher, body: Buffer.from([0x7b, 0xff, 0x7d]) });
    assert.deepEqual(JSON.parse(r.body), err(null, -32700, 'parse error: the body is not valid UTF-8'));
  });

  test('wrong jsonrpc version, missing method, wrong id type, unknown member → -32600', async () => {
    assert.deepEqual((await rpc({ jsonrpc: '1.0', id: 3, method: 'health_status' })).json,
      err(3, -32600, 'invalid request: "jsonrpc" must be exactly "2.0", got "1.0"'));
    assert.deepEqual((await rpc({ id: 3, method: 'health_status' })).json,
      err(3, -32600, 'invalid request: "jsonrpc" must be exactly "2.0", got undefined'));
    assert.deepEqual((await rpc({ jsonrpc: '2.0', id: 4 })).json,
      err(4, -32600, 'invalid request: "method" must be a non-empty string, got undefined'));
    assert.deepEqual((await rpc({ jsonrpc: '2.0', id: { a: 1 }, method: 'health_status' })).json,
      err(null, -32600, 'invalid request: "id" must be a string, a number or null, got object'));
    assert.deepEqual((await rpc({ jsonrpc: '2.0', id: true, method: 'health_status' })).json,
      err(null, -32600, 'invalid request: "id" must be a string, a number or null, got boolean'));
    assert.deepEqual((await rpc({ jsonrpc: '2.0', id: 5, method: 'health_status', extra: 1 })).json,
      err(5, -32600, 'invalid request: unknown member "extra"'));
    assert.deepEqual((await rpc({ jsonrpc: '2.0', id: 6, method: 'health_status', params: 'x' })).json,
      err(6, -32600, 'invalid request: "params" must be an array or an object when present, got string'));
    assert.deepEqual((await rpc(42)).json, err(null, -32600, 'invalid request: must be a JSON object, got number'));
  });

  test('a notification gets no response (204) but runs', async () => {
    backend.calls = [];
    const r = await rawRequest({ port: api.port, ca: certs.ca.certPem, cert: certs.batcher,
      body: JSON.stringify({ jsonrpc: '2.0', method: 'eth_signTransaction', params: [{ n: 1 }] }) });
    assert.equal(r.status, 204);
    assert.equal(r.body, '');
    assert.deepEqual(backend.calls, [{ method: 'signTransaction', args: { n: 1 }, ctx: { client: 'batcher' } }]);
  });

  test('a batch runs each entry in order; notifications get no entry', async () => {
    backend.calls = [];
    const r = await rpc([
      { jsonrpc: '2.0', id: 1, method: 'health_status' },
      { jsonrpc: '2.0', method: 'eth_signTransaction', params: [{ n: 1 }] },
      { jsonrpc: '2.0', id: 'b', method: 'eth_signTransaction', params: [{ n: 2 }] },
      { jsonrpc: '1.0', id: 3, method: 'health_status' },
      7,
      { jsonrpc: '2.0', id: 4, method: 'nope' },
    ]);
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, [
      { jsonrpc: '2.0', id: 1, result: VERSION },
      { jsonrpc: '2.0', id: 'b', result: SIGNED_TX },
      err(3, -32600, 'invalid request: "jsonrpc" must be exactly "2.0", got "1.0"'),
      err(null, -32600, 'invalid request: must be a JSON object, got number'),
      err(4, -32601, 'the method "nope" does not exist/is not available'),
    ]);
    assert.deepEqual(backend.calls.map((c) => c.args), [{ n: 1 }, { n: 2 }]);
  });

  test('a batch of notifications only → 204; empty batch and batch over 100 → -32600', async () => {
    const n = await rawRequest({ port: api.port, ca: certs.ca.certPem, cert: certs.batcher,
      body: JSON.stringify([{ jsonrpc: '2.0', method: 'health_status' }, { jsonrpc: '2.0', method: 'health_status' }]) });
    assert.equal(n.status, 204);
    assert.deepEqual((await rpc([])).json, err(null, -32600, 'invalid request: empty batch'));
    const big = Array.from({ length: 101 }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'health_status' }));
    assert.deepEqual((await rpc(big)).json, err(null, -32600, 'invalid request: batch of 101 requests exceeds the limit of 100'));
    const max = await rpc(big.slice(0, 100));
    assert.equal((max.json as unknown[]).length, 100);
  });
});

describe('HTTP limits', () => {
  test('content type must be JSON (415 otherwise); a charset parameter is fine', async () => {
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'health_status' });
    const plain = await rawRequest({ port: api.port, ca: certs.ca.certPem, cert: certs.batcher, body, headers: { 'content-type': 'text/plain' } });
    assert.equal(plain.status, 415);
    assert.deepEqual(JSON.parse(plain.body), err(null, -32600, 'invalid content type "text/plain", only application/json is supported'));
    const charset = await rawRequest({ port: api.port, ca: certs.ca.certPem, cert: certs.batcher, body, headers: { 'content-type': 'application/json; charset=utf-8' } });
    assert.equal(charset.status, 200);
  });

  test('GET on the JSON-RPC path → 405 allowing POST', async () => {
    const r = await rawRequest({ port: api.port, ca: certs.ca.certPem, cert: certs.batcher, method: 'GET', path: '/' });
    assert.equal(r.status, 405);
    assert.equal(r.headers['allow'], 'POST');
    assert.deepEqual(JSON.parse(r.body), err(null, -32600, 'HTTP method GET is not allowed: JSON-RPC takes POST'));
  });

  test('a body over the limit → 413 with a JSON-RPC error, and the server stays healthy', async () => {
    backend.calls = [];
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'potluck_provideBlobs', params: [['0x' + '00'.repeat(DEFAULT_MAX_BODY_BYTES / 2)]] });
    assert.ok(Buffer.byteLength(body) > DEFAULT_MAX_BODY_BYTES);
    const r = await rawRequest({ port: api.port, ca: certs.ca.certPem, cert: certs.batcher, body });
    assert.equal(r.status, 413);
    assert.equal(r.headers['connection'], 'close');
    assert.deepEqual(JSON.parse(r.body), err(null, -32600, `request body exceeds ${DEFAULT_MAX_BODY_BYTES} bytes`));
    assert.equal(backend.calls.length, 0);
    assert.equal(await batcher.call('health_status'), VERSION);
  });

  test('a body of exactly the limit is read', async () => {
    const small = await startApiServer({
      host: '127.0.0.1', port: 0, tls: { ca: certs.ca.certPem, cert: certs.server.certPem, key: certs.server.keyPem },
      backend, log: logs.log, metrics: createApiMetrics({ defaultMetrics: false }), maxBodyBytes: 100,
    });
    try {
      const exact = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'health_status' }).padEnd(100, ' ');
      assert.equal((await rpcAs(small.port, certs.ca.certPem, certs.batcher, exact)).status, 200);
      assert.equal((await rpcAs(small.port, certs.ca.certPem, certs.batcher, exact + ' ')).status, 413);
    } finally {
      await small.close();
    }
  });

  test('signing calls beyond maxConcurrent are refused with -32000 while health_status still answers', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    const slow = new FakeBackend();
    slow.onSignTransaction = async () => { await gate; return SIGNED_TX; };
    const busy = await startApiServer({
      host: '127.0.0.1', port: 0, tls: { ca: certs.ca.certPem, cert: certs.server.certPem, key: certs.server.keyPem },
      backend: slow, log: logs.log, metrics: createApiMetrics({ defaultMetrics: false }), maxConcurrent: 1,
    });
    try {
      const first = rpcAs(busy.port, certs.ca.certPem, certs.batcher, { jsonrpc: '2.0', id: 1, method: 'eth_signTransaction', params: [{}] });
      while (slow.calls.length === 0) await new Promise((r) => setTimeout(r, 5));
      let settled = false;
      const pending = rpcAs(busy.port, certs.ca.certPem, certs.batcher, { jsonrpc: '2.0', id: 2, method: 'eth_signTransaction', params: [{}] }).finally(() => { settled = true; });
      while (!settled && slow.calls.length < 2) await new Promise((r) => setTimeout(r, 5));
      if (!settled) release(); // the limit let it through to the backend: let it finish, so the assertion below fails instead of the test hanging
      const second = await pending;
      assert.deepEqual(second.json, err(2, -32000, 'server busy: 1 signing calls in flight, retry later'));
      assert.deepEqual((await rpcAs(busy.port, certs.ca.certPem, certs.batcher, { jsonrpc: '2.0', id: 3, method: 'health_status' })).json,
        { jsonrpc: '2.0', id: 3, result: VERSION });
      release();
      assert.deepEqual((await first).json, { jsonrpc: '2.0', id: 1, result: SIGNED_TX });
    } finally {
      release();
      await busy.close();
    }
  });
});

describe('metrics', () => {
  test('/metrics (no client certificate) shows op-signer counters and the API counters after calls', async () => {
    const b = new FakeBackend();
    const m = await startApiServer({
      host: '127.0.0.1', port: 0, tls: { ca: certs.ca.certPem, cert: certs.server.certPem, key: certs.server.keyPem },
      backend: b, log: logs.log,
    });
    const client = new RpcClient({ url: m.url, ca: certs.ca.certPem, cert: certs.batcher.certPem, key: certs.batcher.keyPem });
    try {
      await client.call('eth_signTransaction', [{}]);
      b.onSignTransaction = async () => { throw new RpcError(RPC_ERRORS.invalidTransaction, 'nonce not specified'); };
      await assert.rejects(client.call('eth_signTransaction', [{}]), RpcCallError);
      await client.call('opsigner_signBlockPayload', [{}]);
      await assert.rejects(client.call('eth_sign', []), RpcCallError);
      await rpcAs(m.port, certs.ca.certPem, null, { jsonrpc: '2.0', id: 1, method: 'health_status' });
      const r = await client.get('/metrics');
      assert.equal(r.status, 200);
      const lines = r.body.split('\n');
      for (const line of [
        'signer_signtransaction_total{client="batcher",status="success",error=""} 1',
        'signer_signtransaction_total{client="batcher",status="error",error="invalid_transaction"} 1',
        'signer_signblockpayload_total{client="batcher",status="success",error=""} 1',
        'potluck_api_requests_total{method="eth_signTransaction",code="ok"} 1',
        'potluck_api_requests_total{method="eth_signTransaction",code="-32010"} 1',
        'potluck_api_requests_total{method="opsigner_signBlockPayload",code="ok"} 1',
        'potluck_api_requests_total{method="unknown",code="-32601"} 1',
        'potluck_api_requests_total{method="http",code="http_401"} 1',
        'potluck_api_request_duration_seconds_count{method="eth_signTransaction"} 2',
      ]) assert.ok(lines.includes(line), `missing: ${line}`);
      assert.ok(lines.some((l) => l.startsWith('potluck_process_cpu_user_seconds_total ')), 'default metrics carry the potluck_ prefix');
      const anon = await rawRequest({ port: m.port, ca: certs.ca.certPem, cert: null, method: 'GET', path: '/metrics' });
      assert.equal(anon.status, 200);
      assert.match(String(anon.headers['content-type']), /^text\/plain/);
    } finally {
      client.close();
      await m.close();
    }
  });
});

describe('lifecycle', () => {
  test('close() stops the server, even with a keep-alive connection open', async () => {
    const s = await startApiServer({
      host: '127.0.0.1', port: 0, tls: { ca: certs.ca.certPem, cert: certs.server.certPem, key: certs.server.keyPem },
      backend, log: logs.log, metrics: createApiMetrics({ defaultMetrics: false }), closeGraceMs: 200,
    });
    const c = new RpcClient({ url: s.url, ca: certs.ca.certPem, cert: certs.batcher.certPem, key: certs.batcher.keyPem });
    assert.equal(await c.call('health_status'), VERSION);
    await s.close();
    await assert.rejects(c.call('health_status'), { name: 'RpcTransportError', code: 'ECONNREFUSED' });
    c.close();
  });
});
