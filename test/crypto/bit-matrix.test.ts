import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { getBit, transposeBits, transposeBitsSlow, xorInto } from '../../src/crypto/bit-matrix.ts';
import { seededRng } from '../../src/crypto/random.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('transposeBits', () => {
  const rng = seededRng('bit-matrix');
  for (const [rows, cols] of [[256, 640], [640, 256], [8, 8], [16, 24], [24, 16], [8, 64], [64, 8]] as const) {
    test(`${rows}×${cols}: fast = slow, and transposing twice is the identity`, () => {
      for (let k = 0; k < 3; k++) {
        const m = rng((rows * cols) / 8);
        const t = transposeBits(m, rows, cols);
        assert.equal(hex(t), hex(transposeBitsSlow(m, rows, cols)));
        assert.equal(hex(transposeBits(t, cols, rows)), hex(m));
      }
    });
  }

  test('slow transpose moves bit (r, c) to (c, r)', () => {
    const rows = 16, cols = 24;
    for (const [r, c] of [[0, 0], [0, 23], [15, 0], [7, 9], [15, 23]] as const) {
      const m = new Uint8Array((rows * cols) / 8);
      m[r * (cols / 8) + (c >>> 3)]! |= 1 << (c & 7);
      for (const t of [transposeBitsSlow(m, rows, cols), transposeBits(m, rows, cols)]) {
        assert.equal(getBit(t, c * rows + r), 1);
        assert.equal(t.reduce((s, x) => s + x, 0), 1 << (r & 7));
      }
    }
  });

  test('property: random dimensions (multiples of 8 up to 64) match the slow transpose', () => {
    const dim = fc.integer({ min: 1, max: 8 }).map((k) => 8 * k);
    fc.assert(fc.property(dim, dim, fc.integer(), (rows, cols, seed) => {
      const m = seededRng(`p${seed}`)((rows * cols) / 8);
      assert.equal(hex(transposeBits(m, rows, cols)), hex(transposeBitsSlow(m, rows, cols)));
    }), { numRuns: 200 });
  });

  test('the input is not modified', () => {
    const m = seededRng('in')(32 * 80);
    const copy = m.slice();
    transposeBits(m, 256, 80);
    assert.equal(hex(m), hex(copy));
  });

  test('wrong sizes throw RangeError', () => {
    assert.throws(() => transposeBits(new Uint8Array(7), 8, 8), RangeError);
    assert.throws(() => transposeBits(new Uint8Array(9), 8, 8), RangeError);
    assert.throws(() => transposeBits(new Uint8Array(0), 8, 8), RangeError);
    assert.throws(() => transposeBits(new Uint8Array(10), 10, 8), RangeError);
    assert.throws(() => transposeBits(new Uint8Array(12), 8, 12), RangeError);
    assert.throws(() => transposeBits(new Uint8Array(20 * 80), 256, 640), RangeError);
  });
});

describe('xorInto / getBit', () => {
  test('xorInto with offsets and length', () => {
    const dst = Uint8Array.of(1, 2, 3, 4, 5);
    xorInto(dst, Uint8Array.of(0xff, 0xf0, 0x0f), 1, 1, 2);
    assert.deepEqual([...dst], [1, 2 ^ 0xf0, 3 ^ 0x0f, 4, 5]);
    const d2 = Uint8Array.of(1, 1);
    xorInto(d2, Uint8Array.of(3, 3));
    assert.deepEqual([...d2], [2, 2]);
  });
  test('getBit is LSB-first within a byte', () => {
    const b = Uint8Array.of(0b0000_0010, 0b1000_0000);
    assert.deepEqual([0, 1, 2, 8, 14, 15].map((i) => getBit(b, i)), [0, 1, 0, 0, 0, 1]);
  });
});
