import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { gfEquals, gfFromBytes, gfMul, gfMulAcc, gfToBytes, gfXor, gfZero } from '../../src/crypto/gf128.ts';

// Independent reference: element ↔ integer whose bit i is bit (i mod 8) of byte ⌊i/8⌋ (little-endian bytes).
const MOD = (1n << 128n) | 0x87n; // x^128 + x^7 + x^2 + x + 1
const toBig = (b: Uint8Array): bigint => {
  let x = 0n;
  for (let i = 15; i >= 0; i--) x = (x << 8n) | BigInt(b[i]!);
  return x;
};
const fromBig = (x: bigint): Uint8Array => {
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) out[i] = Number((x >> BigInt(8 * i)) & 0xffn);
  return out;
};
function slowMul(a: bigint, b: bigint): bigint {
  let p = 0n;
  for (let i = 0n; i < 128n; i++) if ((b >> i) & 1n) p ^= a << i; // carry-less product, degree ≤ 254
  for (let d = 254n; d >= 128n; d--) if ((p >> d) & 1n) p ^= MOD << (d - 128n);
  return p;
}
const mul = (a: Uint8Array, b: Uint8Array) => gfToBytes(gfMul(gfFromBytes(a), gfFromBytes(b)));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const elem = fc.uint8Array({ minLength: 16, maxLength: 16 });
const X = (k: number) => fromBig(1n << BigInt(k));

describe('GF(2^128) multiplication', () => {
  test('reference sanity: x^127 · x = x^7 + x^2 + x + 1', () => {
    assert.equal(slowMul(1n << 127n, 2n), 0x87n);
  });

  test('fixed edge cases', () => {
    const zero = new Uint8Array(16), one = X(0), x = X(1);
    const r = fc.sample(elem, { numRuns: 5, seed: 42 });
    for (const a of [...r, zero, one, x, X(127), new Uint8Array(16).fill(0xff)]) {
      assert.equal(hex(mul(a, zero)), hex(zero));
      assert.equal(hex(mul(zero, a)), hex(zero));
      assert.equal(hex(mul(a, one)), hex(a));
      assert.equal(hex(mul(one, a)), hex(a));
    }
    assert.equal(hex(mul(X(127), x)), '87' + '00'.repeat(15));
    assert.equal(hex(mul(x, X(127))), '87' + '00'.repeat(15));
    assert.equal(hex(mul(X(64), X(63))), hex(X(127)));
    assert.equal(hex(mul(X(64), X(64))), '87' + '00'.repeat(15));
    // x^254 = x^133 + x^128 + x^127 + x^126 = x^127 + x^126 + x^12 + x^6 + x^5 + x^2 + x + 1 (x^7 cancels)
    assert.equal(toBig(mul(X(127), X(127))), slowMul(1n << 127n, 1n << 127n));
    assert.equal(toBig(mul(X(127), X(127))), (1n << 127n) ^ (1n << 126n) ^ (0x87n << 5n) ^ 0x87n);
    // all-ones squared, matching the reference
    const ff = new Uint8Array(16).fill(0xff);
    assert.equal(toBig(mul(ff, ff)), slowMul(toBig(ff), toBig(ff)));
  });

  test('gfMul equals the BigInt reference on 1000 random pairs', () => {
    fc.assert(fc.property(elem, elem, (a, b) => {
      assert.equal(toBig(mul(a, b)), slowMul(toBig(a), toBig(b)));
    }), { numRuns: 1000 });
  });

  test('gfMul equals the reference on sparse operands (single bits and word boundaries)', () => {
    const sparse = fc.array(fc.integer({ min: 0, max: 127 }), { maxLength: 3 }).map((bits) => fromBig(bits.reduce((acc, k) => acc | (1n << BigInt(k)), 0n)));
    fc.assert(fc.property(sparse, sparse, (a, b) => {
      assert.equal(toBig(mul(a, b)), slowMul(toBig(a), toBig(b)));
    }), { numRuns: 500 });
  });

  test('commutative and distributive over xor; gfMulAcc accumulates', () => {
    fc.assert(fc.property(elem, elem, elem, elem, (a, b, c, acc) => {
      const A = gfFromBytes(a), B = gfFromBytes(b), C = gfFromBytes(c);
      assert.ok(gfEquals(gfMul(A, B), gfMul(B, A)));
      assert.ok(gfEquals(gfMul(A, gfXor(B, C)), gfXor(gfMul(A, B), gfMul(A, C))));
      const r = gfFromBytes(acc);
      gfMulAcc(r, A, B);
      assert.ok(gfEquals(r, gfXor(gfFromBytes(acc), gfMul(A, B))));
      // inputs untouched
      assert.equal(hex(gfToBytes(A)), hex(a));
      assert.equal(hex(gfToBytes(B)), hex(b));
    }), { numRuns: 500 });
  });

  test('associative', () => {
    fc.assert(fc.property(elem, elem, elem, (a, b, c) => {
      const A = gfFromBytes(a), B = gfFromBytes(b), C = gfFromBytes(c);
      assert.ok(gfEquals(gfMul(gfMul(A, B), C), gfMul(A, gfMul(B, C))));
    }), { numRuns: 200 });
  });

  test('Frobenius: a^(2^128) = a (128 squarings)', () => {
    fc.assert(fc.property(elem, (a) => {
      let s = gfFromBytes(a);
      for (let i = 0; i < 128; i++) s = gfMul(s, s);
      assert.equal(hex(gfToBytes(s)), hex(a));
    }), { numRuns: 50 });
  });

  test('byte codec round trip, offsets, gfZero', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 40, maxLength: 40 }), fc.integer({ min: 0, max: 24 }), (buf, off) => {
      const e = gfFromBytes(buf, off);
      assert.equal(hex(gfToBytes(e)), hex(buf.subarray(off, off + 16)));
      const out = new Uint8Array(40);
      gfToBytes(e, out, off);
      assert.equal(hex(out.subarray(off, off + 16)), hex(buf.subarray(off, off + 16)));
    }), { numRuns: 200 });
    assert.equal(hex(gfToBytes(gfZero())), '00'.repeat(16));
  });
});
