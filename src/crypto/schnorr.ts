import { hashToScalar, type HashField } from './hash.ts';
import { Fn, G, mulG, exactBytes, pointToBytes, randomScalar, scalarToBytes, pointFromBytes, scalarFromBytes, type Point } from './scalar-point.ts';
import type { Rng } from './random.ts';

/**
 * Schnorr proof of knowledge of x with X = x·G (spec §2.2 round 2). The challenge is
 * H(label, binding…, X, A): callers put the session id, prover index and coefficient
 * index in `binding` (spec §4.3 check 4).
 */
export interface SchnorrProof { A: Point; z: bigint }
export const SCHNORR_PROOF_BYTES = 33 + 32;

export function schnorrProve(purpose: string, binding: HashField[], x: bigint, X: Point, rng: Rng): SchnorrProof {
  const alpha = randomScalar(rng);
  const A = mulG(alpha);
  const e = hashToScalar(purpose, ...binding, pointToBytes(X), pointToBytes(A));
  return { A, z: Fn.add(alpha, Fn.mul(e, x)) };
}

/** z·G == A + e·X; all inputs are public, so variable-time multiplication is fine. */
export function schnorrVerify(purpose: string, binding: HashField[], X: Point, proof: SchnorrProof): boolean {
  const e = hashToScalar(purpose, ...binding, pointToBytes(X), pointToBytes(proof.A));
  const lhs = proof.z === 0n ? null : G.multiplyUnsafe(proof.z); // z, e and X are public
  const rhs = proof.A.add(X.multiplyUnsafe(e));
  return lhs !== null && lhs.equals(rhs);
}

export const encodeSchnorr = (p: SchnorrProof): Uint8Array => {
  const out = new Uint8Array(SCHNORR_PROOF_BYTES);
  out.set(pointToBytes(p.A), 0);
  out.set(scalarToBytes(p.z), 33);
  return out;
};
export function decodeSchnorr(b: Uint8Array, what: string): SchnorrProof {
  exactBytes(b, SCHNORR_PROOF_BYTES, what);
  return { A: pointFromBytes(b.subarray(0, 33), `${what}.A`), z: scalarFromBytes(b.subarray(33, 65), `${what}.z`) };
}
