import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { bytesToHex, commitmentToVersionedHash, hexToBytes, type Hex } from 'viem';
import {
  BLOB_SIZE, BlobError, MAX_BLOB_DATA_SIZE, blobCommitment, blobVersionedHash, commitmentVersionedHash, decodeBlob,
  encodeBlob, kzg, verifyBlobs, type BlobRule,
} from '../../src/policy/blobs.ts';
import { prng } from './helpers.ts';

function expectBlobError(f: () => unknown, rule: BlobRule, at: { fieldElement?: number | null; byte?: number | null; blobIndex?: number | null; message?: RegExp } = {}) {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof BlobError, `expected BlobError, got ${(e as Error)?.name}: ${(e as Error)?.message}`);
    assert.equal(e.rule, rule, e.message);
    if (at.fieldElement !== undefined) assert.equal(e.fieldElement, at.fieldElement, e.message);
    if (at.byte !== undefined) assert.equal(e.byte, at.byte, e.message);
    if (at.blobIndex !== undefined) assert.equal(e.blobIndex, at.blobIndex, e.message);
    if (at.message) assert.match(e.message, at.message);
    return true;
  });
}

/** A blob whose first bytes are `prefix`, zero elsewhere (the op-service test vectors' form). */
const blobOf = (prefix: number[]) => { const b = new Uint8Array(BLOB_SIZE); b.set(prefix); return b; };
const edit = (b: Uint8Array, at: number, v: number) => { const c = b.slice(); c[at] = v; return c; };
const ff = (n: number) => new Array<number>(n).fill(0xff);
const P = prng('blobs');

describe('Ecotone blob encoding (ecotone/derivation.md "Blob Encoding")', () => {
  test('round trip for sizes around every boundary, random and 0xff data', () => {
    const sizes = [0, 1, 10, 26, 27, 28, 31, 32, 58, 59, 62, 63, 64, 95, 96, 126, 127, 128, 129, 254, 255, 1000, 4096,
      MAX_BLOB_DATA_SIZE - 128, MAX_BLOB_DATA_SIZE - 1, MAX_BLOB_DATA_SIZE];
    for (const n of sizes) {
      for (const data of [P.bytes(n), new Uint8Array(n).fill(0xff), new Uint8Array(n)]) {
        const blob = encodeBlob(data);
        assert.equal(blob.length, BLOB_SIZE);
        for (let fe = 0; fe < 4096; fe++) assert.equal(blob[32 * fe]! & 0xc0, 0, `size ${n}: field element ${fe} top bits`);
        assert.deepEqual(decodeBlob(blob), data, `size ${n}`);
      }
    }
  });

  test('max + 1 bytes do not fit', () => {
    assert.equal(MAX_BLOB_DATA_SIZE, 130044);
    expectBlobError(() => encodeBlob(new Uint8Array(MAX_BLOB_DATA_SIZE + 1)), 'too-large', { message: /130045 bytes do not fit one blob \(at most 130044\)/ });
    expectBlobError(() => encodeBlob(new Uint8Array(BLOB_SIZE)), 'too-large');
  });

  test('known answers (the op-service blob_test.go vectors, checked by hand against the spec)', () => {
    // empty data = the all-zero blob (version 0, length 0)
    assert.deepEqual(encodeBlob(new Uint8Array(0)), new Uint8Array(BLOB_SIZE));
    assert.deepEqual(decodeBlob(new Uint8Array(BLOB_SIZE)), new Uint8Array(0));
    // max length: only the length bytes 01 fb fc are set
    assert.deepEqual(encodeBlob(new Uint8Array(MAX_BLOB_DATA_SIZE)), blobOf([0, 0, 0x01, 0xfb, 0xfc]));
    assert.deepEqual(decodeBlob(blobOf([0, 0, 0x01, 0xfb, 0xfc])), new Uint8Array(MAX_BLOB_DATA_SIZE));
    assert.deepEqual(decodeBlob(blobOf([0, 0, 0, 0, 1])), new Uint8Array(1));
    // 27 × 0xff fill element 0 after version and length
    assert.deepEqual(encodeBlob(new Uint8Array(27).fill(0xff)), blobOf([0, 0, 0, 0, 0x1b, ...ff(27)]));
    // 28 × 0xff: the 28th byte is x, split into A = x & 0x3f (element 0) and the top bits in B (element 1)
    const b28 = blobOf([0x3f, 0, 0, 0, 0x1c, ...ff(27), 0x30]);
    assert.deepEqual(encodeBlob(new Uint8Array(28).fill(0xff)), b28);
    assert.deepEqual(decodeBlob(b28), new Uint8Array(28).fill(0xff));
    // 32 × 0xff: x as above, then 4 bytes of tailB
    assert.deepEqual(decodeBlob(blobOf([0x3f, 0, 0, 0, 0x20, ...ff(27), 0x30, ...ff(4)])), new Uint8Array(32).fill(0xff));
    // 127 bytes 0..126 after the 4-byte header: y and z land in elements 1, 2 and 3 of round 0 and 1
    const seq = Uint8Array.from({ length: 127 }, (_, i) => i + 0x80);
    const blob = encodeBlob(seq);
    // stream = 00 00 00 7f 80 81 …; x = stream[31] = 0x80 + 27, y = stream[63] = 0x80 + 59, z = stream[95] = 0x80 + 91
    const x = 0x80 + 27, y = 0x80 + 59, z = 0x80 + 91;
    assert.equal(blob[0], x & 0x3f);
    assert.equal(blob[32], (y & 0x0f) | ((x & 0xc0) >> 2));
    assert.equal(blob[64], z & 0x3f);
    assert.equal(blob[96], ((z & 0xc0) >> 2) | ((y & 0xf0) >> 4));
    assert.deepEqual(blob.subarray(97, 128), seq.subarray(92, 123), 'tailD of round 0 = stream[96..126]');
    assert.deepEqual(blob.subarray(129, 133), seq.subarray(123, 127), 'round 1 starts at stream byte 127');
  });

  test('every accepted blob is the encoding of what it decodes to (single bit flips, fixed and random)', () => {
    const data = P.bytes(300);
    const blob = encodeBlob(data);
    const positions = [...Array.from({ length: 384 }, (_, i) => i), ...Array.from({ length: 200 }, () => P.int(BLOB_SIZE))];
    let rejected = 0;
    for (const pos of positions) {
      for (let bit = 0; bit < 8; bit++) {
        const flipped = edit(blob, pos, blob[pos]! ^ (1 << bit));
        try {
          const out = decodeBlob(flipped);
          assert.notDeepEqual(out, data, `flip ${pos}.${bit} decodes to the same data`);
          assert.deepEqual(encodeBlob(out), flipped, `flip ${pos}.${bit}: accepted but not canonical`);
        } catch (e) {
          assert.ok(e instanceof BlobError, String(e));
          rejected++;
        }
      }
    }
    assert.ok(rejected > 0);
  });
});

