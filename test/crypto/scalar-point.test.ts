import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DecodeError } from '../../src/crypto/errors.ts';
import {
  G, N, Point, chunks, concatPoints, concatScalars, decodePoints, decodeScalars, exactBytes, pointFromBytes, pointOrIdentityFromBytes,
  pointOrIdentityToBytes, pointToBytes, randomScalar, scalarFromBytes, scalarToBytes, bytesToBigInt,
} from '../../src/crypto/scalar-point.ts';
import { seededRng } from '../../src/crypto/random.ts';

const P = 2n ** 256n - 2n ** 32n - 977n;
const be32 = (x: bigint) => Uint8Array.from(Buffer.from(x.toString(16).padStart(64, '0'), 'hex'));
const modpow = (b: bigint, e: bigint, m: bigint) => {
  let r = 1n;
  b %= m;
  for (; e > 0n; e >>= 1n, b = (b * b) % m) if (e & 1n) r = (r * b) % m;
  return r;
};
/** true iff x < p and x³ + 7 is a square mod p (Euler's criterion), i.e. x is an x-coordinate on secp256k1 */
const onCurveX = (x: bigint) => x < P && modpow((x ** 3n + 7n) % P, (P - 1n) / 2n, P) !== P - 1n;
const withPrefix = (prefix: number, x: bigint) => Uint8Array.of(prefix, ...be32(x));

describe('scalarFromBytes', () => {
  test('accepts 0, 1 and n − 1; returns the big-endian value', () => {
    assert.equal(scalarFromBytes(new Uint8Array(32), 's'), 0n);
    assert.equal(scalarFromBytes(be32(1n), 's'), 1n);
    assert.equal(scalarFromBytes(be32(N - 1n), 's'), N - 1n);
    assert.equal(scalarFromBytes(be32(N - 1n), 's', { nonZero: true }), N - 1n);
  });
  test('rejects n, n + 1, 2^256 − 1 with DecodeError (never reduces)', () => {
    for (const x of [N, N + 1n, 2n ** 256n - 1n]) assert.throws(() => scalarFromBytes(be32(x), 's'), DecodeError);
  });
  test('rejects 0, 31, 33 and 64 bytes with DecodeError; nonZero rejects 0', () => {
    for (const len of [0, 31, 33, 64]) assert.throws(() => scalarFromBytes(new Uint8Array(len), 's'), DecodeError);
    assert.throws(() => scalarFromBytes(new Uint8Array(32), 's', { nonZero: true }), DecodeError);
  });
  test('the DecodeError names what was decoded', () => {
    try {
      scalarFromBytes(be32(N), 'flight3.psi');
      assert.fail('no throw');
    } catch (e) {
      assert.ok(e instanceof DecodeError);
      assert.equal(e.what, 'flight3.psi');
      assert.equal(e.name, 'DecodeError');
      assert.match(e.message, /^flight3\.psi: /);
    }
  });
  test('property: round trip below n; bytesToBigInt on subarray views', () => {
    fc.assert(fc.property(fc.bigInt({ min: 0n, max: N - 1n }), (x) => {
      assert.equal(scalarFromBytes(scalarToBytes(x), 's'), x);
      const buf = new Uint8Array(40);
      buf.set(scalarToBytes(x), 5);
      assert.equal(scalarFromBytes(buf.subarray(5, 37), 's'), x);
    }), { numRuns: 300 });
    fc.assert(fc.property(fc.bigInt({ min: N, max: 2n ** 256n - 1n }), (x) => {
      assert.throws(() => scalarFromBytes(scalarToBytes(x), 's'), DecodeError);
    }), { numRuns: 200 });
    assert.equal(bytesToBigInt(new Uint8Array(0)), 0n);
  });
});

