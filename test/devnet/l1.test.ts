import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { inflateSync } from 'node:zlib';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import {
  bytesToHex, concatBytes, hexToBytes, keccak256, parseGwei, serializeTransaction, sidecarsToVersionedHashes, toHex,
  type Hex, type TransactionSerializable,
} from 'viem';
import { publicKeyToAddress } from 'viem/accounts';
import { L1StartError, L1_CHAIN_ID, REPO_ROOT, fund, l1Client, startL1, type L1Node } from '../../src/devnet/l1-node.ts';
import { blobsFor, microKzg, sidecarsFor } from '../../src/devnet/kzg.ts';
import { calldataFor, encodeFrames, sampleChannel } from '../../src/devnet/sample-batch.ts';
import { freePort } from '../../src/devnet/local-cluster.ts';
import { parseFrames, type Frame } from '../../src/policy/frames.ts';
import { blobVersionedHash, verifyBlobs } from '../../src/policy/blobs.ts';

/** A hand-picked inbox in the old `0xff00…` style; the devnet reads the real one from its rollup config (§1.5). */
const INBOX = '0xff00000000000000000000000000000000000901';

/** Throwaway TEST key (an ordinary EOA, not a threshold key), signing the way an external signer does: hash in, (r, s, yParity) out. */
const key = secp256k1.utils.randomSecretKey();
const address = publicKeyToAddress(bytesToHex(secp256k1.getPublicKey(key, false)));
function sign(unsigned: Hex) {
  const sig = secp256k1.sign(hexToBytes(keccak256(unsigned)), key, { prehash: false, format: 'recovered' });
  return { r: bytesToHex(sig.subarray(1, 33)), s: bytesToHex(sig.subarray(33, 65)), yParity: sig[0]! };
}