describe('decodeBlob rejects malformed blobs, naming the rule and the field element', () => {
  const good = encodeBlob(new TextEncoder().encode('this is a test of invalid blob decoding'));

  test('size', () => {
    expectBlobError(() => decodeBlob(new Uint8Array(BLOB_SIZE - 1)), 'size', { message: /a blob is 131072 bytes, got 131071/ });
  });

  test('field-element: top 2 bits set (element 0 too: the spec says every element)', () => {
    for (const [fe, v] of [[1, 0x80], [1, 0x40], [5, 0xc0], [0, 0x40], [0, 0x80], [4095, 0x40]] as const) {
      expectBlobError(() => decodeBlob(edit(good, 32 * fe, good[32 * fe]! | v)), 'field-element', {
        fieldElement: fe, byte: 32 * fe, message: new RegExp(`^field element ${fe} \\(blob byte ${32 * fe}\\): top 2 bits must be 0`),
      });
    }
  });

  test('version', () => {
    expectBlobError(() => decodeBlob(edit(good, 1, 1)), 'version', { fieldElement: 0, byte: 1, message: /encoding version must be 0, got 1/ });
  });

  test('length', () => {
    expectBlobError(() => decodeBlob(blobOf([0, 0, 0x01, 0xfb, 0xfd])), 'length', { fieldElement: 0, message: /length 130045 exceeds 130044/ });
    expectBlobError(() => decodeBlob(edit(good, 2, 0xff)), 'length');
  });

  test('trailing: every unused byte must be 0', () => {
    // length 0 with bits in x (element 0's top byte, then element 1's bits 4-5)
    expectBlobError(() => decodeBlob(blobOf([0x30])), 'trailing', { fieldElement: 0, byte: 0 });
    expectBlobError(() => decodeBlob(blobOf([0x01])), 'trailing', { fieldElement: 0, byte: 0 });
    expectBlobError(() => decodeBlob(edit(blobOf([]), 32, 0x10)), 'trailing', { fieldElement: 1, byte: 32 });
    // length 10: stream bytes 14.. must be 0; blob byte 20 carries stream byte 19
    const ten = encodeBlob(new Uint8Array(10).fill(7));
    expectBlobError(() => decodeBlob(edit(ten, 20, 1)), 'trailing', { fieldElement: 0, byte: 20, message: /stream byte 19 lies past the length 10/ });
    // y of round 5 (element 21 low nibble, then element 23), z of round 5 (element 22, then 23's bits 4-5)
    expectBlobError(() => decodeBlob(edit(good, 128 * 5 + 32, 0x01)), 'trailing', { fieldElement: 21, byte: 672 });
    expectBlobError(() => decodeBlob(edit(good, 128 * 5 + 96, 0x01)), 'trailing', { fieldElement: 23, byte: 736 });
    expectBlobError(() => decodeBlob(edit(good, 128 * 5 + 96, 0x10)), 'trailing', { fieldElement: 23, byte: 736 });
    expectBlobError(() => decodeBlob(edit(good, 128 * 5 + 64, 0x3f)), 'trailing', { fieldElement: 22, byte: 704 });
    // the very last byte
    expectBlobError(() => decodeBlob(edit(good, BLOB_SIZE - 1, 1)), 'trailing', { fieldElement: 4095, byte: BLOB_SIZE - 1 });
  });
});

