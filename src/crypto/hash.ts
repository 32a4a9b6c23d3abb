import { createHash, type Hash } from 'node:crypto';
import { secp256k1_hasher } from '@noble/curves/secp256k1.js';
import { Fn, bytesToBigInt, type Point } from './scalar-point.ts';

/**
 * Domain-separated tuple hashing (spec §2.0): every random-oracle call is
 * H(label, field_1, …, field_k) with label = "TECDSA-DKLS23/v1/" + purpose and the
 * unambiguous encoding u32be(len) ‖ bytes for the label and for every field.
 * Numbers are encoded as 4-byte big-endian fields.
 *
 * So a number and a 4-byte field encode alike: H(l, 5) = H(l, 00 00 00 05). That is safe because
 * the encoding is injective on sequences of byte strings (each is length-prefixed), a number is
 * only another way to write its 4-byte string, and every call site fixes, per label, what each
 * position means: a position never holds an index in one call and 4 bytes of something else in
 * another, and variable-length lists (parties, signer sets) are preceded by their count. Two
 * inputs that collide therefore name the same values.
 */
export const LABEL_PREFIX = 'TECDSA-DKLS23/v1/';

export type HashField = Uint8Array | number;

const enc = new TextEncoder();
const labelCache = new Map<string, Uint8Array>();
function labelBytes(purpose: string): Uint8Array {
  let b = labelCache.get(purpose);
  if (!b) {
    b = enc.encode(LABEL_PREFIX + purpose);
    labelCache.set(purpose, b);
  }
  return b;
}

/** The exact byte string that is hashed for (label, fields). */
export function encodeTuple(purpose: string, fields: readonly HashField[]): Uint8Array {
  const label = labelBytes(purpose);
  let len = 4 + label.length;
  for (const f of fields) len += 4 + (typeof f === 'number' ? 4 : f.length);
  const out = new Uint8Array(len);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, label.length);
  out.set(label, 4);
  let o = 4 + label.length;
  for (const f of fields) {
    if (typeof f === 'number') {
      if (!Number.isInteger(f) || f < 0 || f > 0xffffffff) throw new RangeError(`hash field ${f} is not a u32`);
      dv.setUint32(o, 4);
      dv.setUint32(o + 4, f);
      o += 8;
    } else {
      dv.setUint32(o, f.length);
      out.set(f, o + 4);
      o += 4 + f.length;
    }
  }
  return out;
}

/**
 * SHA-256 and SHA-512 run on OpenSSL through node:crypto (pure computation, no I/O): on this VM
 * it is faster than noble from 32-byte inputs up, and 10–20× faster on the 5–49 KB OT messages
 * (docs/performance.md). The digest is copied into a plain Uint8Array, as noble returned.
 */
const digest = (alg: 'sha256' | 'sha512', data: Uint8Array): Uint8Array => new Uint8Array(createHash(alg).update(data).digest());

/** Incremental SHA-256: absorb a long common prefix once, then fork it per message with `copy()`. */
export const sha256Incremental = (): Hash => createHash('sha256');

/** 32-byte SHA-256 random oracle. */
export const hash32 = (purpose: string, ...fields: HashField[]): Uint8Array => digest('sha256', encodeTuple(purpose, fields));
/** 64-byte SHA-512 random oracle. */
export const hash64 = (purpose: string, ...fields: HashField[]): Uint8Array => digest('sha512', encodeTuple(purpose, fields));

/** Hash to Z_n: 64 bytes (≥ 48, spec §2.0) reduced mod n, so the bias is negligible. */
export const hashToScalar = (purpose: string, ...fields: HashField[]): bigint =>
  Fn.create(bytesToBigInt(digest('sha512', encodeTuple(purpose, fields))));

/** Reduce a 48-or-more byte string (length a multiple of 8) to a scalar (wide reduction). */
export const wideToScalar = (b: Uint8Array): bigint => Fn.create(bytesToBigInt(b));

/**
 * RFC 9380 hash_to_curve (secp256k1_XMD:SHA-256_SSWU_RO_) with DST = label. Its output has
 * unknown discrete log, which the endemic base OT requires (spec §2.3, §4.1.4).
 */
export const hashToCurve = (purpose: string, ...fields: HashField[]): Point =>
  secp256k1_hasher.hashToCurve(encodeTuple(purpose, fields), { DST: LABEL_PREFIX + purpose }) as Point;
