import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpsRequest, Agent } from 'node:https';
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  bytesToHex, concat, createWalletClient, getAddress, hexToBytes, keccak256, numberToHex, parseGwei, parseTransaction,
  recoverAddress, recoverTransactionAddress, serializeTransaction, toHex, type Hex, type TransactionSerializableEIP4844,
} from 'viem';
import { FetchRequest, JsonRpcProvider, JsonRpcSigner } from 'ethers';
import { RpcCallError, RpcClient, viemTransport } from '../../src/api/client.ts';
import { issueCertificate, writeTlsFiles } from '../../src/api/tls-certs.ts';
import { auditDevnet, startDevnet, postSampleBatch, type Devnet } from '../../src/devnet/devnet.ts';
import { l1Client } from '../../src/devnet/l1-node.ts';
import { blobsFor, sidecarsFor } from '../../src/devnet/kzg.ts';
import { calldataFor, sampleChannel, BLOB_MAX_FRAME_DATA } from '../../src/devnet/sample-batch.ts';
import { adminCall } from '../../src/peer/admin-api.ts';
import { potluck } from '../../src/devnet/local-cluster.ts';
import { privateKeyFromProtobuf } from '@libp2p/crypto/keys';
import { openKeyShare } from '../../src/store/key-share-vault.ts';

/**
 * The signing API end to end (issue 4): the devnet's five peer processes, a Hardhat 2 L1, real
 * mTLS, and real clients (viem, ethers 6). Every refusal is checked for its exact op-signer code
 * and that nothing was signed.
 */
let d: Devnet;
let api: RpcClient;
// Nonces never sent to the L1, far ahead of the chain so they never meet a posted batch; the
// devnet's nonceWindow is raised to 4096 for that (a batcher keeps a few nonces in flight).
let nextNonce = 1000;
const freshNonce = () => nextNonce++;

const status = async (peer = 0) => (await adminCall(d.file.peers[peer]!.home, 'GET', '/v1/status')).body as {
  recentSignatures: { signers: string[]; digest: string }[];
  sessions: { recorded: Record<string, number> };
};
const signedCount = async () => {
  const counts = await Promise.all(d.file.peers.map((_, i) => status(i)));
  return counts.map((s) => JSON.stringify(s.sessions.recorded));
};

function batchArgs(nonce: number, over: Record<string, unknown> = {}): Record<string, unknown> {
  const data = toHex(calldataFor(sampleChannel({ maxFrameData: 1000 }).frames));
  return {
    from: d.file.groupAddress, to: d.file.batchInbox, gas: numberToHex(200_000), gasPrice: null,
    maxFeePerGas: numberToHex(parseGwei('20')), maxPriorityFeePerGas: numberToHex(parseGwei('1')),
    value: '0x0', nonce: numberToHex(nonce), data: null, input: data, accessList: [], chainId: numberToHex(d.file.chainId), ...over,
  };
}

