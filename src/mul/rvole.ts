import { chacha20 } from '@noble/ciphers/chacha.js';
import { hash32, hash64, hashToScalar, wideToScalar } from '../crypto/hash.ts';
import { Fn, concatScalars, decodeScalars, exactBytes, randomScalar } from '../crypto/scalar-point.ts';
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

const ZERO_NONCE = new Uint8Array(12);

/** Gadget g_c, c < 512: one session-bound hash expanded by ChaCha20 into 512 wide scalars. */
export function gadget(sidMul: Uint8Array): bigint[] {
  const stream = chacha20(hash32('mul/gadget', sidMul), ZERO_NONCE, new Uint8Array(XI * 48));
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
  const g = gadget(sidMul);
  let chi = 0n;
  for (let c = 0; c < XI; c++) chi = Fn.add(chi, Fn.mul(g[c]!, BigInt((beta[c >>> 3]! >>> (c & 7)) & 1)));
  const { message, pads } = extensionReceive(sidMul, seeds, beta, rng);
  return { state: { sidMul, beta, pads, chi }, message };
}

const theta = (sidMul: Uint8Array, aTilde: Uint8Array, i: number) => hashToScalar('mul/theta', sidMul, aTilde, i);

/**
 * E, round 2: check the extension, then mask a. Returns E's outputs c_1, c_2 and the message.
 * Throws DecodeError / SoftSpokenCheckError (caller: BAN_PAIR(R)).
 */
export function rvoleSenderRespond(sidMul: Uint8Array, delta: Uint8Array, seeds: Uint8Array, a: readonly bigint[], message: ExtensionMessage, rng: Rng): { c: bigint[]; message: RvoleSenderMessage } {
  const { pads0, pads1 } = extensionSend(sidMul, delta, seeds, message);
  const g = gadget(sidMul);
  const eta = randomScalar(rng);
  const c = [0n, 0n];
  const aT: bigint[] = new Array(XI * OT_WIDTH);
  for (let k = 0; k < XI; k++) {
    const p0 = pads0[k]!, p1 = pads1[k]!;
    for (let i = 0; i < RVOLE_ELL; i++) {
      c[i] = Fn.sub(c[i]!, Fn.mul(g[k]!, p0[i]!));
      aT[k * OT_WIDTH + i] = Fn.add(Fn.sub(p0[i]!, p1[i]!), a[i]!);
    }
    aT[k * OT_WIDTH + 2] = Fn.add(Fn.sub(p0[2]!, p1[2]!), eta);
  }
  const aTilde = concatScalars(aT);
  const th1 = theta(sidMul, aTilde, 1), th2 = theta(sidMul, aTilde, 2);
  const etaPrime = Fn.add(eta, Fn.add(Fn.mul(th1, a[0]!), Fn.mul(th2, a[1]!)));
  const muIn: bigint[] = new Array(XI);
  for (let k = 0; k < XI; k++) {
    const p0 = pads0[k]!;
    muIn[k] = Fn.add(p0[2]!, Fn.add(Fn.mul(th1, p0[0]!), Fn.mul(th2, p0[1]!)));
  }
  const mu = hash64('mul/mu', sidMul, concatScalars(muIn));
  return { c, message: { aTilde, etaPrime: concatScalars([etaPrime]), mu } };
}

/** R, finish: d̃ = V + β·ã, μ check (throws RvoleCheckError → BAN_PAIR(E)), d_i = Σ g_c·d̃_{c,i}. */
export function rvoleReceiverFinish(state: RvoleReceiverState, message: RvoleSenderMessage): bigint[] {
  const { sidMul, beta, pads } = state;
  const aT = decodeScalars(message.aTilde, XI * OT_WIDTH, 'rvole.aTilde');
  const [etaPrime] = decodeScalars(message.etaPrime, 1, 'rvole.etaPrime');
  exactBytes(message.mu, 64, 'rvole.mu');
  const g = gadget(sidMul);
  const th1 = theta(sidMul, message.aTilde, 1), th2 = theta(sidMul, message.aTilde, 2);
  const d = [0n, 0n];
  const muIn: bigint[] = new Array(XI);
  for (let k = 0; k < XI; k++) {
    const b = BigInt((beta[k >>> 3]! >>> (k & 7)) & 1);
    const V = pads[k]!;
    const dt: bigint[] = new Array(OT_WIDTH);
    for (let i = 0; i < OT_WIDTH; i++) dt[i] = Fn.add(V[i]!, Fn.mul(b, aT[k * OT_WIDTH + i]!));
    for (let i = 0; i < RVOLE_ELL; i++) d[i] = Fn.add(d[i]!, Fn.mul(g[k]!, dt[i]!));
    muIn[k] = Fn.sub(Fn.add(dt[2]!, Fn.add(Fn.mul(th1, dt[0]!), Fn.mul(th2, dt[1]!))), Fn.mul(b, etaPrime!));
  }
  const mu = hash64('mul/mu', sidMul, concatScalars(muIn));
  let diff = 0;
  for (let k = 0; k < 64; k++) diff |= mu[k]! ^ message.mu[k]!;
  if (diff !== 0) throw new RvoleCheckError();
  return d;
}
