import { secp256k1 } from '@noble/curves/secp256k1.js';
import { DecodeError } from './errors.ts';
import { mulBaseSecret } from './secret-mul.ts';
import type { Rng } from './random.ts';

/** Strict codecs for secp256k1 scalars and points (spec §2.0, §4.3 check 1). */
export const Point = secp256k1.Point;
export type Point = InstanceType<typeof secp256k1.Point>;
/** The scalar field Z_n. */
export const Fn = Point.Fn;
export const N = Fn.ORDER;
export const G = Point.BASE;
export const SCALAR_BYTES = 32;
export const POINT_BYTES = 33;

const M64 = 0xffffffffffffffffn;

/** Big-endian bytes (length a multiple of 8) to an integer, 8 bytes at a time (hot path of OT). */
export function bytesToBigInt(b: Uint8Array): bigint {
  const dv = new DataView(b.buffer, b.byteOffset, b.length);
  let x = 0n;
  for (let o = 0; o < b.length; o += 8) x = (x << 64n) | dv.getBigUint64(o);
  return x;
}

/** Write 0 ≤ x < 2^256 as 32 big-endian bytes at out[off..off+32]. */
export function writeScalar(x: bigint, out: Uint8Array, off = 0): void {
  const dv = new DataView(out.buffer, out.byteOffset + off, 32);
  dv.setBigUint64(0, x >> 192n);
  dv.setBigUint64(8, (x >> 128n) & M64);
  dv.setBigUint64(16, (x >> 64n) & M64);
  dv.setBigUint64(24, x & M64);
}

export const scalarToBytes = (x: bigint): Uint8Array => {
  const out = new Uint8Array(32);
  writeScalar(x, out);
  return out;
};

/** 32 bytes big-endian, must be < n: reject, never reduce. */
export function scalarFromBytes(b: Uint8Array, what: string, opts: { nonZero?: boolean } = {}): bigint {
  if (b.length !== 32) throw new DecodeError(what, `scalar must be 32 bytes, got ${b.length}`);
  const x = bytesToBigInt(b);
  if (x >= N) throw new DecodeError(what, 'scalar is not below the group order');
  if (opts.nonZero && x === 0n) throw new DecodeError(what, 'scalar must be non-zero');
  return x;
}

export const pointToBytes = (p: Point): Uint8Array => p.toBytes(true);

/** x·G in constant time (libsecp256k1's ecmult_gen, crypto/secret-mul.ts); 0·G is the identity. */
export const mulG = (x: bigint): Point => mulBaseSecret(x);

const IDENTITY_BYTES = new Uint8Array(33);

/** 33-byte SEC1 compressed, on the curve, never the identity. */
export function pointFromBytes(b: Uint8Array, what: string): Point {
  if (b.length !== 33) throw new DecodeError(what, `point must be 33 bytes, got ${b.length}`);
  try {
    return Point.fromBytes(b);
  } catch {
    throw new DecodeError(what, 'not a valid compressed secp256k1 point');
  }
}

/**
 * Encoding that admits the identity as 33 zero bytes. Used in exactly one place: the zero
 * constant term of a refresh polynomial (spec §2.11). Everything else uses pointFromBytes.
 */
export const pointOrIdentityToBytes = (p: Point): Uint8Array => (p.is0() ? IDENTITY_BYTES.slice() : p.toBytes(true));
export function pointOrIdentityFromBytes(b: Uint8Array, what: string): Point {
  if (b.length === 33 && b.every((v) => v === 0)) return Point.ZERO;
  return pointFromBytes(b, what);
}

/** Uniform non-zero scalar: 48 bytes of randomness reduced mod n (bias < 2^-128). */
export function randomScalar(rng: Rng): bigint {
  for (;;) {
    const x = Fn.create(bytesToBigInt(rng(48)));
    if (x !== 0n) return x;
  }
}

/** Split a byte string into fixed-size chunks after an exact-length check. */
export function chunks(b: Uint8Array, size: number, count: number, what: string): Uint8Array[] {
  if (b.length !== size * count) throw new DecodeError(what, `expected ${count} × ${size} = ${size * count} bytes, got ${b.length}`);
  const out: Uint8Array[] = new Array(count);
  for (let i = 0; i < count; i++) out[i] = b.subarray(i * size, (i + 1) * size);
  return out;
}

export function exactBytes(b: Uint8Array, size: number, what: string): Uint8Array {
  if (b.length !== size) throw new DecodeError(what, `expected ${size} bytes, got ${b.length}`);
  return b;
}

export const concatPoints = (ps: Point[]): Uint8Array => {
  const out = new Uint8Array(ps.length * 33);
  ps.forEach((p, i) => out.set(p.toBytes(true), i * 33));
  return out;
};
export const concatScalars = (xs: bigint[]): Uint8Array => {
  const out = new Uint8Array(xs.length * 32);
  for (let i = 0; i < xs.length; i++) writeScalar(xs[i]!, out, i * 32);
  return out;
};
export const decodePoints = (b: Uint8Array, count: number, what: string): Point[] =>
  chunks(b, 33, count, what).map((c, i) => pointFromBytes(c, `${what}[${i}]`));
export const decodeScalars = (b: Uint8Array, count: number, what: string): bigint[] =>
  chunks(b, 32, count, what).map((c, i) => scalarFromBytes(c, `${what}[${i}]`));
