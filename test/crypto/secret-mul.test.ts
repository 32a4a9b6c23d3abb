import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { G, N, Point, randomScalar } from '../../src/crypto/scalar-point.ts';
import { seededRng } from '../../src/crypto/random.ts';
import { mulBaseSecret, mulSecret, recoverPublicKey } from '../../src/crypto/secret-mul.ts';

/** libsecp256k1 against noble: every result must be the same point, byte for byte. */
const rng = seededRng('secret-mul tests');
const hex = (p: InstanceType<typeof Point>) => (p.is0() ? 'identity' : p.toHex(false));
const nobleMul = (P: InstanceType<typeof Point>, k: bigint) => (k === 0n ? Point.ZERO : P.multiplyUnsafe(k));

const EDGE_SCALARS = [0n, 1n, 2n, 3n, 7n, 255n, 2n ** 64n, 2n ** 128n - 1n, 2n ** 128n, (N - 1n) / 2n, (N + 1n) / 2n, N - 3n, N - 2n, N - 1n];
const randomPoints = Array.from({ length: 6 }, () => G.multiplyUnsafe(randomScalar(rng)));
const EDGE_POINTS = [G, G.negate(), G.double(), G.multiplyUnsafe(N - 1n), ...randomPoints];

describe('mulSecret (libsecp256k1 ecmult_const)', () => {
  test('equals noble on edge scalars × edge and random points', () => {
    for (const P of EDGE_POINTS)
      for (const k of EDGE_SCALARS) assert.equal(hex(mulSecret(P, k)), hex(nobleMul(P, k)), `k = ${k}`);
  });
  test('equals noble on 200 random (point, scalar) pairs, including projective inputs', () => {
    for (let i = 0; i < 200; i++) {
      // P + Q is projective (Z ≠ 1): the affine conversion before the call must be right too.
      const P = randomPoints[i % randomPoints.length]!.add(G.multiplyUnsafe(BigInt(i + 1)));
      const k = randomScalar(rng);
      const got = mulSecret(P, k);
      assert.ok(got.equals(P.multiply(k)));
      assert.equal(got.toHex(true), P.multiply(k).toHex(true));
    }
  });
  test('the identity times anything, and anything times 0, is the identity', () => {
    for (const k of [0n, 1n, N - 1n, randomScalar(rng)]) assert.ok(mulSecret(Point.ZERO, k).is0());
    for (const P of EDGE_POINTS) assert.ok(mulSecret(P, 0n).is0());
  });
  test('k·P for k = n − 1 is −P, and (n − 1)·P + P is the identity', () => {
    for (const P of EDGE_POINTS) {
      assert.ok(mulSecret(P, N - 1n).equals(P.negate()));
      assert.ok(mulSecret(P, N - 1n).add(P).is0());
    }
  });
  test('scalars outside [0, n) are a RangeError', () => {
    for (const k of [-1n, N, N + 1n, 2n ** 256n]) assert.throws(() => mulSecret(G, k), RangeError);
  });
  test('the result is a fresh affine point that noble accepts and encodes', () => {
    const k = randomScalar(rng);
    const R = mulSecret(randomPoints[0]!, k);
    R.assertValidity();
    assert.ok(Point.fromBytes(R.toBytes(true)).equals(R));
  });
});

describe('mulBaseSecret (libsecp256k1 ecmult_gen)', () => {
  test('equals noble G.multiply on edge and random scalars', () => {
    for (const k of EDGE_SCALARS) assert.equal(hex(mulBaseSecret(k)), hex(k === 0n ? Point.ZERO : G.multiply(k)), `k = ${k}`);
    for (let i = 0; i < 100; i++) {
      const k = randomScalar(rng);
      assert.equal(mulBaseSecret(k).toHex(true), G.multiply(k).toHex(true));
    }
  });
  test('scalars outside [0, n) are a RangeError', () => {
    for (const k of [-1n, N, 2n ** 256n]) assert.throws(() => mulBaseSecret(k), RangeError);
  });
});

describe('recoverPublicKey (libsecp256k1 ecdsa_recover)', () => {
  test('recovers the signer key exactly as noble does, for 50 random keys and digests', () => {
    for (let i = 0; i < 50; i++) {
      const sk = rng(32);
      const digest = rng(32);
      const sig = secp256k1.Signature.fromBytes(secp256k1.sign(digest, sk, { prehash: false, format: 'recovered' }), 'recovered');
      const got = recoverPublicKey(sig.r, sig.s, sig.recovery!, digest);
      assert.ok(got);
      assert.equal(got.toHex(true), sig.recoverPublicKey(digest).toHex(true));
      assert.equal(got.toHex(true), Point.fromBytes(secp256k1.getPublicKey(sk, true)).toHex(true));
    }
  });
  test('a changed digest, s or recovery id recovers another key (never the signer)', () => {
    const sk = rng(32), digest = rng(32);
    const pk = Point.fromBytes(secp256k1.getPublicKey(sk, true));
    const sig = secp256k1.Signature.fromBytes(secp256k1.sign(digest, sk, { prehash: false, format: 'recovered' }), 'recovered');
    const other = Uint8Array.from(digest);
    other[0]! ^= 1;
    for (const q of [recoverPublicKey(sig.r, sig.s, sig.recovery!, other), recoverPublicKey(sig.r, N - sig.s, sig.recovery!, digest), recoverPublicKey(sig.r, sig.s, 1 - sig.recovery!, digest)])
      assert.ok(q === null || !q.equals(pk));
  });
  test('r or s out of range, a bad recovery id or digest length give null', () => {
    const d = new Uint8Array(32).fill(1);
    assert.equal(recoverPublicKey(0n, 1n, 0, d), null);
    assert.equal(recoverPublicKey(1n, 0n, 0, d), null);
    assert.equal(recoverPublicKey(N, 1n, 0, d), null);
    assert.equal(recoverPublicKey(1n, N, 0, d), null);
    assert.equal(recoverPublicKey(1n, 1n, 2, d), null);
    assert.equal(recoverPublicKey(1n, 1n, 0, new Uint8Array(31)), null);
  });
  test('an r that is no x-coordinate on the curve gives null', () => {
    // x = 5: 5³ + 7 = 132 is not a square mod p, so no point has x = 5.
    assert.equal(recoverPublicKey(5n, 1n, 0, new Uint8Array(32).fill(1)), null);
  });
});
