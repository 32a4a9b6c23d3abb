import { xchacha20 } from '@noble/ciphers/chacha.js';
import { chacha20 } from '@noble/ciphers/chacha.js';
import { hash32, encodeTuple, sha256Incremental } from '../crypto/hash.ts';
import { bytesToBigInt } from '../crypto/scalar-point.ts';
import { transposeBits } from '../crypto/bit-matrix.ts';
import { gfFromBytes, gfMulAcc, gfToBytes, type Gf128 } from '../crypto/gf128.ts';
import { DecodeError } from '../crypto/errors.ts';
import type { Rng } from '../crypto/random.ts';
import { GROUPS, K, LAMBDA_C, LEAVES, L_PRIME, M, OT_WIDTH, ROW_BYTES, SEED_BYTES, XI } from './params.ts';

/**
 * SoftSpokenOT extension with k = 4 and the Fiat–Shamir'd KOS check (spec §2.4), producing
 * ξ = 512 random OTs of width 3 scalars. R (receiver, all seeds) picks choice bits x = β‖pad;
 * E (sender, Δ and 15 of 16 seeds per group) obtains both pads V^0_c, V^1_c; R obtains V^{β_c}_c.
 */
export const U_BYTES = GROUPS * ROW_BYTES; // 5,120
export const VTILDE_BYTES = LAMBDA_C * 16; // 4,096

export interface ExtensionMessage {
  u: Uint8Array; // 64 × 80 B
  xTilde: Uint8Array; // 16 B
  vTilde: Uint8Array; // 256 × 16 B
}

/**
 * The pads of the extended OTs: pads[c][i] for c < 512, i < 3. Each is a 384-bit integer whose
 * residue mod n is the pad (a wide hash-to-scalar output, not yet reduced): RVOLE only combines
 * pads linearly and reduces once at the end, which saves ~4,600 reductions per pair.
 */
export type Pads = bigint[][];

export class SoftSpokenCheckError extends Error {
  override readonly name = 'SoftSpokenCheckError';
  constructor() {
    super('SoftSpokenOT consistency check failed');
  }
}

const ZERO_NONCE = new Uint8Array(12);

/** r_{g,j} = PRG(σ_{g,j}; sidMul): XChaCha20 keyed by the seed, nonce = H(sidMul) (spec §2.4 step 2). */
function expandSeeds(sidMul: Uint8Array, seeds: Uint8Array): Uint8Array {
  const nonce = hash32('ot/ss-prg', sidMul).subarray(0, 24);
  const out = new Uint8Array(GROUPS * LEAVES * ROW_BYTES);
  const zeros = new Uint8Array(ROW_BYTES);
  for (let s = 0; s < GROUPS * LEAVES; s++) {
    xchacha20(seeds.subarray(s * SEED_BYTES, (s + 1) * SEED_BYTES), nonce, zeros, out.subarray(s * ROW_BYTES, (s + 1) * ROW_BYTES));
  }
  return out;
}

function challenges(sidMul: Uint8Array, u: Uint8Array): Gf128[] {
  const dU = hash32('ot/ss-u', sidMul, u);
  const omega: Gf128[] = [];
  for (let m = 0; m < M; m++) omega.push(gfFromBytes(hash32('ot/ss-chi', dU, m)));
  return omega;
}

/** Σ_{m<4} ω_m·row_m ⊕ row_4 for one 640-bit row. */
function compress(omega: Gf128[], row: Uint8Array, offset: number): Gf128 {
  const acc = gfFromBytes(row, offset + M * 16);
  for (let m = 0; m < M; m++) gfMulAcc(acc, omega[m]!, gfFromBytes(row, offset + m * 16));
  return acc;
}

/**
 * V_c = H("ot/ss-rand", sidMul, c, column) expanded to 3 wide scalars (one hash, one ChaCha20
 * call). The hash input is the tuple encoding of hash.ts; its session prefix is absorbed once
 * per session and the SHA-256 state cloned per column.
 */
function padHasher(sidMul: Uint8Array): (c: number, column: Uint8Array) => bigint[] {
  const prefix = encodeTuple('ot/ss-rand', [sidMul]);
  const base = sha256Incremental().update(prefix);
  const suffix = new Uint8Array(4 + 4 + 4 + 32);
  const dv = new DataView(suffix.buffer);
  dv.setUint32(0, 4);
  dv.setUint32(8, 32);
  const block = new Uint8Array(OT_WIDTH * 48);
  return (c, column) => {
    dv.setUint32(4, c);
    suffix.set(column, 12);
    const key = base.copy().update(suffix).digest();
    block.fill(0);
    const stream = chacha20(key, ZERO_NONCE, block, block);
    const out: bigint[] = new Array(OT_WIDTH);
    for (let i = 0; i < OT_WIDTH; i++) out[i] = bytesToBigInt(stream.subarray(48 * i, 48 * i + 48));
    return out;
  };
}

