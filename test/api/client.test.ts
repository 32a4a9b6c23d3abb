/** The mTLS JSON-RPC client and its viem transport (system-anchors §1.2: TLS 1.3, server verified by the CA). */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { createWalletClient, parseGwei, recoverTransactionAddress, parseTransaction, type Hex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { RPC_ERRORS, RpcError } from '../../src/api/backend.ts';
import { RpcCallError, RpcClient, RpcTransportError, viemTransport } from '../../src/api/client.ts';
import { createApiMetrics } from '../../src/api/metrics.ts';
import { startApiServer, type ApiServer } from '../../src/api/server.ts';
import { decodeTransactionArgs, toSerializable } from '../../src/policy/transaction-args.ts';
import { FakeBackend, VERSION, captureLogger, startTestServer, type Certs } from './helpers.ts';

/** Hardhat's well-known account #0 key: test only. */
const TEST_KEY: Hex = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';
const account = privateKeyToAccount(TEST_KEY);

let certs: Certs;
let backend: FakeBackend;
let api: ApiServer;
const open: RpcClient[] = [];

before(async () => {
  ({ certs, backend, api } = await startTestServer());
});
after(async () => {
  for (const c of open) c.close();
  await api.close();
});

function client(over: Partial<ConstructorParameters<typeof RpcClient>[0]> = {}): RpcClient {
  const c = new RpcClient({ url: api.url, ca: certs.ca.certPem, cert: certs.batcher.certPem, key: certs.batcher.keyPem, ...over });
  open.push(c);
  return c;
}

/** A plain HTTPS server with our server certificate, for transport-level behaviour. */
async function plainServer(handler: (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void, tls: Partial<https.ServerOptions> = {}) {
  const s = https.createServer({ cert: certs.server.certPem, key: certs.server.keyPem, ...tls }, handler);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { url: `https://127.0.0.1:${(s.address() as AddressInfo).port}`, close: () => new Promise<void>((r) => { s.closeAllConnections(); s.close(() => r()); }) };
}

describe('TLS', () => {
  test('refuses a server whose certificate is not from the CA', async () => {
    const other = await startApiServer({
      host: '127.0.0.1', port: 0, tls: { ca: certs.ca.certPem, cert: certs.otherServer.certPem, key: certs.otherServer.keyPem },
      backend, log: captureLogger().log, metrics: createApiMetrics({ defaultMetrics: false }),
    });
    try {
      backend.calls = [];
      await assert.rejects(client({ url: other.url }).call('eth_signTransaction', [{}]), (e: unknown) => {
        assert.ok(e instanceof RpcTransportError);
        assert.equal(e.code, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
        assert.equal(e.message, 'signing API unreachable: unable to verify the first certificate');
        return true;
      });
      assert.equal(backend.calls.length, 0);
    } finally {
      await other.close();
    }
  });

  test('refuses a TLS 1.2 server; the API refuses a TLS 1.2 client', async () => {
    const old = await plainServer((_q, r) => r.end('{}'), { maxVersion: 'TLSv1.2' });
    try {
      await assert.rejects(client({ url: old.url }).get('/healthz'), (e: unknown) =>
        e instanceof RpcTransportError && e.code === 'EPROTO' && /alert protocol version/.test(e.message));
    } finally {
      await old.close();
    }
    await assert.rejects(new Promise((resolve, reject) => {
      https.get({ host: '127.0.0.1', port: api.port, path: '/healthz', ca: certs.ca.certPem, maxVersion: 'TLSv1.2', agent: false }, resolve).on('error', reject);
    }), { code: 'EPROTO', message: /alert protocol version/ });
  });
});

describe('calls', () => {
  test('call returns the result; get reads the probes', async () => {
    const c = client();
    assert.equal(await c.call('health_status'), VERSION);
    assert.deepEqual(await c.get('/healthz'), { status: 200, body: '{"status":"ok"}' });
  });

  test('a probe-only client (no certificate) reads /healthz but its calls get 401', async () => {
    const anon = client({ cert: undefined, key: undefined });
    assert.equal((await anon.get('/healthz')).status, 200);
    await assert.rejects(anon.call('health_status'), (e: unknown) =>
      e instanceof RpcCallError && e.httpStatus === 401 && e.code === -32600 && e.message === 'client certificate was not provided');
  });

  test('an HTTP refusal carries its status: 403 for an unknown client', async () => {
    const stranger = client({ cert: certs.stranger.certPem, key: certs.stranger.keyPem });
    await assert.rejects(stranger.call('health_status'), (e: unknown) =>
      e instanceof RpcCallError && e.httpStatus === 403 && e.message === 'client "stranger" is not authorized');
  });

  test('a call that outlives timeoutMs fails with ETIMEDOUT', async () => {
    backend.onSignTransaction = () => new Promise(() => {});
    try {
      await assert.rejects(client({ timeoutMs: 150 }).call('eth_signTransaction', [{}]), (e: unknown) =>
        e instanceof RpcTransportError && e.code === 'ETIMEDOUT' && e.message === 'signing API unreachable: no response within 150 ms');
    } finally {
      backend.onSignTransaction = new FakeBackend().onSignTransaction;
    }
  });

  test('a non-JSON-RPC answer is an RpcCallError naming the status', async () => {
    const s = await plainServer((_q, r) => { r.writeHead(502); r.end('bad gateway'); });
    try {
      await assert.rejects(client({ url: s.url }).call('health_status'), (e: unknown) =>
        e instanceof RpcCallError && e.httpStatus === 502 && e.code === -32603 && e.message === 'HTTP 502: the response is not JSON: "bad gateway"');
    } finally {
      await s.close();
    }
  });
});

describe('keep-alive reuse (the keep-alive race, http-retry.ts)', () => {
  test('a reset of a reused socket is retried once on a fresh socket', async () => {
    const served = new Map<Socket, number>();
    let requests = 0;
    // Serves one request per connection, then resets the connection on the next one, as a server
    // that closed an idle keep-alive socket does.
    const s = await plainServer((req, res) => {
      requests++;
      const n = (served.get(req.socket) ?? 0) + 1;
      served.set(req.socket, n);
      if (n > 1) { req.socket.destroy(); return; }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', id: requests === 1 ? 1 : 2, result: 'ok' }));
    });
    try {
      const c = client({ url: s.url });
      assert.equal(await c.call('health_status'), 'ok');
      assert.equal(await c.call('health_status'), 'ok');
      assert.equal(requests, 3, 'one request on the first socket, one reset there, one retry on a new socket');
      assert.equal(served.size, 2);
    } finally {
      await s.close();
    }
  });

  test('a reset of a fresh socket is not retried', async () => {
    let requests = 0;
    const s = await plainServer((req) => { requests++; req.socket.destroy(); });
    try {
      await assert.rejects(client({ url: s.url }).call('health_status'), (e: unknown) => e instanceof RpcTransportError && e.code === 'ECONNRESET');
      assert.equal(requests, 1);
    } finally {
      await s.close();
    }
  });
});

describe('viemTransport', () => {
  test('createWalletClient with a JSON-RPC account signs through eth_signTransaction', async () => {
    backend.calls = [];
    // The backend here decodes with the policy decoder and signs with a plain key, so the result is a real signed tx.
    backend.onSignTransaction = async (args) => {
      const r = decodeTransactionArgs(args);
      if (!r.ok) throw new RpcError(RPC_ERRORS.invalidTransaction, r.problems.join('; '));
      return account.signTransaction(toSerializable(r.tx));
    };
    try {
      const wallet = createWalletClient({ account: account.address, transport: viemTransport(client(), { chainId: 900 }) });
      const signed = await wallet.signTransaction({
        chain: null, type: 'eip1559', to: '0xff00000000000000000000000000000000000901', data: '0x00',
        gas: 30_000n, maxFeePerGas: parseGwei('2'), maxPriorityFeePerGas: parseGwei('1'), nonce: 7,
      });
      assert.equal(await recoverTransactionAddress({ serializedTransaction: signed }), account.address);
      const tx = parseTransaction(signed);
      assert.equal(tx.chainId, 900);
      assert.equal(tx.nonce, 7);
      assert.deepEqual(backend.calls[0]!.args, {
        data: '0x00', from: account.address, gas: '0x7530', maxFeePerGas: '0x77359400', maxPriorityFeePerGas: '0x3b9aca00',
        nonce: '0x7', to: '0xff00000000000000000000000000000000000901', type: '0x2', chainId: '0x384',
      });
    } finally {
      backend.onSignTransaction = new FakeBackend().onSignTransaction;
    }
  });

  test('without chainId, viem\'s eth_chainId reaches the API and is not served', async () => {
    const wallet = createWalletClient({ account: account.address, transport: viemTransport(client()) });
    await assert.rejects(wallet.signTransaction({ chain: null, to: account.address, gas: 21_000n, maxFeePerGas: 1n, maxPriorityFeePerGas: 1n, nonce: 0 }),
      (e: unknown) => (e as { code?: number }).code === -32601);
  });
});
