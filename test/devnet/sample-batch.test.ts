import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { inflateSync } from 'node:zlib';
import { bytesToHex, concatBytes, fromRlp, hexToBigInt, hexToBytes, parseTransaction, recoverTransactionAddress, toRlp, type Hex } from 'viem';
import {
  BLOB_MAX_FRAME_DATA, SAMPLE_L2_CHAIN_ID, calldataFor, encodeChannel, encodeFrames, encodeSingularBatch, sampleChannel,
  type SingularBatch,
} from '../../src/devnet/sample-batch.ts';
import { parseFrames } from '../../src/policy/frames.ts';
import { MAX_BLOB_DATA_SIZE, decodeBlob, encodeBlob } from '../../src/policy/blobs.ts';

const h = (s: string) => s.replace(/\s+/g, '');

/** Reads a singular batch back from its `batch_version ‖ rlp([...])` bytes with viem's strict decoder. */
function decodeSingularBatch(bytes: Uint8Array): SingularBatch {
  assert.equal(bytes[0], 0, 'batch_version 0');
  const [parentHash, epochNumber, epochHash, timestamp, transactions] = fromRlp(bytes.subarray(1), 'hex') as [Hex, Hex, Hex, Hex, Hex[]];
  const uint = (x: Hex) => { assert.ok(x === '0x' || !x.startsWith('0x00'), `canonical integer ${x}`); return x === '0x' ? 0n : hexToBigInt(x); };
  return { parentHash, epochNumber: uint(epochNumber), epochHash, timestamp: uint(timestamp), transactions };
}

describe('batches and channels (derivation.md "Batch Format", "Channel Format")', () => {
  const kat1: SingularBatch = { parentHash: `0x${'11'.repeat(32)}`, epochNumber: 10n, epochHash: `0x${'22'.repeat(32)}`, timestamp: 100n, transactions: ['0x02aabb'] };
  const kat2: SingularBatch = { parentHash: `0x${'33'.repeat(32)}`, epochNumber: 0n, epochHash: `0x${'44'.repeat(32)}`, timestamp: 0n, transactions: [] };
  // Hand-assembled RLP: list payload 33+1+33+1+5 = 73 bytes (f8 49); the batch 1+75 = 76 bytes (b8 4c).
  const rlp1 = h(`b84c 00 f849 a0${'11'.repeat(32)} 0a a0${'22'.repeat(32)} 64 c4 83 02aabb`);
  // Zero integers are the empty string 0x80; empty tx list c0; payload 69 (f8 45), batch 72 (b8 48).
  const rlp2 = h(`b848 00 f845 a0${'33'.repeat(32)} 80 a0${'44'.repeat(32)} 80 c0`);

  test('known answer: singular batch v0 and the channel as concatenated RLP byte strings', () => {
    assert.equal(bytesToHex(toRlp(encodeSingularBatch(kat1), 'bytes')), `0x${rlp1}`);
    assert.equal(bytesToHex(toRlp(encodeSingularBatch(kat2), 'bytes')), `0x${rlp2}`);
    const { rlp, channel } = encodeChannel([kat1, kat2]);
    assert.equal(bytesToHex(rlp), `0x${rlp1}${rlp2}`, 'a concatenation, not an RLP list');
    assert.equal(channel[0]! & 0x0f, 8, 'zlib CMF: deflate (§1.5: low nibble 8 or 15 = zlib, not a versioned channel)');
    assert.deepEqual(new Uint8Array(inflateSync(channel)), rlp);
    assert.deepEqual(decodeSingularBatch(encodeSingularBatch(kat1)), kat1);
    assert.deepEqual(decodeSingularBatch(encodeSingularBatch(kat2)), kat2);
  });

  test('sampleChannel: batches of signed L2 txs, 2 s apart, one L2 sender', async () => {
    const s = sampleChannel({ l2Txs: 3, batches: 3 });
    assert.equal(s.batches.length, 3);
    assert.deepEqual(s.rlp, concatBytes(s.batches.map((b) => toRlp(encodeSingularBatch(b), 'bytes'))));
    assert.deepEqual(new Uint8Array(inflateSync(s.channel)), s.rlp);
    const senders = new Set<string>();
    for (const [i, b] of s.batches.entries()) {
      assert.deepEqual(decodeSingularBatch(encodeSingularBatch(b)), b);
      assert.equal(b.timestamp, s.batches[0]!.timestamp + 2n * BigInt(i));
      assert.equal(b.transactions.length, 3);
      for (const tx of b.transactions) {
        const p = parseTransaction(tx);
        assert.equal(p.type, 'eip1559');
        assert.equal(p.chainId, SAMPLE_L2_CHAIN_ID);
        senders.add(await recoverTransactionAddress({ serializedTransaction: tx as `0x02${string}` }));
      }
    }
    assert.equal(senders.size, 1, 'one throwaway L2 sender');
    assert.equal(s.frames.length, 1, 'default frame size: the whole channel fits one blob');
    assert.equal(BLOB_MAX_FRAME_DATA + 24, MAX_BLOB_DATA_SIZE);
  });
});

