import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { secp256k1_hasher } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { LABEL_PREFIX, encodeTuple, hash32, hash64, hashToCurve, hashToScalar, wideToScalar } from '../../src/crypto/hash.ts';
import { N } from '../../src/crypto/scalar-point.ts';

interface H2cVector { msg: string; repeat?: { char: string; count: number }; Px: string; Py: string }
const suite = JSON.parse(readFileSync(new URL('../vectors/rfc9380-secp256k1_XMD_SHA-256_SSWU_RO_.json', import.meta.url), 'utf8')) as { dst: string; vectors: H2cVector[] };
const enc = new TextEncoder();
const b = (...xs: number[]) => Uint8Array.from(xs);

describe('RFC 9380 secp256k1_XMD:SHA-256_SSWU_RO_ (App. J.8.1)', () => {
  test('the vector file has the five published messages', () => {
    assert.equal(suite.dst, 'QUUX-V01-CS02-with-secp256k1_XMD:SHA-256_SSWU_RO_');
    assert.deepEqual(suite.vectors.map((v) => v.msg), ['', 'abc', 'abcdef0123456789', 'q128_', 'a512_']);
  });
  for (const v of suite.vectors) {
    const msg = v.msg + (v.repeat ? v.repeat.char.repeat(v.repeat.count) : '');
    test(`hashToCurve(${JSON.stringify(msg.slice(0, 16))}${msg.length > 16 ? '…' : ''}) (length ${msg.length})`, () => {
      const P = secp256k1_hasher.hashToCurve(enc.encode(msg), { DST: suite.dst });
      const { x, y } = P.toAffine();
      assert.equal(x.toString(16).padStart(64, '0'), v.Px);
      assert.equal(y.toString(16).padStart(64, '0'), v.Py);
    });
  }
});

describe('encodeTuple', () => {
  test('exact bytes: u32be(len)‖label, then u32be(len)‖bytes per field, numbers as 4-byte big-endian fields', () => {
    const label = enc.encode(LABEL_PREFIX + 'x');
    assert.equal(label.length, 18);
    const got = encodeTuple('x', [b(0xab), 7, new Uint8Array(0)]);
    const want = new Uint8Array([0, 0, 0, 18, ...label, 0, 0, 0, 1, 0xab, 0, 0, 0, 4, 0, 0, 0, 7, 0, 0, 0, 0]);
    assert.equal(bytesToHex(got), bytesToHex(want));
    assert.equal(bytesToHex(hash32('x', b(0xab), 7, new Uint8Array(0))), bytesToHex(sha256(want)));
  });

  test('field boundaries are unambiguous: [ab, c] ≠ [a, bc] ≠ [abc] ≠ [abc, ""]', () => {
    const encs = [
      [enc.encode('ab'), enc.encode('c')],
      [enc.encode('a'), enc.encode('bc')],
      [enc.encode('abc')],
      [enc.encode('abc'), new Uint8Array(0)],
      [new Uint8Array(0), enc.encode('abc')],
      [],
    ].map((f) => bytesToHex(encodeTuple('p', f)));
    assert.equal(new Set(encs).size, encs.length);
  });

  test('purpose and field are separated: ("ab", [c]) ≠ ("a", [bc]) and label prefix is part of the label', () => {
    assert.notEqual(bytesToHex(encodeTuple('ab', [enc.encode('c')])), bytesToHex(encodeTuple('a', [enc.encode('bc')])));
    assert.notEqual(bytesToHex(encodeTuple('p', [])), bytesToHex(encodeTuple('q', [])));
  });

  test('a number field encodes exactly like the 4-byte big-endian byte field (fields are typed by position)', () => {
    // Documented behaviour of hash.ts: "Numbers are encoded as 4-byte big-endian fields".
    assert.equal(bytesToHex(encodeTuple('p', [1])), bytesToHex(encodeTuple('p', [b(0, 0, 0, 1)])));
    assert.equal(bytesToHex(encodeTuple('p', [0x01020304])), bytesToHex(encodeTuple('p', [b(1, 2, 3, 4)])));
    // …but never like a shorter byte string of the same value.
    assert.notEqual(bytesToHex(encodeTuple('p', [1])), bytesToHex(encodeTuple('p', [b(1)])));
  });

  test('number fields outside u32 throw RangeError', () => {
    for (const bad of [-1, 2 ** 32, 1.5, Number.NaN, Infinity]) assert.throws(() => encodeTuple('p', [bad]), RangeError);
    assert.doesNotThrow(() => encodeTuple('p', [0, 2 ** 32 - 1]));
  });

  test('property: distinct byte-field tuples give distinct encodings', () => {
    const tuple = fc.array(fc.uint8Array({ maxLength: 6 }), { maxLength: 4 });
    fc.assert(
      fc.property(tuple, tuple, (x, y) => {
        const same = x.length === y.length && x.every((f, i) => bytesToHex(f) === bytesToHex(y[i]!));
        assert.equal(bytesToHex(encodeTuple('p', x)) === bytesToHex(encodeTuple('p', y)), same);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('hash-to-curve / hash-to-scalar wrappers', () => {
  test('hashToCurve(purpose, …fields) is noble hashToCurve(encodeTuple, DST = label)', () => {
    const fields = [b(1, 2, 3), 9];
    const ours = hashToCurve('ot/base-pt', ...fields);
    const theirs = secp256k1_hasher.hashToCurve(encodeTuple('ot/base-pt', fields), { DST: LABEL_PREFIX + 'ot/base-pt' });
    assert.ok(ours.equals(theirs));
  });

  test('hashToCurve is deterministic and differs across purposes and fields', () => {
    const p1 = hashToCurve('a', b(1), 2);
    assert.ok(p1.equals(hashToCurve('a', b(1), 2)));
    const others = [hashToCurve('b', b(1), 2), hashToCurve('a', b(1), 3), hashToCurve('a', b(2), 2), hashToCurve('a', b(1, 2)), hashToCurve('a', b(1))];
    for (const o of others) assert.ok(!p1.equals(o));
    assert.equal(new Set(others.map((p) => p.toHex(true))).size, others.length);
    p1.assertValidity();
    assert.ok(!p1.is0());
  });

  test('hash32 / hash64 lengths and domain separation', () => {
    assert.equal(hash32('a').length, 32);
    assert.equal(hash64('a').length, 64);
    assert.notEqual(bytesToHex(hash32('a', 1)), bytesToHex(hash32('b', 1)));
  });

  test('hashToScalar output is < n and is the 64-byte SHA-512 digest reduced mod n', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.nat({ max: 0xffffffff }), (f, k) => {
        const s = hashToScalar('t', f, k);
        assert.ok(s >= 0n && s < N);
        assert.equal(s, wideToScalar(hash64('t', f, k)));
        assert.equal(s, BigInt('0x' + bytesToHex(hash64('t', f, k))) % N);
      }),
      { numRuns: 300 },
    );
  });

  test('wideToScalar reduces 2^512 − 1 and n itself', () => {
    assert.equal(wideToScalar(new Uint8Array(64).fill(0xff)), (2n ** 512n - 1n) % N);
    assert.equal(wideToScalar(hexToBytes('00'.repeat(32) + N.toString(16).padStart(64, '0'))), 0n);
  });
});
