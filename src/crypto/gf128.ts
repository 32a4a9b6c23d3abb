/**
 * GF(2^128) with modulus x^128 + x^7 + x^2 + x + 1 (spec §2.1, the SoftSpokenOT/KOS check field).
 * An element is 16 bytes; bit i (coefficient of x^i) is bit (i mod 8) of byte ⌊i/8⌋. In memory
 * it is 4 little-endian u32 words. Multiplication is branch-free on both operands.
 */
export type Gf128 = Uint32Array;

export const gfZero = (): Gf128 => new Uint32Array(4);

export function gfFromBytes(b: Uint8Array, offset = 0): Gf128 {
  const r = new Uint32Array(4);
  for (let w = 0; w < 4; w++) {
    const o = offset + 4 * w;
    r[w] = (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
  }
  return r;
}

export function gfToBytes(a: Gf128, out = new Uint8Array(16), offset = 0): Uint8Array {
  for (let w = 0; w < 4; w++) {
    const v = a[w]!;
    const o = offset + 4 * w;
    out[o] = v & 0xff;
    out[o + 1] = (v >>> 8) & 0xff;
    out[o + 2] = (v >>> 16) & 0xff;
    out[o + 3] = v >>> 24;
  }
  return out;
}

export const gfXor = (a: Gf128, b: Gf128): Gf128 => Uint32Array.of(a[0]! ^ b[0]!, a[1]! ^ b[1]!, a[2]! ^ b[2]!, a[3]! ^ b[3]!);

export const gfEquals = (a: Gf128, b: Gf128): boolean =>
  ((a[0]! ^ b[0]!) | (a[1]! ^ b[1]!) | (a[2]! ^ b[2]!) | (a[3]! ^ b[3]!)) === 0;

/** acc ^= a·b (shift-and-add, constant sequence of operations). */
export function gfMulAcc(acc: Gf128, a: Gf128, b: Gf128): void {
  let a0 = a[0]!, a1 = a[1]!, a2 = a[2]!, a3 = a[3]!;
  let r0 = 0, r1 = 0, r2 = 0, r3 = 0;
  for (let w = 0; w < 4; w++) {
    const bw = b[w]!;
    for (let i = 0; i < 32; i++) {
      const m = -((bw >>> i) & 1);
      r0 ^= a0 & m; r1 ^= a1 & m; r2 ^= a2 & m; r3 ^= a3 & m;
      const carry = -(a3 >>> 31);
      a3 = (a3 << 1) | (a2 >>> 31);
      a2 = (a2 << 1) | (a1 >>> 31);
      a1 = (a1 << 1) | (a0 >>> 31);
      a0 = (a0 << 1) ^ (0x87 & carry);
    }
  }
  acc[0] = (acc[0]! ^ r0) >>> 0; acc[1] = (acc[1]! ^ r1) >>> 0;
  acc[2] = (acc[2]! ^ r2) >>> 0; acc[3] = (acc[3]! ^ r3) >>> 0;
}

export function gfMul(a: Gf128, b: Gf128): Gf128 {
  const r = gfZero();
  gfMulAcc(r, a, b);
  return r;
}
