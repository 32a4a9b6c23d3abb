/**
 * Packed bit matrices for OT extension (spec §2.4 step 4). A matrix of `rows` × `cols` bits is
 * stored row-major, each row `cols/8` bytes; bit (r, c) is bit (c mod 8) of byte r·cols/8 + ⌊c/8⌋.
 */
export function transposeBits(m: Uint8Array, rows: number, cols: number): Uint8Array {
  if (rows % 8 !== 0 || cols % 8 !== 0) throw new RangeError('bit matrix dimensions must be multiples of 8');
  if (m.length !== (rows * cols) / 8) throw new RangeError('bit matrix has the wrong size');
  const inStride = cols >>> 3;
  const outStride = rows >>> 3;
  const out = new Uint8Array(m.length);
  // 8×8 blocks: gather 8 input bytes (rows r..r+7, byte column cb), transpose, scatter.
  for (let rb = 0; rb < outStride; rb++) {
    for (let cb = 0; cb < inStride; cb++) {
      const base = rb * 8 * inStride + cb;
      // lo holds rows 0..3, hi rows 4..7 (byte k of the 64-bit block = row k).
      let lo = m[base]! | (m[base + inStride]! << 8) | (m[base + 2 * inStride]! << 16) | (m[base + 3 * inStride]! << 24);
      let hi = m[base + 4 * inStride]! | (m[base + 5 * inStride]! << 8) | (m[base + 6 * inStride]! << 16) | (m[base + 7 * inStride]! << 24);
      // 8×8 transpose of bit (8·row + col) by three delta swaps (flipDiagA1H8), on two u32 halves.
      let t = (lo ^ (lo << 7)) & 0x55005500; lo ^= t ^ (t >>> 7);
      t = (hi ^ (hi << 7)) & 0x55005500; hi ^= t ^ (t >>> 7);
      t = (lo ^ (lo << 14)) & 0x33330000; lo ^= t ^ (t >>> 14);
      t = (hi ^ (hi << 14)) & 0x33330000; hi ^= t ^ (t >>> 14);
      t = (hi ^ (lo >>> 4)) & 0x0f0f0f0f; hi ^= t; lo ^= t << 4;
      const ob = cb * 8 * outStride + rb;
      out[ob] = lo & 0xff; out[ob + outStride] = (lo >>> 8) & 0xff;
      out[ob + 2 * outStride] = (lo >>> 16) & 0xff; out[ob + 3 * outStride] = lo >>> 24;
      out[ob + 4 * outStride] = hi & 0xff; out[ob + 5 * outStride] = (hi >>> 8) & 0xff;
      out[ob + 6 * outStride] = (hi >>> 16) & 0xff; out[ob + 7 * outStride] = hi >>> 24;
    }
  }
  return out;
}

/** Reference transpose, bit by bit; tests compare the fast one against it. */
export function transposeBitsSlow(m: Uint8Array, rows: number, cols: number): Uint8Array {
  const out = new Uint8Array(m.length);
  const inStride = cols >>> 3, outStride = rows >>> 3;
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) {
      const bit = (m[r * inStride + (c >>> 3)]! >>> (c & 7)) & 1;
      out[c * outStride + (r >>> 3)]! |= bit << (r & 7);
    }
  return out;
}

export const getBit = (b: Uint8Array, i: number): number => (b[i >>> 3]! >>> (i & 7)) & 1;

export function xorInto(dst: Uint8Array, src: Uint8Array, dOff = 0, sOff = 0, len = src.length - sOff): void {
  for (let i = 0; i < len; i++) dst[dOff + i]! ^= src[sOff + i]!;
}
