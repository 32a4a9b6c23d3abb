/**
 * Real OP Stack batch content for the devnet and tests (system-anchors §1.5; optimism specs
 * `protocol/derivation.md` "Batch Format", "Channel Format", "Frame Format", "Batcher Transaction
 * Format"): singular batches v0 carrying signed L2 txs, a zlib channel, its frames, and the
 * `0x00 ‖ frames` payload that goes into calldata or, one per blob, into blobs.
 */
import { randomBytes } from 'node:crypto';
import { deflateSync } from 'node:zlib';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex, concatBytes, hexToBytes, keccak256, numberToBytes, parseGwei, serializeTransaction, toRlp, type Hex } from 'viem';
import { DERIVATION_VERSION_0, MAX_FRAME_DATA_LENGTH } from '../policy/frames.ts';
import { MAX_BLOB_DATA_SIZE } from '../policy/blobs.ts';

/** Singular batches are batch_version 0 ("Batch Format"). */
export const SINGULAR_BATCH_VERSION = 0;
/** Chain id of the sample L2 txs (the OP devnet's usual L2 id). */
export const SAMPLE_L2_CHAIN_ID = 901;
/** Largest frame_data that still fits one blob as `0x00 ‖ frame` (23 bytes frame overhead, §1.5). */
export const BLOB_MAX_FRAME_DATA = MAX_BLOB_DATA_SIZE - 1 - 23;

export interface SingularBatch {
  parentHash: Hex;
  epochNumber: bigint;
  epochHash: Hex;
  timestamp: bigint;
  /** EIP-2718 encoded L2 txs. */
  transactions: Hex[];
}

export interface SampleChannel {
  /** 16 random bytes. */
  channelId: Hex;
  batches: SingularBatch[];
  /** Concatenation of the RLP-encoded batches: what the channel decompresses to. */
  rlp: Uint8Array;
  /** zlib (RFC 1950) of `rlp`. */
  channel: Uint8Array;
  /** Encoded frames, numbered from 0, the last one with is_last = 1. */
  frames: Uint8Array[];
}

/** RLP scalars are minimal big-endian; 0 is the empty string. */
const rlpUint = (n: bigint): Hex => (n === 0n ? '0x' : bytesToHex(numberToBytes(n)));

/** `batch_version(0) ‖ rlp([parent_hash, epoch_number, epoch_hash, timestamp, transaction_list])`. */
export function encodeSingularBatch(b: SingularBatch): Uint8Array {
  const content = toRlp([b.parentHash, rlpUint(b.epochNumber), b.epochHash, rlpUint(b.timestamp), b.transactions], 'bytes');
  return concatBytes([Uint8Array.of(SINGULAR_BATCH_VERSION), content]);
}

/**
 * "Channel Format": `rlp_batches` is the concatenation of each batch RLP-encoded as a byte string,
 * `rlp(batch_version ‖ content)` (op-node `BatchData.EncodeRLP`), not an RLP list; then zlib.
 */
export function encodeChannel(batches: readonly SingularBatch[]): { rlp: Uint8Array; channel: Uint8Array } {
  const rlp = concatBytes(batches.map((b) => toRlp(encodeSingularBatch(b), 'bytes')));
  return { rlp, channel: new Uint8Array(deflateSync(rlp)) };
}

/**
 * "Frame Format": `channel_id(16) ‖ frame_number(u16) ‖ frame_data_length(u32) ‖ frame_data ‖
 * is_last`, the channel cut into pieces of at most maxFrameData bytes.
 */
export function encodeFrames(channelId: Hex, channel: Uint8Array, maxFrameData: number): Uint8Array[] {
  const id = hexToBytes(channelId);
  if (id.length !== 16) throw new RangeError(`channel id must be 16 bytes, got ${id.length}`);
  if (!Number.isInteger(maxFrameData) || maxFrameData < 1 || maxFrameData > MAX_FRAME_DATA_LENGTH) {
    throw new RangeError(`maxFrameData must be an integer in [1, ${MAX_FRAME_DATA_LENGTH}], got ${maxFrameData}`);
  }
  const count = Math.max(1, Math.ceil(channel.length / maxFrameData));
  if (count > 0xffff) throw new RangeError(`${count} frames exceed the u16 frame_number`);
  const frames: Uint8Array[] = [];
  for (let n = 0; n < count; n++) {
    const data = channel.subarray(n * maxFrameData, (n + 1) * maxFrameData);
    const frame = new Uint8Array(16 + 2 + 4 + data.length + 1);
    const view = new DataView(frame.buffer);
    frame.set(id, 0);
    view.setUint16(16, n, false);
    view.setUint32(18, data.length, false);
    frame.set(data, 22);
    frame[22 + data.length] = n === count - 1 ? 1 : 0;
    frames.push(frame);
  }
  return frames;
}

/** "Batcher Transaction Format": `derivation_version(0) ‖ frame+`, for calldata or one blob. */
export function calldataFor(frames: readonly Uint8Array[]): Uint8Array {
  return concatBytes([Uint8Array.of(DERIVATION_VERSION_0), ...frames]);
}

/**
 * A fresh channel of `batches` consecutive singular batches (2 s apart, same epoch), each with
 * `l2Txs` EIP-1559 L2 txs signed by a throwaway key. Channel id, hashes and keys come from
 * node:crypto randomBytes: sample data, nothing here is security-relevant.
 */
export function sampleChannel(opts: { l2Txs?: number; batches?: number; maxFrameData?: number } = {}): SampleChannel {
  const { l2Txs = 3, batches: count = 2, maxFrameData = BLOB_MAX_FRAME_DATA } = opts;
  const key = secp256k1.utils.randomSecretKey();
  const epochNumber = 100n, epochHash = random32(), t0 = 1_700_000_000n;
  let nonce = 0, parentHash = random32();
  const batches: SingularBatch[] = [];
  for (let i = 0; i < count; i++) {
    const transactions = Array.from({ length: l2Txs }, () => signedL2Tx(key, nonce++));
    batches.push({ parentHash, epochNumber, epochHash, timestamp: t0 + 2n * BigInt(i), transactions });
    parentHash = random32(); // stands in for the hash of the L2 block this batch produces
  }
  const { rlp, channel } = encodeChannel(batches);
  const channelId = bytesToHex(randomBytes(16));
  return { channelId, batches, rlp, channel, frames: encodeFrames(channelId, channel, maxFrameData) };
}

function signedL2Tx(key: Uint8Array, nonce: number): Hex {
  const tx = {
    type: 'eip1559', chainId: SAMPLE_L2_CHAIN_ID, nonce, to: bytesToHex(randomBytes(20)), value: 10n ** 15n,
    gas: 21_000n, maxFeePerGas: parseGwei('2'), maxPriorityFeePerGas: parseGwei('1'),
  } as const;
  const sig = secp256k1.sign(hexToBytes(keccak256(serializeTransaction(tx))), key, { prehash: false, format: 'recovered' });
  return serializeTransaction(tx, {
    yParity: sig[0]!, r: bytesToHex(sig.subarray(1, 33)), s: bytesToHex(sig.subarray(33, 65)),
  });
}

const random32 = (): Hex => bytesToHex(randomBytes(32));