async function refused(method: string, params: unknown[], code: number, rule: RegExp): Promise<void> {
  const before = await signedCount();
  await assert.rejects(api.call(method, params), (e: unknown) => {
    assert.ok(e instanceof RpcCallError, `expected RpcCallError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, rule);
    return true;
  });
  assert.deepEqual(await signedCount(), before, 'a refused request starts no signing session anywhere');
}

async function setPolicy(peer: number, edit: (p: Record<string, any>) => void): Promise<() => Promise<void>> {
  const path = join(d.file.peers[peer]!.home, 'policy.json');
  const original = readFileSync(path, 'utf8');
  const p = JSON.parse(original);
  edit(p);
  writeFileSync(path, JSON.stringify(p, null, 2));
  const r = await adminCall(d.file.peers[peer]!.home, 'POST', '/v1/policy/reload');
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return async () => {
    writeFileSync(path, original);
    assert.equal((await adminCall(d.file.peers[peer]!.home, 'POST', '/v1/policy/reload')).status, 200);
  };
}

function rawPost(body: string | Buffer, headers: Record<string, string> = { 'content-type': 'application/json' }, cert = true): Promise<{ status: number; body: string }> {
  const agent = new Agent({ ca: readFileSync(d.file.tls.ca), ...(cert ? { cert: readFileSync(d.file.tls.cert), key: readFileSync(d.file.tls.key) } : {}), minVersion: 'TLSv1.3' });
  return new Promise((resolve, reject) => {
    const r = httpsRequest(d.file.peers[0]!.apiUrl, { method: 'POST', agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    r.on('error', reject);
    r.end(body);
  });
}

before(async () => {
  d = await startDevnet({ home: mkdtempSync(join(tmpdir(), 'potluck-devnet-')), say: () => undefined, nonceWindow: 4096 });
  api = d.client(0);
}, { timeout: 300_000 });

after(async () => {
  await d?.stop();
});

/** The JSON object in `text` that starts with `prefix` (curl prints answers without a newline). */
function firstJson(text: string, prefix: string): string | undefined {
  const at = text.indexOf(prefix);
  if (at < 0) return undefined;
  let depth = 0, inString = false;
  for (let k = at; k < text.length; k++) {
    const ch = text[k]!;
    if (inString) {
      if (ch === '\\') k++;
      else if (ch === '"') inString = false;
    } else if (ch === '"') inString = true;
    else if (ch === '{') depth++;
    else if (ch === '}' && --depth === 0) return text.slice(at, k + 1);
  }
  return undefined;
}

/**
 * docs/api.md "Trying it with curl", run as a reader would: every shell block in order, in one
 * bash, from a directory whose .devnet is this devnet, with a small jq stand-in (-r and paths)
 * when jq is missing. Each `# {…}` answer shown in the doc must come back with the same id and
 * the same outcome (a result, or the same error code). First in the file: the doc assumes a
 * fresh devnet (its nonces were never signed with other content).
 */
test('docs/api.md curl examples, run as written against the devnet: every answer has the id and outcome the doc shows', async (t) => {
  const curl = spawnSync('curl', ['--version']);
  if (curl.status !== 0) return t.skip('curl is not installed');
  const doc = readFileSync(new URL('../../docs/api.md', import.meta.url), 'utf8');
  const section = doc.slice(doc.indexOf('## Trying it with curl'), doc.indexOf('## Pointing op-batcher at a peer'));
  const blocks = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  assert.ok(blocks.length >= 8, `${blocks.length} shell blocks`);
  const dir = mkdtempSync(join(tmpdir(), 'potluck-curl-'));
  symlinkSync(dirname(d.file.tls.ca).replace(/\/tls$/, ''), join(dir, '.devnet'));
  const channel = sampleChannel({ maxFrameData: BLOB_MAX_FRAME_DATA });
  writeFileSync(join(dir, 'blob.hex'), bytesToHex(blobsFor(calldataFor(channel.frames))[0]!));
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  if (spawnSync('jq', ['--version']).status !== 0) {
    // Only what the doc uses: jq -r PATH [FILE], PATH like .a.b[0].c
    writeFileSync(join(bin, 'jq'), `#!${process.execPath}
const [, , flag, path, file] = process.argv;
const text = require('node:fs').readFileSync(file ?? 0, 'utf8');
let v = JSON.parse(text);
for (const [, key, index] of path.matchAll(/\\.([A-Za-z_][A-Za-z0-9_]*)|\\[(\\d+)\\]/g)) v = v == null ? null : key !== undefined ? v[key] : v[Number(index)];
process.stdout.write((flag === '-r' && typeof v === 'string' ? v : JSON.stringify(v)) + '\\n');
`, { mode: 0o755 });
  }
  const script = ['set -euo pipefail', ...blocks.map((b, i) => `echo "@@block ${i}"\n${b}\necho`)].join('\n');
  const run = spawnSync('bash', ['-c', script], { cwd: dir, env: { ...process.env, PATH: `${bin}:${process.env.PATH}` }, encoding: 'utf8', timeout: 120_000 });
  assert.equal(run.status, 0, `the curl examples failed:\n${run.stderr}\n${run.stdout.slice(-2000)}`);
  const outputs = run.stdout.split(/^@@block \d+$/m).slice(1);
  assert.equal(outputs.length, blocks.length);
  let checked = 0;
  for (const [i, b] of blocks.entries()) {
    for (const shown of b.matchAll(/^# (\{"jsonrpc":"2\.0","id":(\w+),"(result|error)"(?::\{"code":(-?\d+))?)/gm)) {
      const [, , id, kind, code] = shown;
      const answer = firstJson(outputs[i]!, `{"jsonrpc":"2.0","id":${id},`);
      assert.ok(answer, `block ${i}: no answer with id ${id} in:\n${outputs[i]}`);
      const got = JSON.parse(answer) as { result?: unknown; error?: { code: number } };
      if (kind === 'result') assert.ok(got.result !== undefined, `block ${i}: ${answer}`);
      else assert.equal(got.error?.code, Number(code), `block ${i}: ${answer}`);
      checked++;
    }
  }
  assert.ok(checked >= 8, `${checked} answers checked`);
  assert.match(run.stdout, /potluck_ready(\{[^}]*\})? 1$/m); // after /readyz on the same line: curl adds no newline
  assert.match(run.stdout, /\{"status":"ok"\}/);
});

test('health_status answers the version; /healthz and /readyz are up', async () => {
  const version = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;
  assert.equal(await api.call('health_status', []), version);
  assert.equal((await api.get('/healthz')).status, 200);
  const ready = await api.get('/readyz');
  assert.equal(ready.status, 200, ready.body);
});

test('the devnet demo: a real calldata batch signed through the API (viem) is mined from the group address', async () => {
  const r = await postSampleBatch(d);
  assert.equal(r.signers.length, 3);
  assert.equal(new Set(r.signers).size, 3, 'three distinct orgs co-signed');
  assert.ok(r.signers.includes('acme'), 'the requester is in its own set');
  const receipt = await l1Client(d.file.l1RpcUrl).getTransactionReceipt({ hash: r.txHash });
  assert.equal(getAddress(receipt.from), d.file.groupAddress);
  assert.equal(getAddress(receipt.to!), d.file.batchInbox);
});

test('ethers 6 JsonRpcSigner.signTransaction over mTLS; the raw tx is mined', async () => {
  const agent = new Agent({ ca: readFileSync(d.file.tls.ca), cert: readFileSync(d.file.tls.cert), key: readFileSync(d.file.tls.key), minVersion: 'TLSv1.3' });
  const req = new FetchRequest(d.file.peers[1]!.apiUrl);
  req.getUrlFunc = FetchRequest.createGetUrlFunc({ agent });
  const provider = new JsonRpcProvider(req, d.file.chainId, { staticNetwork: true });
  const signer = new JsonRpcSigner(provider, d.file.groupAddress);
  const pub = l1Client(d.file.l1RpcUrl);
  const nonce = await pub.getTransactionCount({ address: d.file.groupAddress, blockTag: 'pending' });
  const data = toHex(calldataFor(sampleChannel({ maxFrameData: 1500 }).frames));
  const raw = await signer.signTransaction({
    type: 2, chainId: d.file.chainId, nonce, to: d.file.batchInbox, value: 0n, data, gasLimit: await pub.estimateGas({ account: d.file.groupAddress, to: d.file.batchInbox, data }),
    maxFeePerGas: parseGwei('30'), maxPriorityFeePerGas: parseGwei('1'), from: d.file.groupAddress,
  });
  assert.equal(getAddress(await recoverTransactionAddress({ serializedTransaction: raw as `0x02${string}` })), d.file.groupAddress);
  const hash = await pub.sendRawTransaction({ serializedTransaction: raw as Hex });
  const receipt = await pub.waitForTransactionReceipt({ hash });
  assert.equal(receipt.status, 'success');
  assert.equal(getAddress(receipt.from), d.file.groupAddress);
  provider.destroy();
});

test('a type-3 batch with real blobs: handed over through potluck_provideBlobs, signed, sent with its sidecar, mined', async () => {
  const channel = sampleChannel({ maxFrameData: BLOB_MAX_FRAME_DATA });
  const blobs = blobsFor(calldataFor(channel.frames));
  const sidecars = sidecarsFor(blobs);
  const hashes = (await api.call('potluck_provideBlobs', [blobs.map((b) => bytesToHex(b))])) as Hex[];
  const pub = l1Client(d.file.l1RpcUrl);
  const nonce = await pub.getTransactionCount({ address: d.file.groupAddress, blockTag: 'pending' });
  const args = {
    ...batchArgs(nonce), gas: numberToHex(100_000), input: '0x', blobVersionedHashes: hashes, maxFeePerBlobGas: numberToHex(parseGwei('10')),
  };
  const signed = (await api.call('eth_signTransaction', [args])) as Hex;
  const tx = parseTransaction(signed) as TransactionSerializableEIP4844 & { r: Hex; s: Hex; yParity: number };
  assert.equal(tx.type, 'eip4844');
  assert.deepEqual(tx.blobVersionedHashes, hashes);
  assert.equal(getAddress(await recoverTransactionAddress({ serializedTransaction: signed as `0x03${string}` })), d.file.groupAddress);
  // The API returns the minimal form (op-signer: no sidecar); the mempool takes the network wrapper.
  const wrapped = serializeTransaction({ ...tx, sidecars }, { r: tx.r, s: tx.s, yParity: tx.yParity });
  const hash = await pub.sendRawTransaction({ serializedTransaction: wrapped });
  assert.equal(hash, keccak256(signed));
  const receipt = await pub.waitForTransactionReceipt({ hash });
  assert.equal(receipt.status, 'success');
  assert.equal(receipt.type, 'eip4844');
  assert.equal(getAddress(receipt.from), d.file.groupAddress);
});

test('block payloads: V2 and V1 signatures recover to the group address', async () => {
  const domain = new Uint8Array(32);
  const payloadHash = keccak256(toHex('an L2 block'));
  const expected = keccak256(concat([bytesToHex(domain), numberToHex(d.file.l2ChainId, { size: 32 }), payloadHash]));
  const v2 = (await api.call('opsigner_signBlockPayloadV2', [{ domain: bytesToHex(domain), chainId: String(d.file.l2ChainId), payloadHash, senderAddress: d.file.groupAddress }])) as Hex;
  assert.equal(hexToBytes(v2).length, 65);
  const sig = hexToBytes(v2);
  assert.ok(sig[64] === 0 || sig[64] === 1, 'v is 0 or 1 as op-service returns it');
  assert.equal(getAddress(await recoverAddress({ hash: expected, signature: concat([v2.slice(0, 130) as Hex, numberToHex(27 + sig[64]!)]) })), d.file.groupAddress);
  const v1 = (await api.call('opsigner_signBlockPayload', [{ domain: Array.from(domain), chainId: d.file.l2ChainId, payloadHash: Buffer.from(hexToBytes(payloadHash)).toString('base64') }])) as Hex;
  const s1 = hexToBytes(v1);
  assert.equal(getAddress(await recoverAddress({ hash: expected, signature: concat([v1.slice(0, 130) as Hex, numberToHex(27 + s1[64]!)]) })), d.file.groupAddress);
  await refused('opsigner_signBlockPayloadV2', [{ domain: bytesToHex(domain), chainId: '10', payloadHash }], -32013, /block-chain-id: unexpected chainId 10/);
  await refused('opsigner_signBlockPayloadV2', [{ domain: bytesToHex(domain), chainId: String(d.file.l2ChainId), payloadHash, senderAddress: '0x000000000000000000000000000000000000dEaD' }], -32013, /unexpected from address/);
});

describe('policy refusals: exact op-signer codes, nothing signed', () => {
  test('wrong to', () => refused('eth_signTransaction', [batchArgs(freshNonce(), { to: '0x000000000000000000000000000000000000dEaD' })], -32011, /^to: to 0x000000000000000000000000000000000000dEaD is not the batch inbox/));
  test('wrong chain', () => refused('eth_signTransaction', [batchArgs(freshNonce(), { chainId: '0x1' })], -32011, /^chain-id: chainId 1 not in \[31337\]/));
  test('value above 0', () => refused('eth_signTransaction', [batchArgs(freshNonce(), { value: '0x1' })], -32011, /^value-zero: value 1 is not 0/));
  test('fee cap above the cap', () => refused('eth_signTransaction', [batchArgs(freshNonce(), { maxFeePerGas: numberToHex(parseGwei('501')) })], -32011, /^fee-cap: maxFeePerGas 501000000000 exceeds cap 500000000000/));
  test('gas above the cap', () => refused('eth_signTransaction', [batchArgs(freshNonce(), { gas: numberToHex(30_000_001) })], -32011, /^gas-cap: gas 30000001 exceeds cap 30000000/));
  test('blob fee above the cap', () => refused('eth_signTransaction', [batchArgs(freshNonce(), { input: '0x', blobVersionedHashes: ['0x01' + '11'.repeat(31)], maxFeePerBlobGas: numberToHex(parseGwei('101')) })], -32011, /^blob-fee-cap: /));
  test('blobs not handed over', () => refused('eth_signTransaction', [batchArgs(freshNonce(), { input: '0x', blobVersionedHashes: ['0x01' + '22'.repeat(31)], maxFeePerBlobGas: numberToHex(parseGwei('1')) })], -32011, /^blob-content: blobs not handed over/));
  test('malformed frames', () => refused('eth_signTransaction', [batchArgs(freshNonce(), { input: '0x00' + 'ab'.repeat(30) })], -32011, /^calldata-frames: /));
  test('wrong from', () => refused('eth_signTransaction', [batchArgs(freshNonce(), { from: '0x000000000000000000000000000000000000dEaD' })], -32010, /^from: /));
  test('malformed args', () => refused('eth_signTransaction', [batchArgs(freshNonce(), { nonce: undefined })], -32010, /^args: .*nonce/));
  test('a nonce beyond the L1\'s confirmed nonce + nonceWindow', () => refused('eth_signTransaction', [batchArgs(1_000_000)], -32011, /^nonce-window: nonce 1000000 is beyond the L1's confirmed nonce \d+ \+ window 4096/));
  test('raw eth_sign is not served', () => refused('eth_sign', [d.file.groupAddress, '0x1234'], -32601, /eth_sign/));

  test('equivocation: a fee bump at a nonce is signed, different content or a lower fee is refused', async () => {
    const n = freshNonce();
    const first = batchArgs(n);
    await api.call('eth_signTransaction', [first]);
    const bumped = { ...first, maxFeePerGas: numberToHex(parseGwei('22')), maxPriorityFeePerGas: numberToHex(parseGwei('1.1')) };
    await api.call('eth_signTransaction', [bumped]);
    await refused('eth_signTransaction', [{ ...bumped, input: batchArgs(n).input }], -32011, /^equivocation: differs from the request approved at 31337\/0x[0-9a-f]{40}\/\d+ in data/);
    await refused('eth_signTransaction', [first], -32011, /^equivocation: maxFeePerGas decreased from 22000000000 to 20000000000/);
  });

  test('too few orgs for this org\'s policy', async () => {
    const restore = await setPolicy(0, (p) => (p.quorum = { distinctOrgs: 3, otherOrgs: 3 }));
    try {
      await refused('eth_signTransaction', [batchArgs(freshNonce())], -32011, /org-quorum/);
    } finally {
      await restore();
    }
  });

  test('rate limit per client', async () => {
    const tlsDir = join(d.file.tls.ca, '..');
    const ca = { certPem: readFileSync(d.file.tls.ca, 'utf8'), keyPem: readFileSync(join(tlsDir, 'ca.key'), 'utf8') };
    const { certPath, keyPath } = await writeTlsFiles(tlsDir, 'slow', await issueCertificate(ca, { commonName: 'slow', dnsNames: ['slow'], usage: 'client', days: 1 }));
    const restore = await setPolicy(0, (p) => p.clients.push({ name: 'slow', maxRequestsPerMinute: 2 }));
    try {
      const slow = new RpcClient({ url: d.file.peers[0]!.apiUrl, ca: readFileSync(d.file.tls.ca), cert: readFileSync(certPath), key: readFileSync(keyPath), timeoutMs: 30_000 });
      await slow.call('eth_signTransaction', [batchArgs(freshNonce())]);
      await slow.call('eth_signTransaction', [batchArgs(freshNonce())]);
      await assert.rejects(slow.call('eth_signTransaction', [batchArgs(freshNonce())]), (e: unknown) => e instanceof RpcCallError && e.code === -32011 && /^rate-limit: client slow exceeded 2 requests per minute/.test(e.message));
      // Other clients keep their own budget.
      await api.call('eth_signTransaction', [batchArgs(freshNonce())]);
    } finally {
      await restore();
    }
  });
});

test('every org checks on its own: a co-signer whose policy refuses declines, and the set is chosen without it', async () => {
  const coral = 2;
  const restore = await setPolicy(coral, (p) => (p.transactions.batchInbox = '0x000000000000000000000000000000000000bEEF'));
  try {
    for (let i = 0; i < 3; i++) {
      const raw = (await api.call('eth_signTransaction', [batchArgs(freshNonce())])) as Hex;
      assert.equal(getAddress(await recoverTransactionAddress({ serializedTransaction: raw as `0x02${string}` })), d.file.groupAddress);
      const last = (await status(0)).recentSignatures.at(-1)!;
      assert.ok(!last.signers.includes('coral'), `coral refused, yet signed: ${last.signers.join(',')}`);
    }
  } finally {
    await restore();
  }
});

describe('malformed JSON-RPC gets a JSON-RPC error and the peer stays healthy', () => {
  const rpcError = async (body: string, code: number, status = 200) => {
    const r = await rawPost(body);
    assert.equal(r.status, status, r.body);
    assert.equal(JSON.parse(r.body).error.code, code, r.body);
  };
  test('bad JSON', () => rpcError('{"jsonrpc":"2.0","id":1,"method":', -32700));
  test('wrong types', () => rpcError(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_signTransaction', params: [{ ...batchArgs(freshNonce()), gas: 21000 }] }), -32010));
  test('missing fields', () => rpcError(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_signTransaction', params: [{ from: d.file.groupAddress }] }), -32010));
  // JSON-RPC 2.0 §4.2: params must be structured, so a string makes the request itself invalid.
  test('params not structured', () => rpcError(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_signTransaction', params: 'x' }), -32600));
  test('params of the wrong arity', () => rpcError(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_signTransaction', params: [] }), -32602));
  test('unknown method', () => rpcError(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_sendTransaction', params: [] }), -32601));
  test('not JSON-RPC 2.0', () => rpcError(JSON.stringify({ id: 1, method: 'health_status' }), -32600));
  test('huge body', async () => {
    const r = await rawPost(Buffer.alloc(20 * 1024 * 1024, 0x20));
    assert.equal(r.status, 413);
  });
  test('no client certificate: 401', async () => {
    const r = await rawPost(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'health_status', params: [] }), undefined, false);
    assert.equal(r.status, 401);
  });
  test('still healthy', async () => {
    assert.equal(typeof (await api.call('health_status', [])), 'string');
    assert.equal((await api.get('/readyz')).status, 200);
  });
});

/** Every /metrics page this file read: the secret grep at the end searches them. */
const metricsSeen: string[] = [];

test('load: 200 concurrent eth_signTransaction at distinct nonces, all answered and valid, memory bounded', async () => {
  const rss = async () => {
    const text = await (await fetch(d.file.peers[0]!.metricsUrl)).text();
    metricsSeen.push(text);
    return Number(/^potluck_process_resident_memory_bytes(?:\{[^}]*\})? (\d+)/m.exec(text)![1]);
  };
  const before = await rss();
  // 40 requests queue at each peer behind 6 running: the last ones wait far longer than a batcher would.
  const clients = d.file.peers.map((p) => new RpcClient({ url: p.apiUrl, ca: readFileSync(d.file.tls.ca), cert: readFileSync(d.file.tls.cert), key: readFileSync(d.file.tls.key), timeoutMs: 300_000 }));
  const nonces = Array.from({ length: 200 }, () => freshNonce());
  const t0 = performance.now();
  const raws = await Promise.all(nonces.map((n, i) => clients[i % clients.length]!.call('eth_signTransaction', [batchArgs(n)]) as Promise<Hex>));
  const seconds = (performance.now() - t0) / 1000;
  assert.equal(raws.length, 200);
  const rs = new Set<string>();
  for (const [i, raw] of raws.entries()) {
    assert.equal(getAddress(await recoverTransactionAddress({ serializedTransaction: raw as `0x02${string}` })), d.file.groupAddress);
    const tx = parseTransaction(raw);
    assert.equal(tx.nonce, nonces[i]);
    rs.add(tx.r!);
  }
  assert.equal(rs.size, 200, 'no r repeats: no presignature was used twice');
  const after = await rss();
  for (const p of d.file.peers) metricsSeen.push(await (await fetch(p.metricsUrl)).text());
  assert.ok(after < before + 256 * 1024 * 1024, `peer RSS grew from ${before} to ${after} bytes`);
  process.stderr.write(`# load: 200 signatures in ${seconds.toFixed(1)} s\n`);
});

test('viem wallet client with a JSON-RPC account', async () => {
  const wallet = createWalletClient({ account: d.file.groupAddress, transport: viemTransport(d.client(3), { chainId: d.file.chainId }) });
  const raw = await wallet.signTransaction({
    chain: null, account: d.file.groupAddress, type: 'eip1559', chainId: d.file.chainId, nonce: freshNonce(), to: d.file.batchInbox, value: 0n,
    data: toHex(calldataFor(sampleChannel({ maxFrameData: 800 }).frames)), gas: 100_000n, maxFeePerGas: parseGwei('5'), maxPriorityFeePerGas: parseGwei('1'),
  });
  assert.equal(getAddress(await recoverTransactionAddress({ serializedTransaction: raw })), d.file.groupAddress);
});

test("op-batcher's exact request bytes (op-service signer/client.go, test/api/fixtures) against a real peer", async () => {
  const fixture = JSON.parse(readFileSync(new URL('../api/fixtures/go-client-requests.json', import.meta.url), 'utf8')) as { requests: { name: string; body: string }[] };
  const body = (name: string) => fixture.requests.find((r) => r.name.startsWith(name))!.body
    .replaceAll('0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266', d.file.groupAddress.toLowerCase())
    .replaceAll('0xff00000000000000000000000000000000000901', d.file.batchInbox.toLowerCase())
    .replaceAll('"chainId":"0x384"', `"chainId":"${numberToHex(d.file.chainId)}"`)
    .replace(/"nonce":"0x2[ab]"/, `"nonce":"${numberToHex(freshNonce())}"`);
  const go = { 'content-type': 'application/json', accept: 'application/json' };
  const health = await rawPost(body('health_status'), go);
  assert.equal(health.status, 200);
  assert.equal(typeof JSON.parse(health.body).result, 'string');
  const signed = JSON.parse((await rawPost(body('eth_signTransaction type 2'), go)).body) as { result: Hex };
  assert.equal(getAddress(await recoverTransactionAddress({ serializedTransaction: signed.result as `0x02${string}` })), d.file.groupAddress);
  // A blob tx whose blobs were not handed over: this org's policy (allowBlobsWithoutContent: false) refuses it.
  const blob = JSON.parse((await rawPost(body('eth_signTransaction type 3'), go)).body) as { error: { code: number; message: string } };
  assert.equal(blob.error.code, -32011);
  assert.match(blob.error.message, /^blob-content: blobs not handed over/);
});

test("the devnet's audit logs verify offline (issue 5): every signature, verdict and the keygen; a flipped byte is caught", async () => {
  await d.cluster.stopAll(); // quiescent: no session is half-written
  const report = auditDevnet(d);
  assert.deepEqual(report.failures.map((f) => f.message), []);
  assert.equal(report.ok, true);
  const sigs = report.sessions.filter((s) => s.kind === 'signature');
  assert.ok(sigs.length >= 200, `${sigs.length} signatures in the logs`);
  for (const s of sigs) assert.equal(s.ok, true);
  assert.ok(report.sessions.some((s) => s.kind === 'keygen' && s.ok), 'the keygen transcript reproduces the key');
  // The auditor's commands of docs/audit.md, as real processes over the same files.
  const logs = d.file.peers.map((p) => join(p.home, 'audit.log'));
  const verify = await potluck(['audit', 'verify', '--cluster', d.cluster.definition, ...logs]);
  assert.equal(verify.code, 0, verify.stderr);
  assert.ok(verify.stdout.split('\n').filter((l) => /signature/.test(l)).length >= 200, 'one line per signature session');
  const bundle = join(mkdtempSync(join(tmpdir(), 'potluck-bundle-')), 'sig.bundle.json');
  const exported = await potluck(['audit', 'export', '--session', sigs[0]!.session, '--out', bundle, ...logs]);
  assert.equal(exported.code, 0, exported.stderr);
  const checked = await potluck(['audit', 'verify-bundle', '--cluster', d.cluster.definition, bundle]);
  assert.equal(checked.code, 0, checked.stderr);
  // One flipped byte in one log breaks it, and the report names that log.
  const path = join(d.file.peers[1]!.home, 'audit.log');
  const bytes = readFileSync(path);
  bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
  writeFileSync(path, bytes);
  // Each full verify replays the 3-of-5 keygen, so the broken logs are checked once, as JSON.
  const refused = await potluck(['audit', 'verify', '--cluster', d.cluster.definition, '--json', ...logs]);
  assert.equal(refused.code, 1, refused.stderr);
  const broken = JSON.parse(refused.stdout) as { ok: boolean; failures: { log: string; message: string }[] };
  assert.equal(broken.ok, false);
  assert.ok(broken.failures.some((f) => f.log === path), broken.failures.map((f) => f.message).join('\n'));
});

test('no key material in any log, metric or audit log of the whole devnet run (keygen, 200+ signatures, refusals, restarts)', async () => {
  await d.cluster.stopAll();
  const passphrase = d.cluster.env.POTLUCK_PASSPHRASE!;
  const secrets: { what: string; needle: string }[] = [{ what: 'the share passphrase', needle: passphrase }];
  const hexOf = (b: Uint8Array) => Buffer.from(b).toString('hex');
  for (const p of d.cluster.peers) {
    const seed = privateKeyFromProtobuf(readFileSync(join(p.home, 'identity.key'))).raw.subarray(0, 32);
    secrets.push({ what: `${p.org} identity key (hex)`, needle: hexOf(seed) }, { what: `${p.org} identity key (base64)`, needle: Buffer.from(seed).toString('base64').slice(0, 40) });
    const share = openKeyShare(readFileSync(join(p.home, 'keys', 'batcher.share')), passphrase);
    secrets.push({ what: `${p.org} secret share (hex)`, needle: share.secretShare.toString(16).padStart(64, '0') }, { what: `${p.org} secret share (decimal)`, needle: share.secretShare.toString(10) });
    // OT and zero-sharing seeds: a 24-byte window of each (skipping the zeroed punctured seeds).
    for (const [peer, pair] of share.pairs)
      for (const [name, v] of Object.entries(pair)) {
        const b = v as Uint8Array;
        const at = Array.from({ length: Math.max(0, b.length - 23) }, (_, i) => i).find((i) => b.subarray(i, i + 24).every((x) => x !== 0));
        if (at !== undefined) secrets.push({ what: `${p.org} ${name} with party ${peer}`, needle: hexOf(b.subarray(at, at + 24)) });
      }
    const pem = readFileSync(join(p.home, 'tls', 'server.key'), 'utf8').split('\n').filter((l) => /^[A-Za-z0-9+/=]{40,}$/.test(l));
    for (const l of pem) secrets.push({ what: `${p.org} TLS server key`, needle: l.slice(0, 40) });
  }
  const haystacks: { where: string; text: string }[] = [
    ...d.cluster.peers.map((p) => ({ where: `${p.org} daemon stderr (${p.log.length} lines)`, text: p.log.join('\n') })),
    ...d.keygenLogs.map((t, i) => ({ where: `${d.cluster.peers[i]!.org} keygen stderr`, text: t })),
    ...d.cluster.peers.map((p) => ({ where: `${p.org} audit.log`, text: readFileSync(join(p.home, 'audit.log')).toString('latin1') + readFileSync(join(p.home, 'audit.log')).toString('hex') })),
    { where: 'metrics', text: metricsSeen.join('\n') },
  ];
  assert.ok(d.cluster.peers.every((p) => p.log.length > 20), `the daemons logged: ${d.cluster.peers.map((p) => p.log.length).join(', ')} lines`);
  const leaks = haystacks.flatMap((h) => secrets.filter((s) => h.text.includes(s.needle)).map((s) => `${s.what} in ${h.where}`));
  assert.deepEqual(leaks, []);
});
