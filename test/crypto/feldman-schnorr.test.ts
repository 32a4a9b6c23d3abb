import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { evalInExponent, evalPolynomial, feldmanCommit, feldmanVerify, interpolateInExponent, lagrangeAt, lagrangeAtZero, randomPolynomial } from '../../src/crypto/feldman.ts';
import { schnorrProve, schnorrVerify, encodeSchnorr, decodeSchnorr, SCHNORR_PROOF_BYTES } from '../../src/crypto/schnorr.ts';
import { Fn, G, N, Point, randomScalar } from '../../src/crypto/scalar-point.ts';
import { seededRng } from '../../src/crypto/random.ts';

/** t, n with 2 ≤ t ≤ n ≤ 16, and a random t-subset of 1..n (ascending). */
const setup = fc
  .integer({ min: 2, max: 16 })
  .chain((n) => fc.integer({ min: 2, max: n }).chain((t) => fc.tuple(fc.constant(t), fc.constant(n), fc.shuffledSubarray(Array.from({ length: n }, (_, k) => k + 1), { minLength: t, maxLength: t }), fc.string())));

describe('Shamir / Feldman', () => {
  test('evalPolynomial: Horner matches the naive sum mod n', () => {
    const rng = seededRng('poly');
    const coeffs = randomPolynomial(5n, 4, rng);
    assert.equal(coeffs.length, 5);
    assert.equal(coeffs[0], 5n);
    for (const x of [0n, 1n, 2n, 17n, N - 1n]) {
      let want = 0n;
      coeffs.forEach((a, k) => (want = (want + a * x ** BigInt(k)) % N));
      assert.equal(evalPolynomial(coeffs, x), want);
    }
  });

  test('property: any t points reconstruct the secret (scalars) and coeffs[0]·G (in the exponent)', () => {
    fc.assert(
      fc.property(setup, ([t, n, subset, seed]) => {
        const rng = seededRng(`feldman/${seed}`);
        const secret = randomScalar(rng);
        const coeffs = randomPolynomial(secret, t - 1, rng);
        const F = feldmanCommit(coeffs);
        assert.equal(F.length, t);
        const xs = [...subset].sort((a, b) => a - b).map(BigInt);
        const ys = xs.map((x) => evalPolynomial(coeffs, x));
        // Scalars: Σ λ_i · f(x_i) = f(0)
        let sum = 0n;
        xs.forEach((x, k) => (sum = Fn.add(sum, Fn.mul(lagrangeAtZero(xs, x), ys[k]!))));
        assert.equal(sum, secret);
        // Exponent: the public points f(x)·G come from Horner in the exponent
        const pts = xs.map((x) => evalInExponent(F, x));
        pts.forEach((P, k) => assert.ok(P.equals(G.multiply(ys[k]!))));
        assert.ok(interpolateInExponent(xs, pts).equals(G.multiply(secret)));
        // …and interpolation at another point x_j ∉ subset gives the share of x_j
        const other = BigInt(n + 1);
        assert.ok(interpolateInExponent(xs, pts, other).equals(G.multiply(evalPolynomial(coeffs, other))));
        // Feldman verification: right shares pass, share + 1 fails, any share at a wrong x fails.
        xs.forEach((x, k) => {
          assert.equal(feldmanVerify(F, x, ys[k]!), true);
          assert.equal(feldmanVerify(F, x, Fn.add(ys[k]!, 1n)), false);
          assert.equal(feldmanVerify(F, x + 1n, ys[k]!), false);
        });
        assert.equal(feldmanVerify([], xs[0]!, ys[0]!), false);
        assert.equal(feldmanVerify([], 1n, 0n), false);
        // Fewer than t points do not reconstruct (with overwhelming probability)
        if (t > 2) assert.ok(!interpolateInExponent(xs.slice(1), pts.slice(1)).equals(G.multiply(secret)));
      }),
      { numRuns: 40 },
    );
  });

  test('feldmanVerify with a zero share and identity commitments', () => {
    assert.equal(feldmanVerify([Point.ZERO, Point.ZERO], 3n, 0n), true);
    assert.equal(feldmanVerify([Point.ZERO, Point.ZERO], 3n, 1n), false);
    // coefficient 0 in feldmanCommit maps to the identity
    assert.ok(feldmanCommit([0n, 1n])[0]!.is0());
  });

  test('lagrangeAt: basis polynomials are 1 at their own point and 0 elsewhere; duplicates throw RangeError', () => {
    const xs = [1n, 4n, 9n];
    for (const xi of xs) for (const at of xs) assert.equal(lagrangeAt(xs, xi, at), xi === at ? 1n : 0n);
    // λ_i at 0 sum to 1 (constant polynomial)
    assert.equal(xs.reduce((s, x) => Fn.add(s, lagrangeAtZero(xs, x)), 0n), 1n);
    assert.equal(lagrangeAtZero([1n, 2n], 1n), 2n);
    assert.equal(lagrangeAtZero([1n, 2n], 2n), N - 1n);
    // Points that coincide mod n (x and x + n) make a zero denominator: RangeError.
    assert.throws(() => lagrangeAt([1n, 1n + N], 1n, 0n), RangeError);
    assert.throws(() => lagrangeAtZero([3n, 5n, 5n + N], 5n + N), RangeError);
  });

  test('lagrangeAt rejects literally repeated evaluation points', () => {
    assert.throws(() => lagrangeAt([1n, 2n, 2n], 2n, 0n), RangeError);
    assert.throws(() => lagrangeAtZero([1n, 2n, 2n], 1n), RangeError);
  });
});

