import { hash32, hash64, hashToScalar, wideToScalar } from '../crypto/hash.ts';
import { prg } from '../crypto/prg.ts';
import { Fn, decodeScalars, exactBytes, randomScalar, scalarToBytes, writeScalar } from '../crypto/scalar-point.ts';
import { selectBigInt, selectBytes } from '../crypto/select.ts';
import type { Rng } from '../crypto/random.ts';
import { extensionReceive, extensionSend, type ExtensionMessage, type Pads } from '../ot/softspoken.ts';
import { OT_WIDTH, XI } from '../ot/params.ts';

/**
 * Random vector OLE, DKLs23 Protocol 5.2 with ℓ = 2, ρ = 1 (spec §2.5, with the two paper
 * typos fixed as ToB App. F describes). E (sender) inputs a = (a_1, a_2); R (receiver) gets a
 * random χ. Outputs satisfy c_i + d_i = a_i·χ.
 */
export const RVOLE_ELL = 2;
export const ATILDE_BYTES = XI * OT_WIDTH * 32; // 49,152

export interface RvoleSenderMessage {
  aTilde: Uint8Array; // 512 × 3 scalars
  etaPrime: Uint8Array; // 32 B
  mu: Uint8Array; // 64 B
}

export class RvoleCheckError extends Error {
  override readonly name = 'RvoleCheckError';
  constructor() {
    super('RVOLE μ check failed');
  }
}

const LANE = 320n; // bits per lane of the receiver's masked sum (each lane < 2·512·n < 2^266)

/**
 * Σ_c bit_c·x_c (not reduced) for non-negative x_c and LSB-first packed bits. For every c both
 * candidates, sum and sum + x_c, are computed and one is picked by selectBigInt; the sum starts at
 * Σ_c x_c (public) so that both are numbers of the same size whatever the bits, and that start is
 * removed at the end. No BigInt operation takes a bit as an operand.
 */
export function maskedSum(xs: readonly bigint[], bits: Uint8Array): bigint {
  const start = xs.reduce((a, x) => a + x, 0n);
  const limbs = Math.ceil((2n * start).toString(2).length / 64);
  let sum = start;
  for (let c = 0; c < xs.length; c++) sum = selectBigInt((bits[c >>> 3]! >>> (c & 7)) & 1, sum, sum + xs[c]!, limbs);
  return sum - start;
}

/**
 * Writes (bit ? y : x) as 32 bytes at out[off..] for scalars x, y < n: both are written and one is
 * picked byte by byte under the mask, so nothing after the selection is BigInt arithmetic.
 */
export function pickScalar(bit: number, x: bigint, y: bigint, out: Uint8Array, off: number): void {
  writeScalar(x, pickScratch, 0);
  writeScalar(y, pickScratch, 32);
  selectBytes(bit, pickScratch.subarray(0, 32), pickScratch.subarray(32, 64), out.subarray(off, off + 32));
}
const pickScratch = new Uint8Array(64);

/** Gadget g_c, c < 512: one session-bound hash expanded by ChaCha20 (one 24 KB PRG stream) into 512 wide scalars. */
export function gadget(sidMul: Uint8Array): bigint[] {
  const stream = prg(hash32('mul/gadget', sidMul), XI * 48);
  const g: bigint[] = new Array(XI);
  for (let c = 0; c < XI; c++) g[c] = wideToScalar(stream.subarray(48 * c, 48 * c + 48));
  return g;
}

export interface RvoleReceiverState {
  sidMul: Uint8Array;
  beta: Uint8Array;
  pads: Pads;
  chi: bigint;
}

/** R, round 1: sample β, χ = Σ β_c·g_c; OT-extension message to E. */
export function rvoleReceiverStart(sidMul: Uint8Array, seeds: Uint8Array, rng: Rng): { state: RvoleReceiverState; message: ExtensionMessage } {
  const beta = rng(XI / 8);
  const chi = Fn.create(maskedSum(gadget(sidMul), beta));
  const { message, pads } = extensionReceive(sidMul, seeds, beta, rng);
  return { state: { sidMul, beta, pads, chi }, message };
}

/** θ_i = H("mul/theta", sidMul, ã, i) over all 512×3 entries of ã; ã is hashed once, then per i. */
function thetas(sidMul: Uint8Array, aTilde: Uint8Array): [bigint, bigint] {
  const digest = hash32('mul/theta-input', sidMul, aTilde);
  return [hashToScalar('mul/theta', sidMul, digest, 1), hashToScalar('mul/theta', sidMul, digest, 2)];
}

