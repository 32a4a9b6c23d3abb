/**
 * The signing API's mTLS gaps closed (issue 11): expired and revoked client certificates, a CRL
 * reloaded in place (a bad one keeps the previous files), and the limits on connections and on
 * calls per client. Real TLS, a fake backend.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import tls from 'node:tls';
import { RpcClient, RpcTransportError } from '../../src/api/client.ts';
import { CrlError, createCrl, certificateSerial } from '../../src/api/crl.ts';
import { createApiMetrics } from '../../src/api/metrics.ts';
import { DEFAULT_MAX_CALLS_PER_CLIENT, DEFAULT_MAX_CONNECTIONS, TlsConfigError, startApiServer, type ApiServer, type ApiTls } from '../../src/api/server.ts';
import type { PemPair } from '../../src/api/tls-certs.ts';
import { FakeBackend, SIGNED_TX, VERSION, captureLogger, clientCertValid, rpcAs, testCerts, type Certs } from './helpers.ts';

const DAY = 86_400_000;
const health = { jsonrpc: '2.0', id: 1, method: 'health_status' };
const sign = (id: number) => ({ jsonrpc: '2.0', id, method: 'eth_signTransaction', params: [{}] });
const pair = (p: PemPair) => ({ cert: p.certPem, key: p.keyPem });
const err = (id: unknown, code: number, message: string) => ({ jsonrpc: '2.0', id, error: { code, message } });

let certs: Certs;
before(async () => { certs = await testCerts(); });

const files = (over: Partial<ApiTls> = {}): ApiTls => ({ ca: certs.ca.certPem, cert: certs.server.certPem, key: certs.server.keyPem, ...over });

async function server(over: Partial<Parameters<typeof startApiServer>[0]> = {}): Promise<{ api: ApiServer; backend: FakeBackend; metrics: ReturnType<typeof createApiMetrics> }> {
  const backend = new FakeBackend();
  const metrics = createApiMetrics({ defaultMetrics: false });
  const api = await startApiServer({ host: '127.0.0.1', port: 0, tls: files(), backend, log: captureLogger().log, metrics, ...over });
  return { api, backend, metrics };
}

const metricValue = async (m: ReturnType<typeof createApiMetrics>, name: string) =>
  Number((await m.registry.metrics()).split('\n').find((l) => l.startsWith(`${name} `))?.split(' ')[1]);

describe('certificate validity', () => {
  let api: ApiServer;
  before(async () => { ({ api } = await server()); });
  after(async () => { await api.close(); });

  test('an expired client certificate → 401 CERT_HAS_EXPIRED; probes still answer on its connection', async () => {
    const expired = await clientCertValid(certs.ca, 'batcher', new Date(Date.now() - 10 * DAY), new Date(Date.now() - DAY));
    const r = await rpcAs(api.port, certs.ca.certPem, expired, health);
    assert.equal(r.status, 401);
    assert.deepEqual(r.json, err(null, -32600, 'client certificate was not accepted: CERT_HAS_EXPIRED'));
    const c = new RpcClient({ url: api.url, ca: certs.ca.certPem, cert: expired.certPem, key: expired.keyPem });
    try {
      assert.equal((await c.get('/healthz')).status, 200);
    } finally {
      c.close();
    }
  });

  test('a certificate not yet valid → 401 CERT_NOT_YET_VALID', async () => {
    const early = await clientCertValid(certs.ca, 'batcher', new Date(Date.now() + DAY), new Date(Date.now() + 10 * DAY));
    const r = await rpcAs(api.port, certs.ca.certPem, early, health);
    assert.equal(r.status, 401);
    assert.deepEqual(r.json, err(null, -32600, 'client certificate was not accepted: CERT_NOT_YET_VALID'));
  });

  test('a certificate that expires while its keep-alive connection is open is refused on that connection from then on', async () => {
    let clock = Date.now();
    const { api: timed } = await server({ now: () => clock });
    const notAfter = new Date(Math.floor(Date.now() / 1000) * 1000 + DAY);
    const c = new RpcClient({ url: timed.url, ca: certs.ca.certPem, ...pair(await clientCertValid(certs.ca, 'batcher', new Date(Date.now() - DAY), notAfter)) });
    try {
      assert.equal(await c.call('health_status'), VERSION);
      clock = notAfter.getTime() + 1_000;
      await assert.rejects(c.call('health_status'), (e: Error & { httpStatus?: number }) =>
        e.httpStatus === 401 && e.message === 'client certificate was not accepted: CERT_HAS_EXPIRED');
    } finally {
      c.close();
      await timed.close();
    }
  });
});

describe('revocation: a CRL installed and reloaded in place', () => {
  let api: ApiServer;
  let metrics: ReturnType<typeof createApiMetrics>;
  let crlPem: string;
  before(async () => { ({ api, metrics } = await server()); });
  after(async () => { await api.close(); });

  const status = async (cert: PemPair) => (await rpcAs(api.port, certs.ca.certPem, cert, health)).status;

  test('after the reload a revoked certificate gets 401 CERT_REVOKED on a new connection, with a session ticket from before (no resumption), and on a keep-alive connection opened before; others are served', async () => {
    // The proposer's connections from before the CRL: a keep-alive one, and a TLS session to resume.
    const keepAlive = new RpcClient({ url: api.url, ca: certs.ca.certPem, cert: certs.proposer.certPem, key: certs.proposer.keyPem });
    const resumer = new https.Agent({ keepAlive: false, ca: certs.ca.certPem, cert: certs.proposer.certPem, key: certs.proposer.keyPem });
    const viaResumer = () => new Promise<{ status: number; resumed: boolean; body: string }>((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port: api.port, method: 'POST', path: '/', agent: resumer, headers: { 'content-type': 'application/json' } }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => { body += d.toString(); });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, resumed: (req.socket as tls.TLSSocket).isSessionReused(), body }));
      });
      req.on('error', reject);
      req.end(JSON.stringify(health));
    });
    try {
      assert.equal(await keepAlive.call('health_status'), VERSION);
      assert.equal((await viaResumer()).status, 200);

      const crl = await createCrl(certs.ca, { revoke: [{ serial: certificateSerial(certs.proposer.certPem), reason: 'keyCompromise' }], days: 30 });
      crlPem = crl.pem;
      const r = await api.reloadTls(files({ crl: crlPem }));
      assert.equal(r.crl?.revoked, 1);
      assert.equal(r.crl?.nextUpdate.getTime(), crl.nextUpdate.getTime());
      assert.equal(await metricValue(metrics, 'potluck_api_crl_next_update_seconds'), crl.nextUpdate.getTime() / 1000);

      const fresh = await rpcAs(api.port, certs.ca.certPem, certs.proposer, health);
      assert.equal(fresh.status, 401);
      assert.deepEqual(fresh.json, err(null, -32600, 'client certificate was not accepted: CERT_REVOKED'));
      const resumed = await viaResumer();
      assert.equal(resumed.status, 401);
      assert.equal(resumed.resumed, false, 'the new context has new ticket keys: a session from before the reload does not resume');
      assert.deepEqual(JSON.parse(resumed.body), err(null, -32600, 'client certificate was not accepted: CERT_REVOKED'));
      await assert.rejects(keepAlive.call('health_status'), (e: Error & { httpStatus?: number }) =>
        e.httpStatus === 401 && e.message === 'client certificate was not accepted: CERT_REVOKED');
      assert.equal(await status(certs.batcher), 200);
    } finally {
      keepAlive.close();
      resumer.destroy();
    }
  });

  test('a bad CRL file is refused with an error naming it, and the previous files stay in force', async () => {
    const otherCrl = await createCrl(certs.otherCa, { revoke: [], days: 30 });
    const stale = await createCrl(certs.ca, { revoke: [], days: 1, now: new Date(Date.now() - 3 * DAY) });
    const cases: [string, Partial<ApiTls>, (e: unknown) => boolean][] = [
      ['not a CRL', { crl: 'hello\n' }, (e) => e instanceof CrlError && e.message === 'ca.crl: no PEM CRL in it (expected "-----BEGIN X509 CRL-----")'],
      ['broken base64 inside the PEM markers', { crl: '-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n' }, (e) => e instanceof CrlError && e.message === 'ca.crl: CRL 1 is not a readable X.509 CRL'],
      ['signed by another CA', { crl: otherCrl.pem }, (e) => e instanceof CrlError && e.message === 'ca.crl: not signed by the CA in ca.crt (its issuer is "CN=Some other CA")'],
      ['past its nextUpdate', { crl: stale.pem, crlName: '/etc/potluck/tls/ca.crl' }, (e) => e instanceof CrlError
        && e.message === `/etc/potluck/tls/ca.crl: expired at ${stale.nextUpdate.toISOString()} (its nextUpdate); make a new one with "potluck tls revoke --ca DIR"`],
      ['a server key that does not match its certificate', { crl: crlPem, key: certs.batcher.keyPem }, (e) => e instanceof TlsConfigError
        && /^the TLS files do not make a usable server context: .*key values mismatch/.test(e.message)],
    ];
    for (const [what, over, check] of cases) {
      await assert.rejects(api.reloadTls(files(over)), check, what);
      assert.equal(await status(certs.proposer), 401, `${what}: still revoked`);
      assert.equal(await status(certs.batcher), 200, `${what}: still served`);
    }
  });

  test('a renewed CRL keeps its entries; a CRL without the entry un-revokes', async () => {
    const renewed = await createCrl(certs.ca, { revoke: [], previous: crlPem, days: 30 });
    assert.equal(renewed.number, 2n);
    assert.deepEqual(renewed.entries.map((e) => [e.serial, e.reason]), [[certificateSerial(certs.proposer.certPem), 'keyCompromise']]);
    await api.reloadTls(files({ crl: renewed.pem }));
    assert.equal(await status(certs.proposer), 401);
    await api.reloadTls(files({ crl: (await createCrl(certs.ca, { revoke: [], days: 30 })).pem }));
    assert.equal(await status(certs.proposer), 200);
    await api.reloadTls(files());
    assert.equal(await metricValue(metrics, 'potluck_api_crl_next_update_seconds'), 0);
  });

  test('a CRL that runs out while loaded: OpenSSL refuses every client of its CA with CRL_HAS_EXPIRED (why the CRL must be renewed)', async () => {
    // X.509 times have whole seconds; the CRL ends 3–4 s from now (OpenSSL reads the real clock, so
    // this test waits for it), time enough for the call before it under load.
    const ends = Math.floor(Date.now() / 1000) * 1000 + 4_000;
    const brief = await createCrl(certs.ca, { revoke: [], days: 1, now: new Date(ends - DAY) });
    const { api: short } = await server({ tls: files({ crl: brief.pem }) });
    try {
      assert.equal((await rpcAs(short.port, certs.ca.certPem, certs.batcher, health)).status, 200);
      await new Promise((r) => setTimeout(r, ends + 1_000 - Date.now()));
      const r = await rpcAs(short.port, certs.ca.certPem, certs.batcher, health);
      assert.equal(r.status, 401);
      assert.deepEqual(r.json, err(null, -32600, 'client certificate was not accepted: CRL_HAS_EXPIRED'));
    } finally {
      await short.close();
    }
  });

  test('startApiServer refuses a bad CRL the same way', async () => {
    await assert.rejects(server({ tls: files({ crl: 'nope' }) }), (e: unknown) => e instanceof CrlError && e.message === 'ca.crl: no PEM CRL in it (expected "-----BEGIN X509 CRL-----")');
  });
});

describe('limits', () => {
  test(`defaults: ${DEFAULT_MAX_CONNECTIONS} connections, ${DEFAULT_MAX_CALLS_PER_CLIENT} calls in flight per client`, () => {
    assert.equal(DEFAULT_MAX_CONNECTIONS, 512);
    assert.equal(DEFAULT_MAX_CALLS_PER_CLIENT, 256);
  });

  test('calls per client: beyond the limit -32000 "peer busy" naming the client; other clients and health_status go on', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    const { api, backend } = await server({ maxCallsPerClient: 2 });
    backend.onSignTransaction = async () => { await gate; return SIGNED_TX; };
    try {
      const pending = [rpcAs(api.port, certs.ca.certPem, certs.batcher, sign(1)), rpcAs(api.port, certs.ca.certPem, certs.batcher, sign(2))];
      while (backend.calls.length < 2) await new Promise((r) => setTimeout(r, 5));
      const third = await rpcAs(api.port, certs.ca.certPem, certs.batcher, sign(3));
      assert.equal(third.status, 200);
      assert.deepEqual(third.json, err(3, -32000, 'peer busy: client "batcher" has 2 calls in flight (the limit per client), retry later'));
      assert.deepEqual((await rpcAs(api.port, certs.ca.certPem, certs.batcher, health)).json, { jsonrpc: '2.0', id: 1, result: VERSION });
      const other = rpcAs(api.port, certs.ca.certPem, certs.proposer, sign(4));
      while (backend.calls.length < 3) await new Promise((r) => setTimeout(r, 5));
      release();
      for (const [i, p] of [...pending, other].entries()) assert.deepEqual((await p).json, { jsonrpc: '2.0', id: [1, 2, 4][i], result: SIGNED_TX });
      assert.deepEqual((await rpcAs(api.port, certs.ca.certPem, certs.batcher, sign(5))).json, { jsonrpc: '2.0', id: 5, result: SIGNED_TX }, 'the slots are free again');
    } finally {
      release();
      await api.close();
    }
  });

  test('connections: beyond maxConnections a new connection is dropped at accept and counted; one closes, the next is served', async () => {
    const { api, metrics } = await server({ maxConnections: 2 });
    const open = (): Promise<tls.TLSSocket> => new Promise((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: api.port, ca: certs.ca.certPem, servername: 'localhost', minVersion: 'TLSv1.3' }, () => resolve(s));
      s.once('error', reject);
    });
    const held: tls.TLSSocket[] = [];
    try {
      held.push(await open(), await open());
      await assert.rejects(open(), (e: NodeJS.ErrnoException) => e.code === 'ECONNRESET');
      assert.equal(await metricValue(metrics, 'potluck_api_connections_dropped_total'), 1);
      const c = new RpcClient({ url: api.url, ca: certs.ca.certPem, cert: certs.batcher.certPem, key: certs.batcher.keyPem });
      try {
        await assert.rejects(c.call('health_status'), (e: unknown) => e instanceof RpcTransportError && e.code === 'ECONNRESET');
        const gone = held.pop()!;
        await new Promise<void>((r) => { gone.once('close', () => r()); gone.destroy(); });
        // the server learns of the close on its side asynchronously
        for (let i = 0; api.activity().connections > 1 && i < 200; i++) await new Promise((r) => setTimeout(r, 5));
        assert.equal(await c.call('health_status'), VERSION);
      } finally {
        c.close();
      }
    } finally {
      for (const s of held) s.destroy();
      await api.close();
    }
  });
});