describe('KZG versioned hashes (EIP-4844)', () => {
  test('the all-zero blob: commitment is the G1 point at infinity, 0xc0 ‖ 47 zero bytes', () => {
    const zero = new Uint8Array(BLOB_SIZE);
    const infinity = new Uint8Array(48);
    infinity[0] = 0xc0;
    assert.deepEqual(blobCommitment(zero), infinity);
    // independent: node:crypto sha256, version byte 0x01 in place of the first hash byte
    const h = createHash('sha256').update(infinity).digest();
    h[0] = 0x01;
    const expected = bytesToHex(h);
    assert.equal(expected, '0x010657f37554c781402a22917dee2f75def7ab966d7b770905398eba3c444014');
    assert.equal(blobVersionedHash(zero), expected);
    assert.equal(commitmentToVersionedHash({ commitment: infinity, to: 'hex' }), expected, 'viem agrees');
  });

  test('a dense random blob: the micro-eth-signer proof verifies; viem computes the same versioned hash', (t) => {
    const blob = randomBytes(BLOB_SIZE);
    for (let fe = 0; fe < 4096; fe++) blob[32 * fe] = blob[32 * fe]! & 0x3f; // < 2^254 < BLS modulus
    let t0 = performance.now();
    const commitment = blobCommitment(blob);
    const tc = performance.now() - t0;
    t0 = performance.now();
    const proof = kzg().computeBlobProof(bytesToHex(blob), bytesToHex(commitment));
    const tp = performance.now() - t0;
    t.diagnostic(`dense blob: commitment ${tc.toFixed(0)} ms, proof ${tp.toFixed(0)} ms`);
    assert.equal(commitment.length, 48);
    assert.ok(kzg().verifyBlobProof(bytesToHex(blob), bytesToHex(commitment), proof));
    assert.equal(commitmentVersionedHash(commitment), commitmentToVersionedHash({ commitment, to: 'hex' }));
  });
});

describe('verifyBlobs', () => {
  const payloads = [Uint8Array.of(0, 1, 2, 3), new TextEncoder().encode('second blob payload')];
  const blobs = payloads.map(encodeBlob);
  const hashes = blobs.map(blobVersionedHash);

  test('returns the payloads in order', (t) => {
    const t0 = performance.now();
    assert.deepEqual(verifyBlobs(blobs, hashes), payloads);
    t.diagnostic(`2 sparse blobs verified in ${(performance.now() - t0).toFixed(0)} ms`);
    assert.deepEqual(verifyBlobs(blobs, hashes.map((h) => h.toUpperCase().replace('0X', '0x') as Hex)), payloads, 'hex case');
    assert.deepEqual(verifyBlobs([], []), []);
  });

  test('count mismatch', () => {
    expectBlobError(() => verifyBlobs(blobs, hashes.slice(0, 1)), 'count', { blobIndex: null, message: /^2 blob\(s\) for 1 versioned hash\(es\)$/ });
  });

  test('a blob that does not match its hash is named with both', () => {
    expectBlobError(() => verifyBlobs(blobs, [hashes[1]!, hashes[0]!]), 'hash', {
      blobIndex: 0, message: new RegExp(`^blob 0: versioned hash ${hashes[0]} does not match blobVersionedHashes\\[0\\] = ${hashes[1]}$`),
    });
    const bad = hexToBytes(hashes[1]!);
    bad[31] = bad[31]! ^ 1;
    expectBlobError(() => verifyBlobs(blobs, [hashes[0]!, bytesToHex(bad)]), 'hash', { blobIndex: 1 });
  });

  test('a malformed blob is named with its index and the rule', () => {
    expectBlobError(() => verifyBlobs([blobs[0]!, edit(blobs[1]!, 64, 0x80)], hashes), 'field-element', {
      blobIndex: 1, fieldElement: 2, byte: 64, message: /^blob 1: field element 2 \(blob byte 64\): top 2 bits must be 0/,
    });
  });
});