/**
 * E, round 2: check the extension, then mask a. Returns E's outputs c_1, c_2 and the message.
 * Throws DecodeError / SoftSpokenCheckError (caller: BAN_PAIR(R)). Sums are accumulated as plain
 * integers and reduced once (pads are unreduced wide values, see Pads).
 */
export function rvoleSenderRespond(sidMul: Uint8Array, delta: Uint8Array, seeds: Uint8Array, a: readonly bigint[], message: ExtensionMessage, rng: Rng): { c: bigint[]; message: RvoleSenderMessage } {
  const { pads0, pads1 } = extensionSend(sidMul, delta, seeds, message);
  const g = gadget(sidMul);
  const eta = randomScalar(rng);
  const a1 = a[0]!, a2 = a[1]!;
  let c1 = 0n, c2 = 0n;
  const aTilde = new Uint8Array(ATILDE_BYTES);
  for (let k = 0; k < XI; k++) {
    const p0 = pads0[k]!, p1 = pads1[k]!, gk = g[k]!;
    c1 += gk * p0[0]!;
    c2 += gk * p0[1]!;
    writeScalar(Fn.create(p0[0]! - p1[0]! + a1), aTilde, (k * OT_WIDTH) * 32);
    writeScalar(Fn.create(p0[1]! - p1[1]! + a2), aTilde, (k * OT_WIDTH + 1) * 32);
    writeScalar(Fn.create(p0[2]! - p1[2]! + eta), aTilde, (k * OT_WIDTH + 2) * 32);
  }
  const [th1, th2] = thetas(sidMul, aTilde);
  const etaPrime = Fn.create(eta + th1 * a1 + th2 * a2);
  const muIn = new Uint8Array(XI * 32);
  for (let k = 0; k < XI; k++) {
    const p0 = pads0[k]!;
    writeScalar(Fn.create(p0[2]! + th1 * p0[0]! + th2 * p0[1]!), muIn, k * 32);
  }
  const mu = hash64('mul/mu', sidMul, muIn);
  return { c: [Fn.neg(Fn.create(c1)), Fn.neg(Fn.create(c2))], message: { aTilde, etaPrime: scalarToBytes(etaPrime), mu } };
}

/** R, finish: d̃ = V + β·ã, μ check (throws RvoleCheckError → BAN_PAIR(E)), d_i = Σ g_c·d̃_{c,i}. */
export function rvoleReceiverFinish(state: RvoleReceiverState, message: RvoleSenderMessage): bigint[] {
  const { sidMul, beta, pads } = state;
  const aT = decodeScalars(message.aTilde, XI * OT_WIDTH, 'rvole.aTilde');
  const [etaPrime] = decodeScalars(message.etaPrime, 1, 'rvole.etaPrime');
  exactBytes(message.mu, 64, 'rvole.mu');
  const g = gadget(sidMul);
  const [th1, th2] = thetas(sidMul, message.aTilde);
  // d̃_c = V_c + β_c·ã_c, split into a part without β and a β-selected public part (spec §4.3.16):
  //   d_i = Σ_c g_c·V_{c,i} + Σ_c β_c·(g_c·ã_{c,i})      (i = 1, 2: two lanes of one masked sum)
  //   μ-input_c = v_c or v_c + a_c (mod n), v_c = V_{c,2} + θ_1·V_{c,0} + θ_2·V_{c,1},
  //               a_c = ã_{c,2} + θ_1·ã_{c,0} + θ_2·ã_{c,1} − η', both reduced before the pick
  let d1 = 0n, d2 = 0n;
  const lanes: bigint[] = new Array(XI);
  const muIn = new Uint8Array(XI * 32);
  for (let k = 0; k < XI; k++) {
    const V = pads[k]!, o = k * OT_WIDTH;
    d1 += g[k]! * V[0]!;
    d2 += g[k]! * V[1]!;
    lanes[k] = Fn.mul(g[k]!, aT[o]!) + (Fn.mul(g[k]!, aT[o + 1]!) << LANE);
    const v = Fn.create(V[2]! + th1 * V[0]! + th2 * V[1]!);
    const a = Fn.create(aT[o + 2]! + th1 * aT[o]! + th2 * aT[o + 1]! - etaPrime!);
    pickScalar((beta[k >>> 3]! >>> (k & 7)) & 1, v, Fn.add(v, a), muIn, k * 32);
  }
  const picked = maskedSum(lanes, beta);
  d1 += picked & ((1n << LANE) - 1n);
  d2 += picked >> LANE;
  const mu = hash64('mul/mu', sidMul, muIn);
  let diff = 0;
  for (let k = 0; k < 64; k++) diff |= mu[k]! ^ message.mu[k]!;
  if (diff !== 0) throw new RvoleCheckError();
  return [Fn.create(d1), Fn.create(d2)];
}
