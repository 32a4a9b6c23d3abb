import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { chacha20 } from '@noble/ciphers/chacha.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { OPENSSL_PRG_MIN_BYTES, prg } from '../../src/crypto/prg.ts';
import { seededRng, systemRng } from '../../src/crypto/random.ts';

interface Ks { name: string; key: string; nonce: string; counter: number; keystream: string }
interface Enc { name: string; key: string; nonce: string; counter: number; plaintextUtf8: string; ciphertext: string }
const v = JSON.parse(readFileSync(new URL('../vectors/rfc8439-chacha20.json', import.meta.url), 'utf8')) as { keystream: Ks[]; encrypt: Enc[] };

describe('RFC 8439 ChaCha20 through @noble/ciphers', () => {
  for (const k of v.keystream) {
    test(`keystream ${k.name}`, () => {
      const out = chacha20(hexToBytes(k.key), hexToBytes(k.nonce), new Uint8Array(64), undefined, k.counter);
      assert.equal(bytesToHex(out), k.keystream);
    });
  }
  for (const e of v.encrypt) {
    test(`encryption ${e.name}`, () => {
      const pt = new TextEncoder().encode(e.plaintextUtf8);
      assert.equal(pt.length, 114);
      const ct = chacha20(hexToBytes(e.key), hexToBytes(e.nonce), pt, undefined, e.counter);
      assert.equal(bytesToHex(ct), e.ciphertext);
      assert.equal(new TextDecoder().decode(chacha20(hexToBytes(e.key), hexToBytes(e.nonce), ct, undefined, e.counter)), e.plaintextUtf8);
    });
  }
});

describe('prg (ChaCha20, zero nonce, counter 0)', () => {
  const a1 = v.keystream.find((k) => k.name === 'A.1 #1')!;
  const a2 = v.keystream.find((k) => k.name === 'A.1 #2')!;
  test('prg(0^32, 64) is RFC 8439 A.1 test vector #1', () => {
    assert.equal(bytesToHex(prg(new Uint8Array(32), 64)), a1.keystream);
  });
  test('prg(0^32, 128) continues with A.1 test vector #2 (block counter 1)', () => {
    assert.equal(bytesToHex(prg(new Uint8Array(32), 128)), a1.keystream + a2.keystream);
  });
  test('prefixes agree for any length, including 0 and non-multiples of 64', () => {
    const full = prg(new Uint8Array(32), 200);
    for (const len of [0, 1, 63, 64, 65, 199]) assert.equal(bytesToHex(prg(new Uint8Array(32), len)), bytesToHex(full.subarray(0, len)));
  });
  test('with an out buffer: overwrites (does not XOR) its first `length` bytes, leaves the rest', () => {
    const out = new Uint8Array(80).fill(0x5a);
    const r = prg(new Uint8Array(32), 64, out);
    assert.equal(bytesToHex(r), a1.keystream);
    assert.equal(bytesToHex(out.subarray(0, 64)), a1.keystream);
    assert.ok(out.subarray(64).every((x) => x === 0x5a));
  });
  test('key 1 (RFC A.1 #3 key) at counter 1 = bytes 64..127 of prg', () => {
    const k3 = v.keystream.find((k) => k.name === 'A.1 #3')!;
    assert.equal(bytesToHex(prg(hexToBytes(k3.key), 128).subarray(64)), k3.keystream);
  });
});

describe('prg on OpenSSL for long streams (node:crypto chacha20)', () => {
  const key = hexToBytes(v.keystream.find((k) => k.name === 'A.1 #3')!.key);
  test(`from ${OPENSSL_PRG_MIN_BYTES} bytes on, the keystream is noble's, byte for byte`, () => {
    for (const len of [OPENSSL_PRG_MIN_BYTES - 1, OPENSSL_PRG_MIN_BYTES, OPENSSL_PRG_MIN_BYTES + 1, 4095, 24576, 100_000])
      assert.equal(bytesToHex(prg(key, len)), bytesToHex(chacha20(key, new Uint8Array(12), new Uint8Array(len))), `length ${len}`);
  });
  test('with an out buffer: overwrites its first `length` bytes, leaves the rest, returns exactly `length` bytes', () => {
    const out = new Uint8Array(1000).fill(0x5a);
    const r = prg(key, 600, out);
    assert.equal(r.length, 600);
    assert.equal(bytesToHex(out.subarray(0, 600)), bytesToHex(chacha20(key, new Uint8Array(12), new Uint8Array(600))));
    assert.ok(out.subarray(600).every((x) => x === 0x5a));
  });
  test('a key that is not 32 bytes is refused on both paths', () => {
    assert.throws(() => prg(new Uint8Array(16), 1024), RangeError);
    assert.throws(() => prg(new Uint8Array(16), 64));
  });
});

describe('Rng', () => {
  test('seededRng is deterministic and its stream is the ChaCha20 keystream of the padded seed', () => {
    const a = seededRng('seed-1'), b = seededRng('seed-1');
    const xa = [a(10), a(100), a(64)], xb = [b(10), b(100), b(64)];
    assert.deepEqual(xa.map(bytesToHex), xb.map(bytesToHex));
    // Each call consumes whole 64-byte blocks: 10 → block 0, 100 → blocks 1–2, 64 → block 3.
    const key = new Uint8Array(32);
    key.set(new TextEncoder().encode('seed-1'));
    const ks = prg(key, 256);
    assert.equal(bytesToHex(xa[0]!), bytesToHex(ks.subarray(0, 10)));
    assert.equal(bytesToHex(xa[1]!), bytesToHex(ks.subarray(64, 164)));
    assert.equal(bytesToHex(xa[2]!), bytesToHex(ks.subarray(192, 256)));
  });
  test('seededRng: different seeds differ; string and byte seeds are the same', () => {
    assert.notEqual(bytesToHex(seededRng('a')(64)), bytesToHex(seededRng('b')(64)));
    assert.equal(bytesToHex(seededRng('ab')(64)), bytesToHex(seededRng(new Uint8Array([0x61, 0x62]))(64)));
  });
  test('systemRng returns exactly the requested length, beyond the 65536-byte chunk limit', () => {
    for (const len of [0, 1, 65536, 65537, 100000]) assert.equal(systemRng(len).length, len);
    const big = systemRng(100000);
    // Chunks are independent: the second chunk is not a copy of the first.
    assert.notEqual(bytesToHex(big.subarray(0, 32)), bytesToHex(big.subarray(65536, 65568)));
    assert.ok(big.subarray(65536).some((x) => x !== 0));
  });
});
