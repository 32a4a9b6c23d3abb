import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { encodeTuple, hash32, hash64, hashToScalar, sha256Incremental } from '../../src/crypto/hash.ts';
import { N } from '../../src/crypto/scalar-point.ts';
import { seededRng } from '../../src/crypto/random.ts';

/** The tuple hashes run on OpenSSL (node:crypto); they must equal noble's SHA-2 over the same bytes. */
const rng = seededRng('hash-openssl tests');
const SIZES = [0, 1, 31, 32, 33, 55, 56, 63, 64, 65, 111, 112, 127, 128, 129, 1000, 5120, 49152];

describe('hash32 / hash64 / hashToScalar on OpenSSL', () => {
  test('equal noble SHA-256 / SHA-512 of the tuple encoding, for fields around every block boundary', () => {
    for (const n of SIZES) {
      const field = rng(n);
      const enc = encodeTuple('test/purpose', [field, 7]);
      assert.equal(bytesToHex(hash32('test/purpose', field, 7)), bytesToHex(sha256(enc)), `hash32, ${n} B`);
      assert.equal(bytesToHex(hash64('test/purpose', field, 7)), bytesToHex(sha512(enc)), `hash64, ${n} B`);
      assert.equal(hashToScalar('test/purpose', field, 7), BigInt('0x' + bytesToHex(sha512(enc))) % N, `hashToScalar, ${n} B`);
    }
  });
  test('a tuple with no fields hashes its length-prefixed label alone', () => {
    assert.equal(bytesToHex(hash32('')), bytesToHex(sha256(encodeTuple('', []))));
  });
  test('outputs are plain Uint8Arrays of 32 and 64 bytes that own their memory', () => {
    const a = hash32('x'), b = hash64('x');
    assert.equal(Object.getPrototypeOf(a), Uint8Array.prototype);
    assert.equal(Object.getPrototypeOf(b), Uint8Array.prototype);
    assert.equal(a.length, 32);
    assert.equal(b.length, 64);
    assert.equal(a.byteOffset, 0);
    assert.equal(a.buffer.byteLength, 32);
  });
});

describe('sha256Incremental', () => {
  test('a copied prefix state gives the hash of prefix ‖ suffix, and the prefix state is unchanged', () => {
    const prefix = rng(77);
    const base = sha256Incremental().update(prefix);
    for (const n of [0, 1, 44, 64, 200]) {
      const suffix = rng(n);
      const both = new Uint8Array(prefix.length + n);
      both.set(prefix);
      both.set(suffix, prefix.length);
      assert.equal(bytesToHex(base.copy().update(suffix).digest()), bytesToHex(sha256(both)));
    }
    assert.equal(bytesToHex(base.digest()), bytesToHex(sha256(prefix)));
  });
});