/** Alive = exists and is not a zombie (a reparented zombie may linger unreaped in a container). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
async function waitGone(pid: number, ms: number): Promise<number> {
  const t0 = Date.now();
  while (alive(pid)) {
    if (Date.now() - t0 > ms) assert.fail(`process ${pid} still alive after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now() - t0;
}

describe('local L1 (hardhat 2 node): calldata and blob batches', () => {
  let l1: L1Node;
  let startMs = 0;
  const client = () => l1Client(l1.rpcUrl);

  before(async () => {
    const t0 = performance.now();
    l1 = await startL1();
    startMs = performance.now() - t0;
  });
  after(async () => { await l1?.stop(); });

  test('answers eth_chainId 31337; fund sets a balance', async (t) => {
    t.diagnostic(`hardhat start to first eth_chainId: ${startMs.toFixed(0)} ms (pid ${l1.process.pid}, ${l1.rpcUrl})`);
    assert.equal(l1.chainId, L1_CHAIN_ID);
    assert.equal(await client().getChainId(), 31337);
    await fund(l1.rpcUrl, address, 10n ** 18n);
    assert.equal(await client().getBalance({ address }), 10n ** 18n);
    t.diagnostic(`client ${await client().request({ method: 'web3_clientVersion' })}, blob base fee ${await client().getBlobBaseFee()} wei`);
  });

  test('type-2 tx to the inbox carrying calldataFor(frames): mined, from = the test EOA, input parses', async (t) => {
    const s = sampleChannel({ l2Txs: 5, maxFrameData: 300 });
    const data = toHex(calldataFor(s.frames));
    const c = client();
    const gas = await c.estimateGas({ account: address, to: INBOX, data });
    t.diagnostic(`${s.frames.length} frames, ${(data.length - 2) / 2} bytes of calldata, estimateGas ${gas} (16 gas/byte would be ${21_000 + 8 * (data.length - 2)})`);
    const tx: TransactionSerializable = {
      type: 'eip1559', chainId: L1_CHAIN_ID, nonce: await c.getTransactionCount({ address }), to: INBOX, value: 0n, data, gas,
      maxFeePerGas: parseGwei('20'), maxPriorityFeePerGas: parseGwei('1'),
    };
    const raw = serializeTransaction(tx, sign(serializeTransaction(tx)));
    const hash = await c.sendRawTransaction({ serializedTransaction: raw });
    assert.equal(hash, keccak256(raw));
    const receipt = await c.waitForTransactionReceipt({ hash });
    assert.equal(receipt.status, 'success');
    assert.equal(receipt.from, address.toLowerCase());
    assert.equal(receipt.to, INBOX);
    const onChain = await c.getTransaction({ hash });
    const frames = parseFrames(hexToBytes(onChain.input));
    assert.equal(frames.length, s.frames.length);
    assert.deepEqual(new Uint8Array(inflateSync(concatBytes(frames.map((f) => f.data)))), s.rlp);
  });

  test('type-3 tx with OP-encoded blobs: minimal form signed, network wrapper sent; verifyBlobs gives the payloads', async (t) => {
    // Two frames, one per blob (each blob is decoded and parsed on its own).
    const s = sampleChannel({ l2Txs: 30, batches: 2 });
    const twoFrames = encodeFrames(s.channelId, s.channel, Math.ceil(s.channel.length / 2));
    assert.equal(twoFrames.length, 2);
    const payloads = twoFrames.map((f) => calldataFor([f]));
    const blobs = blobsFor(payloads);
    let t0 = performance.now();
    const sidecars = sidecarsFor(blobs);
    t.diagnostic(`sidecarsFor: ${blobs.length} blobs (${payloads.map((p) => p.length).join(', ')} payload bytes): ${((performance.now() - t0) / blobs.length).toFixed(0)} ms per blob (commitment + proof)`);
    const blobVersionedHashes = sidecarsToVersionedHashes({ sidecars });
    assert.deepEqual(blobVersionedHashes, blobs.map(blobVersionedHash), 'viem and blobs.ts agree on the versioned hashes');

    const c = client();
    const tx: TransactionSerializable = {
      type: 'eip4844', chainId: L1_CHAIN_ID, nonce: await c.getTransactionCount({ address }), to: INBOX, value: 0n, gas: 21_000n,
      maxFeePerGas: parseGwei('20'), maxPriorityFeePerGas: parseGwei('1'), maxFeePerBlobGas: parseGwei('1'), blobVersionedHashes,
    };
    const minimal = serializeTransaction(tx); // no sidecars: the form whose hash is signed (node20-stack.md §3)
    const signature = sign(minimal);
    const signedMinimal = serializeTransaction(tx, signature);
    const wrapper = serializeTransaction({ ...tx, sidecars }, signature);
    t0 = performance.now();
    assert.equal(serializeTransaction({ ...tx, blobs, kzg: microKzg }, signature), wrapper, 'viem computing the sidecars with microKzg gives the same wrapper');
    t.diagnostic(`viem blobs + microKzg: ${((performance.now() - t0) / blobs.length).toFixed(0)} ms per blob; wrapper ${(wrapper.length - 2) / 2} bytes`);

    const hash = await c.sendRawTransaction({ serializedTransaction: wrapper });
    assert.equal(hash, keccak256(signedMinimal), 'the tx hash is that of the minimal form');
    const receipt = await c.waitForTransactionReceipt({ hash });
    assert.equal(receipt.status, 'success');
    assert.equal(receipt.type, 'eip4844');
    assert.equal(receipt.from, address.toLowerCase());
    // hardhat leaves receipt.blobGasUsed out; the block has it
    assert.equal((await c.getBlock({ blockNumber: receipt.blockNumber })).blobGasUsed, 2n * 131_072n);
    const onChain = await c.getTransaction({ hash });
    assert.deepEqual(onChain.blobVersionedHashes, blobVersionedHashes);

    // The co-signer's side (§1.5 step 2): blobs handed over out of band, matched to the signed hashes.
    t0 = performance.now();
    const decoded = verifyBlobs(blobs, onChain.blobVersionedHashes!);
    t.diagnostic(`verifyBlobs: ${((performance.now() - t0) / blobs.length).toFixed(0)} ms per blob`);
    assert.deepEqual(decoded, payloads);
    const frames: Frame[] = decoded.flatMap((p) => parseFrames(p));
    assert.deepEqual(frames.map((f) => [f.channelId, f.frameNumber, f.isLast]), [[s.channelId, 0, false], [s.channelId, 1, true]]);
    assert.deepEqual(new Uint8Array(inflateSync(concatBytes(frames.map((f) => f.data)))), s.rlp);
  });

  test('the node checks the sidecar itself (a second KZG implementation): wrong proof, wrong commitment and the minimal form are refused', async (t) => {
    const c = client();
    const blobs = blobsFor([calldataFor(sampleChannel({ l2Txs: 1 }).frames), calldataFor(sampleChannel({ l2Txs: 2 }).frames)]);
    const sidecars = sidecarsFor(blobs);
    const blobVersionedHashes = sidecarsToVersionedHashes({ sidecars });
    const tx: TransactionSerializable = {
      type: 'eip4844', chainId: L1_CHAIN_ID, nonce: await c.getTransactionCount({ address }), to: INBOX, value: 0n, gas: 21_000n,
      maxFeePerGas: parseGwei('20'), maxPriorityFeePerGas: parseGwei('1'), maxFeePerBlobGas: parseGwei('1'), blobVersionedHashes,
    };
    const signature = sign(serializeTransaction(tx));
    const swappedProofs = [{ ...sidecars[0]!, proof: sidecars[1]!.proof }, { ...sidecars[1]!, proof: sidecars[0]!.proof }];
    const swappedCommitments = [{ ...sidecars[0]!, commitment: sidecars[1]!.commitment }, { ...sidecars[1]!, commitment: sidecars[0]!.commitment }];
    for (const [what, raw] of [
      ['swapped proofs', serializeTransaction({ ...tx, sidecars: swappedProofs }, signature)],
      ['swapped commitments', serializeTransaction({ ...tx, sidecars: swappedCommitments }, signature)],
      ['minimal form', serializeTransaction(tx, signature)],
    ] as const) {
      const e = await c.sendRawTransaction({ serializedTransaction: raw }).then(() => assert.fail(`${what} must be refused`), (e: Error) => e);
      t.diagnostic(`${what}: ${(e as { details?: string }).details ?? e.message.split('\n')[0]}`);
    }
    // and the good one still goes through at that nonce
    const receipt = await c.waitForTransactionReceipt({ hash: await c.sendRawTransaction({ serializedTransaction: serializeTransaction({ ...tx, sidecars }, signature) }) });
    assert.equal(receipt.status, 'success');
  });

  test('stop() ends the child and frees the port', async () => {
    const pid = l1.process.pid!;
    const t0 = performance.now();
    await l1.stop();
    assert.ok(l1.process.exitCode !== null || l1.process.signalCode !== null);
    assert.equal(alive(pid), false);
    await l1.stop(); // idempotent
    await assert.rejects(startlessProbe(l1.rpcUrl));
    assert.ok(performance.now() - t0 < 6_000);
  });
});

const startlessProbe = (rpcUrl: string) =>
  fetch(rpcUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' });

describe('startL1: failures and no orphans', () => {
  test('a port in use: typed error with the tail of hardhat stderr, no wait for the timeout', async () => {
    const server = createServer();
    const port = await freePort();
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    const t0 = performance.now();
    try {
      await assert.rejects(startL1({ port }), (e: unknown) => {
        assert.ok(e instanceof L1StartError, String(e));
        assert.match(e.message, new RegExp(`hardhat L1 on http://127.0.0.1:${port}: exited before answering`));
        assert.match(e.message, /--- hardhat stderr \(tail\) ---\n[^]*EADDRINUSE/);
        return true;
      });
    } finally {
      server.close();
    }
    assert.ok(performance.now() - t0 < 30_000);
  });

  // A parent that starts the L1 and then dies without stop(): by SIGKILL (the preloaded watchdog
  // notices the reparenting) or by a plain exit (the 'exit' handler kills hardhat).
  for (const how of ['SIGKILL', 'exit'] as const) {
    test(`parent dies by ${how} without stop(): hardhat does not outlive it`, async (t) => {
      const script = `const { startL1 } = await import(${JSON.stringify(new URL('../../src/devnet/l1-node.ts', import.meta.url).href)});
        const l1 = await startL1(); console.log(JSON.stringify({ pid: l1.process.pid }));
        ${how === 'exit' ? 'process.exit(0);' : 'setInterval(() => {}, 1000);'}`;
      const parent = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
      const pid = await new Promise<number>((res, rej) => {
        let out = '';
        parent.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /\{"pid":(\d+)\}/.exec(out);
          if (m) res(Number(m[1]));
        });
        parent.once('exit', (code) => { if (!/"pid"/.test(out)) rej(new Error(`parent exited (${code}) before starting the L1`)); });
      });
      assert.ok(alive(pid) || how === 'exit');
      if (how === 'SIGKILL') parent.kill('SIGKILL');
      const ms = await waitGone(pid, 5_000);
      t.diagnostic(`hardhat ${pid} gone ${ms} ms after the parent's ${how}`);
    });
  }
});