/** R: message to E and R's pads V_c = V^{β_c}_c. `beta` is 512 bits (64 bytes), LSB-first. */
export function extensionReceive(sidMul: Uint8Array, seeds: Uint8Array, beta: Uint8Array, rng: Rng): { message: ExtensionMessage; pads: Pads } {
  const x = new Uint8Array(ROW_BYTES);
  x.set(beta, 0);
  x.set(rng(W_BYTES), XI / 8);
  const r32 = new Uint32Array(expandSeeds(sidMul, seeds).buffer);
  const u = new Uint8Array(U_BYTES);
  const v = new Uint8Array(LAMBDA_C * ROW_BYTES);
  const u32 = new Uint32Array(u.buffer), v32 = new Uint32Array(v.buffer), x32 = new Uint32Array(x.buffer);
  for (let g = 0; g < GROUPS; g++) {
    const ug = g * ROW_WORDS;
    for (let k = 0; k < ROW_WORDS; k++) u32[ug + k] = x32[k]!;
    for (let j = 0; j < LEAVES; j++) {
      const off = (g * LEAVES + j) * ROW_WORDS;
      for (let k = 0; k < ROW_WORDS; k++) u32[ug + k]! ^= r32[off + k]!;
      for (let b = 0; b < K; b++) {
        if (((j >>> b) & 1) === 0) continue; // j is a public index
        const vo = (K * g + b) * ROW_WORDS;
        for (let k = 0; k < ROW_WORDS; k++) v32[vo + k]! ^= r32[off + k]!;
      }
    }
  }
  const omega = challenges(sidMul, u);
  const xTilde = gfToBytes(compress(omega, x, 0));
  const vTilde = new Uint8Array(VTILDE_BYTES);
  for (let row = 0; row < LAMBDA_C; row++) gfToBytes(compress(omega, v, row * ROW_BYTES), vTilde, row * 16);
  const cols = transposeBits(v, LAMBDA_C, L_PRIME);
  const pads: Pads = new Array(XI);
  const padScalars = padHasher(sidMul);
  for (let c = 0; c < XI; c++) pads[c] = padScalars(c, cols.subarray(c * 32, c * 32 + 32));
  x.fill(0);
  return { message: { u, xTilde, vTilde }, pads };
}
const W_BYTES = 16;
const ROW_WORDS = ROW_BYTES / 4; // 20

/**
 * E: check R's message and derive both pads. Throws DecodeError on wrong lengths and
 * SoftSpokenCheckError when the consistency check fails (the caller bans the pair).
 */
export function extensionSend(sidMul: Uint8Array, delta: Uint8Array, seeds: Uint8Array, message: ExtensionMessage): { pads0: Pads; pads1: Pads } {
  const { u, xTilde, vTilde } = message;
  if (u.length !== U_BYTES) throw new DecodeError('extension.u', `expected ${U_BYTES} bytes, got ${u.length}`);
  if (xTilde.length !== 16) throw new DecodeError('extension.xTilde', `expected 16 bytes, got ${xTilde.length}`);
  if (vTilde.length !== VTILDE_BYTES) throw new DecodeError('extension.vTilde', `expected ${VTILDE_BYTES} bytes, got ${vTilde.length}`);
  const r32 = new Uint32Array(expandSeeds(sidMul, seeds).buffer);
  const u32 = new Uint32Array(new Uint8Array(u).buffer); // aligned copy of the received bytes
  const w = new Uint8Array(LAMBDA_C * ROW_BYTES);
  const w32 = new Uint32Array(w.buffer);
  const deltaVec = new Uint8Array(LAMBDA_C / 8);
  for (let g = 0; g < GROUPS; g++) {
    const d = delta[g]!;
    for (let b = 0; b < K; b++) {
      const row = K * g + b;
      const dBit = (d >>> b) & 1;
      deltaVec[row >>> 3]! |= dBit << (row & 7);
      const wo = row * ROW_WORDS;
      // Branch-free on Δ: every seed row is folded in under a mask (the punctured one with mask 0).
      for (let j = 0; j < LEAVES; j++) {
        const m = -(((d ^ j) >>> b) & 1);
        const off = (g * LEAVES + j) * ROW_WORDS;
        for (let k = 0; k < ROW_WORDS; k++) w32[wo + k]! ^= r32[off + k]! & m;
      }
      const mu = -dBit;
      const ug = g * ROW_WORDS;
      for (let k = 0; k < ROW_WORDS; k++) w32[wo + k]! ^= u32[ug + k]! & mu;
    }
  }
  const omega = challenges(sidMul, u);
  const xT = gfFromBytes(xTilde);
  let diff = 0;
  for (let row = 0; row < LAMBDA_C; row++) {
    const lhs = compress(omega, w, row * ROW_BYTES);
    const mask = -((deltaVec[row >>> 3]! >>> (row & 7)) & 1);
    const o = row * 16;
    const vt = gfFromBytes(vTilde, o);
    for (let q = 0; q < 4; q++) diff |= lhs[q]! ^ vt[q]! ^ (xT[q]! & mask);
  }
  if (diff !== 0) throw new SoftSpokenCheckError();
  const cols = transposeBits(w, LAMBDA_C, L_PRIME);
  const pads0: Pads = new Array(XI), pads1: Pads = new Array(XI);
  const flipped = new Uint8Array(32);
  const padScalars = padHasher(sidMul);
  for (let c = 0; c < XI; c++) {
    const col = cols.subarray(c * 32, c * 32 + 32);
    for (let k = 0; k < 32; k++) flipped[k] = col[k]! ^ deltaVec[k]!;
    pads0[c] = padScalars(c, col);
    pads1[c] = padScalars(c, flipped);
  }
  return { pads0, pads1 };
}
