/**
 * Selection by masks on bytes, for the code that handles secret bits (the OT choice bits, the
 * punctured index, β): no branch and no array index depends on the bit, and no BigInt operation
 * takes it as an operand (spec §4.3.16). JavaScript gives no hard guarantee (the JIT decides),
 * so `npm run bench` measures these paths for both classes of secret (bench/timing.ts).
 */

/** 0xff for bit = 1, 0 for bit = 0. */
export const byteMask = (bit: number): number => -bit & 0xff;

/** 1 if a = b, else 0, for integers 0 ≤ a, b < 2^31, without a comparison. */
export const isEqual = (a: number, b: number): number => ((a ^ b) - 1) >>> 31;

/** a if bit = 0, b if bit = 1, in `out` (fresh by default); a and b have the same length. */
export function selectBytes(bit: number, a: Uint8Array, b: Uint8Array, out: Uint8Array = new Uint8Array(a.length)): Uint8Array {
  const m = byteMask(bit);
  for (let k = 0; k < a.length; k++) out[k] = a[k]! ^ ((a[k]! ^ b[k]!) & m);
  return out;
}

/** dst ^= src & mask (mask 0 or 0xff). */
export function xorMasked(dst: Uint8Array, src: Uint8Array, mask: number): void {
  for (let k = 0; k < dst.length; k++) dst[k]! ^= src[k]! & mask;
}

/** dst &= mask (mask 0 or 0xff). */
export function andMask(dst: Uint8Array, mask: number): void {
  for (let k = 0; k < dst.length; k++) dst[k]! &= mask;
}
