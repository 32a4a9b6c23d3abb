/**
 * The exact request bodies the Go op-service signer client sends (fixtures/README.md names the
 * source files and commits) reach the backend unchanged, and decode with the policy decoders.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { decodeTransactionArgs } from '../../src/policy/transaction-args.ts';
import { blockSigningHash, decodeBlockPayloadArgsV1, decodeBlockPayloadArgsV2 } from '../../src/policy/block-payload.ts';
import type { ApiServer } from '../../src/api/server.ts';
import { FakeBackend, SIGNATURE_65, SIGNED_TX, VERSION, rawRequest, startTestServer, type Certs } from './helpers.ts';

interface Fixture { name: string; sentBy: string; body: string }
const fixtures = (JSON.parse(readFileSync(new URL('./fixtures/go-client-requests.json', import.meta.url), 'utf8')) as { requests: Fixture[] }).requests;
const byName = (name: string) => {
  const f = fixtures.find((x) => x.name === name);
  assert.ok(f, `fixture ${name}`);
  return f;
};
const args = (f: Fixture) => (JSON.parse(f.body) as { params: unknown[] }).params[0];

let certs: Certs;
let backend: FakeBackend;
let api: ApiServer;

before(async () => {
  ({ certs, backend, api } = await startTestServer());
});
after(() => api.close());

/** Sends a body byte for byte with the headers Go's client sets. */
const send = (f: Fixture) => rawRequest({
  port: api.port, ca: certs.ca.certPem, cert: certs.batcher, body: f.body,
  headers: { 'content-type': 'application/json', accept: 'application/json', 'user-agent': 'Go-http-client/1.1' },
});

describe('Go client requests through the API', () => {
  test('health_status without a params member', async () => {
    const r = await send(byName('health_status'));
    assert.equal(r.status, 200);
    assert.equal(r.body, `{"jsonrpc":"2.0","id":1,"result":"${VERSION}"}`);
  });

  for (const name of ['eth_signTransaction type 2 (calldata batch)', 'eth_signTransaction type 3 (blob batch, no sidecar)']) {
    test(`${name}: params[0] reaches the backend unchanged`, async () => {
      const f = byName(name);
      backend.calls = [];
      const r = await send(f);
      assert.equal(r.status, 200);
      assert.deepEqual(JSON.parse(r.body), { jsonrpc: '2.0', id: (JSON.parse(f.body) as { id: number }).id, result: SIGNED_TX });
      assert.deepEqual(backend.calls, [{ method: 'signTransaction', args: args(f), ctx: { client: 'batcher' } }]);
      assert.equal(JSON.stringify(backend.calls[0]!.args), JSON.stringify(args(f)), 'field order and nulls kept');
    });
  }

  for (const [name, version] of [['opsigner_signBlockPayload (V1)', 1], ['opsigner_signBlockPayloadV2', 2]] as const) {
    test(`${name}: params[0] reaches the backend unchanged as V${version}`, async () => {
      const f = byName(name);
      backend.calls = [];
      const r = await send(f);
      assert.deepEqual(JSON.parse(r.body), { jsonrpc: '2.0', id: 2, result: SIGNATURE_65 });
      assert.deepEqual(backend.calls, [{ method: 'signBlockPayload', args: args(f), version, ctx: { client: 'batcher' } }]);
    });
  }
});

describe('Go client requests decode with the policy decoders', () => {
  test('type 2: gasPrice null, data null, input set, accessList []', () => {
    const r = decodeTransactionArgs(args(byName('eth_signTransaction type 2 (calldata batch)')));
    assert.deepEqual(r, {
      ok: true,
      tx: {
        type: 'eip1559', chainId: 900, from: '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266', to: '0xFf00000000000000000000000000000000000901',
        nonce: 42, gas: 0x5d8cn, maxFeePerGas: 2_000_000_000n, maxPriorityFeePerGas: 1_000_000_000n, maxFeePerBlobGas: null,
        value: 0n, data: `0x00${'ab'.repeat(16)}000000000004deadbeef01`, accessList: [], blobVersionedHashes: null,
      },
    });
  });

  test('type 3: input "0x", blob hashes and blob fee cap', () => {
    const r = decodeTransactionArgs(args(byName('eth_signTransaction type 3 (blob batch, no sidecar)')));
    assert.deepEqual(r, {
      ok: true,
      tx: {
        type: 'eip4844', chainId: 900, from: '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266', to: '0xFf00000000000000000000000000000000000901',
        nonce: 43, gas: 21000n, maxFeePerGas: 2_000_000_000n, maxPriorityFeePerGas: 1_000_000_000n, maxFeePerBlobGas: 1_000_000_000n,
        value: 0n, data: '0x', accessList: [], blobVersionedHashes: [`0x01${'11'.repeat(31)}`, `0x01${'22'.repeat(31)}`],
      },
    });
  });

  test('V1 and V2 block payloads decode to the same signing hash', () => {
    const a = decodeBlockPayloadArgsV1(args(byName('opsigner_signBlockPayload (V1)')));
    const b = decodeBlockPayloadArgsV2(args(byName('opsigner_signBlockPayloadV2')));
    assert.equal(a.senderAddress, '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC');
    assert.equal(b.senderAddress, null);
    assert.deepEqual({ ...a, senderAddress: null }, b);
    assert.equal(blockSigningHash(a), '0x973594ed301f691ac08ffef61cca9dc8f8bcc42d722db36b87af3a7bba21dd2c');
  });
});