describe('frames (derivation.md "Frame Format", "Batcher Transaction Format")', () => {
  test('parseFrames reads calldataFor(frames) back exactly; the frames reassemble and inflate to the RLP', () => {
    for (const max of [1, 7, 64, 500]) {
      const s = sampleChannel({ l2Txs: 4, batches: 2, maxFrameData: max });
      const calldata = calldataFor(s.frames);
      assert.equal(calldata[0], 0, 'derivation version 0');
      const frames = parseFrames(calldata);
      assert.equal(frames.length, Math.ceil(s.channel.length / max));
      let offset = 1;
      for (const [i, f] of frames.entries()) {
        assert.equal(f.channelId, s.channelId);
        assert.equal(f.frameNumber, i);
        assert.equal(f.isLast, i === frames.length - 1);
        assert.equal(f.offset, offset);
        assert.ok(f.dataLength <= max && (f.isLast || f.dataLength === max));
        assert.deepEqual(s.frames[i], calldata.subarray(offset, offset + 23 + f.dataLength), 'byte-exact frame');
        offset += 23 + f.dataLength;
      }
      assert.equal(offset, calldata.length);
      const channel = concatBytes(frames.map((f) => f.data));
      assert.deepEqual(channel, s.channel);
      assert.deepEqual(new Uint8Array(inflateSync(channel)), s.rlp);
    }
  });

  test('frame boundaries: exact multiples give no empty frame; an empty channel is one empty last frame', () => {
    const id: Hex = `0x${'ab'.repeat(16)}`;
    const channel = Uint8Array.from({ length: 30 }, (_, i) => i);
    assert.deepEqual(encodeFrames(id, channel, 10).map((f) => parseFrames(calldataFor([f]))[0]!.dataLength), [10, 10, 10]);
    assert.equal(encodeFrames(id, channel, 30).length, 1);
    const [empty] = parseFrames(calldataFor(encodeFrames(id, new Uint8Array(0), 10)));
    assert.deepEqual({ n: empty!.frameNumber, len: empty!.dataLength, last: empty!.isLast }, { n: 0, len: 0, last: true });
    // one frame by hand: id ‖ 0000 ‖ 00000003 ‖ 000102 ‖ 01
    assert.equal(bytesToHex(encodeFrames(id, channel.subarray(0, 3), 3)[0]!), `0x${'ab'.repeat(16)}0000${'00000003'}000102${'01'}`);
  });

  test('bad arguments are refused', () => {
    const ch = new Uint8Array(5);
    assert.throws(() => encodeFrames('0x00', ch, 5), /channel id must be 16 bytes, got 1/);
    assert.throws(() => encodeFrames(`0x${'00'.repeat(16)}`, ch, 0), /maxFrameData must be an integer in \[1, 1000000\], got 0/);
    assert.throws(() => encodeFrames(`0x${'00'.repeat(16)}`, ch, 1_000_001), RangeError);
    assert.throws(() => encodeFrames(`0x${'00'.repeat(16)}`, new Uint8Array(0x10000), 1), /65536 frames exceed the u16 frame_number/);
  });

  test('one frame per blob: the decoded blob is the same `0x00 ‖ frame` payload', () => {
    const s = sampleChannel({ l2Txs: 2, maxFrameData: 100 });
    for (const f of s.frames) {
      const payload = calldataFor([f]);
      assert.deepEqual(decodeBlob(encodeBlob(payload)), payload);
      assert.equal(parseFrames(decodeBlob(encodeBlob(payload))).length, 1);
    }
    assert.equal(hexToBytes(s.channelId).length, 16);
  });
});
