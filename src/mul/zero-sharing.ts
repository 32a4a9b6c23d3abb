import { hash32, hashToScalar } from '../crypto/hash.ts';
import { Fn } from '../crypto/scalar-point.ts';

/**
 * Zero-sharing (DKLs23 Functionality 3.4, spec §2.6): each pair of parties shares a seed
 * from key generation; for a signing session, ζ_i = Σ_{j<i} PRF(seed_ij, sid) − Σ_{j>i} PRF(seed_ij, sid),
 * so Σ_{i∈T} ζ_i = 0.
 */
export function pairSeed(dkgSid: Uint8Array, i: number, j: number, zFromI: Uint8Array, zFromJ: Uint8Array): Uint8Array {
  const [lo, hi, zLo, zHi] = i < j ? [i, j, zFromI, zFromJ] : [j, i, zFromJ, zFromI];
  return hash32('zero/seed', dkgSid, lo, hi, zLo, zHi);
}

export function zeroShare(self: number, seeds: ReadonlyMap<number, Uint8Array>, signers: readonly number[], sigSid: Uint8Array): bigint {
  let zeta = 0n;
  for (const j of signers) {
    if (j === self) continue;
    const seed = seeds.get(j);
    if (!seed) throw new RangeError(`no zero-sharing seed with party ${j}`);
    const prf = hashToScalar('zero/prf', seed, sigSid);
    zeta = j < self ? Fn.add(zeta, prf) : Fn.sub(zeta, prf);
  }
  return zeta;
}