describe('Schnorr proofs of knowledge', () => {
  test('property: proofs verify; a different binding, statement, A or z fails', () => {
    fc.assert(
      fc.property(fc.string(), fc.uint8Array({ minLength: 1, maxLength: 32 }), fc.nat({ max: 1000 }), (seed, sid, idx) => {
        const rng = seededRng(`schnorr/${seed}`);
        const x = randomScalar(rng);
        const X = G.multiply(x);
        const binding = [sid, idx, 0];
        const proof = schnorrProve('dkg/pok', binding, x, X, rng);
        assert.equal(schnorrVerify('dkg/pok', binding, X, proof), true);
        assert.equal(schnorrVerify('dkg/pok', [sid, idx + 1, 0], X, proof), false);
        assert.equal(schnorrVerify('dkg/pok', [sid, idx, 1], X, proof), false);
        assert.equal(schnorrVerify('dkg/pok', [sid, idx], X, proof), false);
        assert.equal(schnorrVerify('dkg/other', binding, X, proof), false);
        assert.equal(schnorrVerify('dkg/pok', binding, X.add(G), proof), false);
        assert.equal(schnorrVerify('dkg/pok', binding, X, { A: proof.A, z: Fn.add(proof.z, 1n) }), false);
        assert.equal(schnorrVerify('dkg/pok', binding, X, { A: proof.A.add(G), z: proof.z }), false);
        assert.equal(schnorrVerify('dkg/pok', binding, X, { A: proof.A, z: 0n }), false);
        // codec round trip
        const enc = encodeSchnorr(proof);
        assert.equal(enc.length, SCHNORR_PROOF_BYTES);
        const back = decodeSchnorr(enc, 'p');
        assert.ok(back.A.equals(proof.A));
        assert.equal(back.z, proof.z);
        assert.equal(schnorrVerify('dkg/pok', binding, X, back), true);
      }),
      { numRuns: 60 },
    );
  });

  test('a proof for X does not verify for a different statement proven with the same binding', () => {
    const rng = seededRng('schnorr-swap');
    const x1 = randomScalar(rng), x2 = randomScalar(rng);
    const p1 = schnorrProve('p', [1], x1, G.multiply(x1), rng);
    assert.equal(schnorrVerify('p', [1], G.multiply(x2), p1), false);
  });
});