describe('pointFromBytes', () => {
  const gBytes = pointToBytes(G);
  test('accepts G and random points, round trip', () => {
    assert.equal(Buffer.from(gBytes).toString('hex'), '0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798');
    assert.ok(pointFromBytes(gBytes, 'p').equals(G));
    const rng = seededRng('points');
    for (let i = 0; i < 20; i++) {
      const Q = G.multiply(randomScalar(rng));
      assert.ok(pointFromBytes(pointToBytes(Q), 'p').equals(Q));
      assert.ok(pointFromBytes(pointToBytes(Q.negate()), 'p').equals(Q.negate()));
    }
  });
  test('rejects the identity (33 zero bytes) with DecodeError', () => {
    assert.throws(() => pointFromBytes(new Uint8Array(33), 'p'), DecodeError);
  });
  test('rejects off-curve x, x ≥ p, with either prefix', () => {
    let x = 1n;
    while (onCurveX(x)) x++;
    assert.ok(!onCurveX(x));
    for (const pre of [2, 3]) {
      assert.throws(() => pointFromBytes(withPrefix(pre, x), 'p'), DecodeError);
      assert.throws(() => pointFromBytes(withPrefix(pre, P), 'p'), DecodeError); // x = p is non-canonical
      assert.throws(() => pointFromBytes(withPrefix(pre, 2n ** 256n - 1n), 'p'), DecodeError);
    }
    // P + 1 ≡ 1 mod p: 1 is on the curve (1 + 7 = 8 is a square mod p iff …) — only reject if not canonical
    assert.throws(() => pointFromBytes(withPrefix(2, P + 1n), 'p'), DecodeError);
  });
  test('rejects prefixes other than 02/03 and wrong lengths', () => {
    const body = gBytes.subarray(1);
    for (const pre of [0x00, 0x01, 0x04, 0x05, 0x06, 0x07, 0xff]) assert.throws(() => pointFromBytes(Uint8Array.of(pre, ...body), 'p'), DecodeError);
    for (const len of [0, 1, 32, 34, 64, 65]) assert.throws(() => pointFromBytes(new Uint8Array(len).fill(2), 'p'), DecodeError);
    // the uncompressed encoding of G (65 bytes) is rejected too
    assert.throws(() => pointFromBytes(G.toBytes(false), 'p'), DecodeError);
    assert.throws(() => pointFromBytes(gBytes.subarray(0, 32), 'p'), DecodeError);
    assert.throws(() => pointFromBytes(Uint8Array.of(...gBytes, 0), 'p'), DecodeError);
  });
  test('property: random 33-byte strings decode iff prefix ∈ {2,3} and x is on the curve; failures are DecodeError', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 33, maxLength: 33 }), fc.boolean(), (b, fixPrefix) => {
      if (fixPrefix) b[0] = 2 + (b[0]! & 1);
      const x = bytesToBigInt(b.subarray(1, 33));
      const valid = (b[0] === 2 || b[0] === 3) && onCurveX(x);
      try {
        const Q = pointFromBytes(b, 'p');
        assert.ok(valid);
        assert.equal(Q.toAffine().x, x);
        assert.equal(Number(Q.toAffine().y & 1n), b[0]! - 2);
      } catch (e) {
        assert.ok(e instanceof DecodeError, String(e));
        assert.ok(!valid);
      }
    }), { numRuns: 500 });
  });
});

describe('pointOrIdentityFromBytes', () => {
  test('33 zero bytes are the identity; round trip through pointOrIdentityToBytes', () => {
    assert.ok(pointOrIdentityFromBytes(new Uint8Array(33), 'p').is0());
    assert.deepEqual([...pointOrIdentityToBytes(Point.ZERO)], new Array(33).fill(0));
    assert.ok(pointOrIdentityFromBytes(pointOrIdentityToBytes(G), 'p').equals(G));
  });
  test('other all-zero lengths and near-zero encodings are rejected with DecodeError', () => {
    for (const len of [0, 32, 34]) assert.throws(() => pointOrIdentityFromBytes(new Uint8Array(len), 'p'), DecodeError);
    for (const pre of [2, 3]) assert.throws(() => pointOrIdentityFromBytes(withPrefix(pre, 0n), 'p'), DecodeError); // x = 0: 7 is not a square mod p
    const oneAtEnd = new Uint8Array(33);
    oneAtEnd[32] = 1;
    assert.throws(() => pointOrIdentityFromBytes(oneAtEnd, 'p'), DecodeError);
  });
  test('the identity returned is a fresh usable point (does not alias a mutable buffer)', () => {
    const a = pointOrIdentityToBytes(Point.ZERO);
    a[0] = 2;
    assert.deepEqual([...pointOrIdentityToBytes(Point.ZERO)], new Array(33).fill(0));
  });
});

describe('vector helpers', () => {
  test('chunks / exactBytes / decodePoints / decodeScalars check exact lengths with DecodeError', () => {
    assert.equal(chunks(new Uint8Array(6), 2, 3, 'c').length, 3);
    assert.throws(() => chunks(new Uint8Array(7), 2, 3, 'c'), DecodeError);
    assert.throws(() => chunks(new Uint8Array(4), 2, 3, 'c'), DecodeError);
    assert.equal(exactBytes(new Uint8Array(3), 3, 'e').length, 3);
    assert.throws(() => exactBytes(new Uint8Array(3), 4, 'e'), DecodeError);
    const pts = [G, G.double(), G.negate()];
    assert.ok(decodePoints(concatPoints(pts), 3, 'v').every((Q, i) => Q.equals(pts[i]!)));
    assert.throws(() => decodePoints(concatPoints(pts), 2, 'v'), DecodeError);
    const bad = concatPoints(pts);
    bad.fill(0, 33, 66); // identity in the middle
    assert.throws(() => decodePoints(bad, 3, 'v'), DecodeError);
    assert.deepEqual(decodeScalars(concatScalars([0n, 1n, N - 1n]), 3, 's'), [0n, 1n, N - 1n]);
    const badS = concatScalars([1n, 2n]);
    badS.fill(0xff, 32);
    assert.throws(() => decodeScalars(badS, 2, 's'), DecodeError);
  });
});
