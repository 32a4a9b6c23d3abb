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

/**
 * a if bit = 0, b if bit = 1, for integers 0 ≤ a, b < 2^(64·limbs): both are written out as
 * fixed-width bytes, one is picked under the mask and read back. The caller computes both
 * candidates whatever the bit, and arranges for both to be full-size numbers (a BigInt's cost
 * follows its size), so nothing about the bit reaches a BigInt operation.
 */
export function selectBigInt(bit: number, a: bigint, b: bigint, limbs: number): bigint {
  if (limbs > MAX_LIMBS) throw new RangeError(`selectBigInt: at most ${MAX_LIMBS} limbs`);
  const len = 8 * limbs;
  writeLimbs(a, 0, limbs);
  writeLimbs(b, MAX_LIMBS * 8, limbs);
  selectBytes(bit, scratch.subarray(0, len), scratch.subarray(MAX_LIMBS * 8, MAX_LIMBS * 8 + len), picked);
  let x = 0n;
  for (let o = 0; o < len; o += 8) x = (x << 64n) | pickedView.getBigUint64(o);
  return x;
}

// Scratch space, reused (synchronous code; each worker has its own module instance).
const MAX_LIMBS = 16;
const scratch = new Uint8Array(2 * 8 * MAX_LIMBS), scratchView = new DataView(scratch.buffer);
const picked = new Uint8Array(8 * MAX_LIMBS), pickedView = new DataView(picked.buffer);
const M64 = 0xffffffffffffffffn;
/** x as `limbs` big-endian 64-bit words at scratch[off..] (a fixed number of steps). */
function writeLimbs(x: bigint, off: number, limbs: number): void {
  for (let k = limbs - 1; k >= 0; k--) {
    scratchView.setBigUint64(off + 8 * k, x & M64);
    x >>= 64n;
  }
}
