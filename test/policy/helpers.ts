import { concat, hexToBytes, numberToHex, toHex, type Hex } from 'viem';
import { seededRng, type Rng } from '../../src/crypto/random.ts';

export interface FrameSpec {
  channelId: Uint8Array | Hex;
  frameNumber: number;
  data: Uint8Array;
  isLast: boolean | number;
}

/** Builds `version ‖ frames` the way op-batcher writes a calldata batch (derivation.md "Frame Format"). */
export function buildBatch(frames: FrameSpec[], version = 0): Uint8Array {
  const parts: Uint8Array[] = [Uint8Array.of(version)];
  for (const f of frames) {
    parts.push(typeof f.channelId === 'string' ? hexToBytes(f.channelId) : f.channelId);
    parts.push(hexToBytes(numberToHex(f.frameNumber, { size: 2 })));
    parts.push(hexToBytes(numberToHex(f.data.length, { size: 4 })));
    parts.push(f.data);
    parts.push(Uint8Array.of(typeof f.isLast === 'number' ? f.isLast : f.isLast ? 1 : 0));
  }
  return hexToBytes(concat(parts.map((p) => toHex(p))));
}

/** Small deterministic integer source on the seeded ChaCha RNG (as in test/fuzz/decoders.test.ts). */
export function prng(seed: string) {
  const rng: Rng = seededRng(seed);
  let buf = rng(4096), pos = 0;
  const byte = () => {
    if (pos === buf.length) { buf = rng(4096); pos = 0; }
    return buf[pos++]!;
  };
  const int = (max: number) => ((byte() << 24 | byte() << 16 | byte() << 8 | byte()) >>> 0) % max;
  const bytes = (len: number) => { const b = new Uint8Array(len); for (let i = 0; i < len; i++) b[i] = byte(); return b; };
  return { byte, int, bytes };
}
export type Prng = ReturnType<typeof prng>;

// ---- TransactionArgs fixtures (system-anchors §1.3) ----

/** Hardhat's well-known account #0 test key: test only. */
export const TEST_KEY: Hex = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';
export const CLUSTER = '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266' as const;
/** op-deployer style inbox `0x00 ‖ keccak256(chainID)[0:19]` is not derived here (§1.5): a fixed one. */
export const INBOX = '0xff00000000000000000000000000000000000901' as const;
export const CHAIN_ID = 900;
export const BLOB_HASH_1: Hex = `0x01${'11'.repeat(31)}`;
export const BLOB_HASH_2: Hex = `0x01${'22'.repeat(31)}`;

/** A calldata batch: one channel, frames 0 and 1 (last). */
export const SAMPLE_BATCH: Hex = toHex(buildBatch([
  { channelId: `0x${'ab'.repeat(16)}`, frameNumber: 0, data: new Uint8Array(100).fill(0x78), isLast: false },
  { channelId: `0x${'ab'.repeat(16)}`, frameNumber: 1, data: new Uint8Array(20).fill(0x9c), isLast: true },
]));

/** A type-2 request exactly as op-service's Go client serializes it (gasPrice null, data null, input set). */
export const type2Request = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  from: CLUSTER.toLowerCase(), to: INBOX, gas: '0x186a0', gasPrice: null,
  maxFeePerGas: '0x77359400', maxPriorityFeePerGas: '0x3b9aca00', value: '0x0', nonce: '0x2a',
  data: null, input: SAMPLE_BATCH, accessList: [], chainId: '0x384', ...over,
});

/** A type-3 request as the Go client sends it: no calldata, two versioned hashes, a blob fee cap. */
export const type3Request = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  from: CLUSTER.toLowerCase(), to: INBOX, gas: '0x5208', gasPrice: null,
  maxFeePerGas: '0x77359400', maxPriorityFeePerGas: '0x3b9aca00', value: '0x0', nonce: '0x2b',
  data: null, input: '0x', accessList: [], chainId: '0x384',
  blobVersionedHashes: [BLOB_HASH_1, BLOB_HASH_2], maxFeePerBlobGas: '0x3b9aca00', ...over,
});
