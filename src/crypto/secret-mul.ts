import { createRequire } from 'node:module';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { systemRng } from './random.ts';

/**
 * Curve multiplications through libsecp256k1 (the `secp256k1` package's native addon, N-API,
 * prebuilt for linux-x64 in the package). Results come back as noble points, so callers keep
 * noble for everything else. Why this and not noble or tiny-secp256k1: docs/decisions.md §35.
 *
 *   mulSecret(P, k)       k·P, k secret:   secp256k1_ecdh → secp256k1_ecmult_const (constant time)
 *   mulBaseSecret(k)      k·G, k secret:   secp256k1_ec_pubkey_create → ecmult_gen (constant time, blinded)
 *   recoverPublicKey(…)   public inputs:   secp256k1_ecdsa_recover (variable time, fine for public data)
 */
type Point = InstanceType<typeof secp256k1.Point>;
const Point = secp256k1.Point;
const N = Point.Fn.ORDER;

interface Libsecp256k1 {
  contextRandomize(seed: Uint8Array): void;
  publicKeyCreate(seckey: Uint8Array, compressed: boolean, output: Uint8Array): Uint8Array;
  ecdh(pubkey: Uint8Array, seckey: Uint8Array, opts: { hashfn: (x: Uint8Array, y: Uint8Array) => Uint8Array; xbuf: Uint8Array; ybuf: Uint8Array }, output: Uint8Array): Uint8Array;
  ecdsaRecover(sig: Uint8Array, recid: number, msg32: Uint8Array, compressed: boolean, output: Uint8Array): Uint8Array;
}

// `secp256k1/bindings.js` loads the native addon and throws if it cannot. The package's main entry
// would silently fall back to elliptic (pure JS, not constant time), which must never happen here.
const lib = createRequire(import.meta.url)('secp256k1/bindings.js') as Libsecp256k1;
// Re-blinds ecmult_gen's precomputed table (side-channel hardening only; no effect on results).
lib.contextRandomize(systemRng(32));

// Scratch buffers: every call is synchronous and single-threaded (each worker thread loads its own
// copy of this module). Secret bytes are wiped after each call.
const kBuf = new Uint8Array(32);
const pBuf = new Uint8Array(65);
const xBuf = new Uint8Array(32), yBuf = new Uint8Array(32);
const out65 = new Uint8Array(65);
const EMPTY = new Uint8Array(0);
const keepXY = () => EMPTY; // ECDH "hash": keep x and y (copied into xBuf, yBuf), output nothing

function write32(x: bigint, out: Uint8Array, off: number): void {
  const dv = new DataView(out.buffer, out.byteOffset + off, 32);
  dv.setBigUint64(0, x >> 192n);
  dv.setBigUint64(8, (x >> 128n) & 0xffffffffffffffffn);
  dv.setBigUint64(16, (x >> 64n) & 0xffffffffffffffffn);
  dv.setBigUint64(24, x & 0xffffffffffffffffn);
}
function read32(b: Uint8Array, off: number): bigint {
  const dv = new DataView(b.buffer, b.byteOffset + off, 32);
  return (dv.getBigUint64(0) << 192n) | (dv.getBigUint64(8) << 128n) | (dv.getBigUint64(16) << 64n) | dv.getBigUint64(24);
}
function pointFromXY(xb: Uint8Array, xo: number, yb: Uint8Array, yo: number): Point {
  const P = Point.fromAffine({ x: read32(xb, xo), y: read32(yb, yo) });
  P.assertValidity(); // a few field multiplications: cheap insurance on the boundary
  return P;
}
function checkScalar(k: bigint): void {
  if (typeof k !== 'bigint' || k < 0n || k >= N) throw new RangeError('scalar must be in [0, n)');
}

/**
 * k·P in constant time in k (libsecp256k1 `secp256k1_ecmult_const` through `secp256k1_ecdh`).
 * P is public and may be the identity; k is secret, 0 ≤ k < n. Returns the identity for k = 0 or
 * P = O (libsecp256k1 takes neither). Those two tests are the only branches here: k = 0 never
 * happens for a uniformly random secret, and noble's `multiply` (which this replaces) throws on it.
 */
export function mulSecret(P: Point, k: bigint): Point {
  checkScalar(k);
  if (P.is0() || k === 0n) return Point.ZERO;
  const { x, y } = P.toAffine();
  pBuf[0] = 0x04;
  write32(x, pBuf, 1);
  write32(y, pBuf, 33);
  write32(k, kBuf, 0);
  try {
    lib.ecdh(pBuf, kBuf, { hashfn: keepXY, xbuf: xBuf, ybuf: yBuf }, EMPTY);
    return pointFromXY(xBuf, 0, yBuf, 0);
  } finally {
    kBuf.fill(0);
    xBuf.fill(0);
    yBuf.fill(0);
  }
}

/** k·G in constant time in k (libsecp256k1 `ecmult_gen`, blinded); 0·G is the identity. */
export function mulBaseSecret(k: bigint): Point {
  checkScalar(k);
  if (k === 0n) return Point.ZERO;
  write32(k, kBuf, 0);
  try {
    lib.publicKeyCreate(kBuf, false, out65);
    return pointFromXY(out65, 1, out65, 33);
  } finally {
    kBuf.fill(0);
    out65.fill(0);
  }
}

/**
 * ECDSA public-key recovery (libsecp256k1 `secp256k1_ecdsa_recover`; public inputs, variable time).
 * Returns null when the signature is invalid (r or s out of range, no point with that x).
 * Recovering the expected key is a full verification: Q = r⁻¹(s·R − z·G) = PK means
 * s·R = z·G + r·PK, i.e. R = s⁻¹z·G + s⁻¹r·PK, whose x is r.
 */
export function recoverPublicKey(r: bigint, s: bigint, recovery: number, digest: Uint8Array): Point | null {
  if (r <= 0n || r >= N || s <= 0n || s >= N || (recovery !== 0 && recovery !== 1) || digest.length !== 32) return null;
  const sig = new Uint8Array(64);
  write32(r, sig, 0);
  write32(s, sig, 32);
  const out = new Uint8Array(65);
  try {
    lib.ecdsaRecover(sig, recovery, digest, false, out);
  } catch {
    return null;
  }
  return pointFromXY(out, 1, out, 33);
}
