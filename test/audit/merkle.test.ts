import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sha256 } from '@noble/hashes/sha2.js';
import {
  consistencyProof, inclusionProof, leafHash, nodeHash, rootFromLeafHashes, splitPoint, verifyConsistency, verifyInclusion,
} from '../../src/audit/merkle.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const leaf = (i: number) => new TextEncoder().encode(`leaf ${i}`);
const leaves = (n: number) => Array.from({ length: n }, (_, i) => leafHash(leaf(i)));

/** RFC 9162 §2.1.1 MTH, literally: recursive on the data. */
function slowMth(data: Uint8Array[]): Uint8Array {
  if (data.length === 0) return sha256(new Uint8Array(0));
  if (data.length === 1) return sha256(new Uint8Array([0, ...data[0]!]));
  let k = 1;
  while (k * 2 < data.length) k *= 2;
  return sha256(new Uint8Array([1, ...slowMth(data.slice(0, k)), ...slowMth(data.slice(k))]));
}

test('known answers: empty tree, one leaf, two leaves, domain separation', () => {
  assert.equal(hex(rootFromLeafHashes([])), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'); // SHA-256("")
  assert.equal(hex(leafHash(new Uint8Array(0))), '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d'); // SHA-256(0x00)
  const a = leafHash(new Uint8Array([1])), b = leafHash(new Uint8Array([2]));
  assert.equal(hex(rootFromLeafHashes([a])), hex(a));
  assert.equal(hex(rootFromLeafHashes([a, b])), hex(sha256(new Uint8Array([1, ...a, ...b]))));
  assert.notEqual(hex(leafHash(new Uint8Array([1, ...a, ...b]))), hex(nodeHash(a, b)), 'leaf and node hashes are domain-separated');
  assert.deepEqual([2, 3, 4, 5, 8, 9, 70].map(splitPoint), [1, 2, 2, 4, 4, 8, 64]);
});

test('the stack MTH equals the recursive reference for every size 0..70', () => {
  for (let n = 0; n <= 70; n++) {
    const data = Array.from({ length: n }, (_, i) => leaf(i));
    assert.equal(hex(rootFromLeafHashes(leaves(n))), hex(slowMth(data)), `n = ${n}`);
  }
});

test('RFC 6962 test vectors (certificate-transparency-go merkletree: leaves "", 00, 10, 2021, 3031, 40414243, 5051525354555657, 606162636465666768696a6b6c6d6e6f)', () => {
  const data = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map((h) => new Uint8Array(Buffer.from(h, 'hex')));
  const roots = [
    '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
    'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
    'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
    'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
    '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
    'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
    '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
  ];
  roots.forEach((r, i) => assert.equal(hex(rootFromLeafHashes(data.slice(0, i + 1).map(leafHash))), r, `size ${i + 1}`));
  const ls = data.map(leafHash);
  const h = (xs: Uint8Array[]) => xs.map(hex);
  assert.deepEqual(h(inclusionProof(ls, 0)), [
    '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
    '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4']);
  assert.deepEqual(h(inclusionProof(ls, 5)), [
    'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
    'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']);
  assert.deepEqual(h(consistencyProof(ls, 2)), ['5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4']);
  assert.deepEqual(h(consistencyProof(ls, 6)), [
    '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
    'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']);
  const root = (n: number) => new Uint8Array(Buffer.from(roots[n - 1]!, 'hex'));
  assert.ok(verifyInclusion(ls[5]!, 5, 8, inclusionProof(ls, 5), root(8)));
  assert.ok(verifyConsistency(6, 8, root(6), root(8), consistencyProof(ls, 6)));
});

// (The size itself is bound by the signed checkpoint, not by the proof: a proof may fit two sizes.)
test('every inclusion proof verifies for sizes 1..70; any tampering fails', () => {
  for (let n = 1; n <= 70; n++) {
    const ls = leaves(n);
    const root = rootFromLeafHashes(ls);
    for (let m = 0; m < n; m++) {
      const p = inclusionProof(ls, m);
      assert.ok(verifyInclusion(ls[m]!, m, n, p, root), `n=${n} m=${m}`);
      if (n > 1) assert.ok(!verifyInclusion(ls[(m + 1) % n]!, m, n, p, root), 'another leaf');
      assert.ok(!verifyInclusion(ls[m]!, m, n, p, leafHash(new Uint8Array([9]))), 'another root');
      if (p.length) {
        const bad = p.map((x) => new Uint8Array(x));
        bad[bad.length - 1]![0]! ^= 1;
        assert.ok(!verifyInclusion(ls[m]!, m, n, bad, root), 'a changed proof node');
        assert.ok(!verifyInclusion(ls[m]!, m, n, p.slice(0, -1), root), 'a shortened proof');
      }
      assert.ok(!verifyInclusion(ls[m]!, m, n, [...p, root], root), 'a lengthened proof');
      if (m + 1 < n) assert.ok(!verifyInclusion(ls[m]!, m + 1, n, p, root), 'another index');
    }
  }
  assert.ok(!verifyInclusion(leafHash(leaf(0)), 0, 0, [], rootFromLeafHashes([])), 'nothing is in the empty tree');
});

test('every consistency proof verifies for 0 ≤ m ≤ n ≤ 70; any tampering fails', () => {
  for (let n = 1; n <= 70; n++) {
    const ls = leaves(n);
    const rn = rootFromLeafHashes(ls);
    for (let m = 0; m <= n; m++) {
      const rm = rootFromLeafHashes(ls.slice(0, m));
      const p = consistencyProof(ls, m);
      assert.ok(verifyConsistency(m, n, rm, rn, p), `m=${m} n=${n}`);
      if (m === 0 || m === n) continue;
      assert.ok(!verifyConsistency(m, n, leafHash(leaf(999)), rn, p), 'another old root');
      assert.ok(!verifyConsistency(m, n, rm, leafHash(leaf(999)), p), 'another new root');
      const bad = p.map((x) => new Uint8Array(x));
      bad[0]![5]! ^= 0x40;
      assert.ok(!verifyConsistency(m, n, rm, rn, bad), 'a changed proof node');
      assert.ok(!verifyConsistency(m, n, rm, rn, []), 'an empty proof');
      assert.ok(!verifyConsistency(m, n, rm, rn, p.slice(1)), 'a shortened proof');
      // A log that rewrote history: the old root is not a prefix of the new tree.
      const forked = [...ls];
      forked[m - 1] = leafHash(leaf(1000 + m));
      assert.ok(!verifyConsistency(m, n, rm, rootFromLeafHashes(forked), consistencyProof(forked, m)), 'a rewritten prefix');
    }
  }
});

test('proof sizes are logarithmic, and out-of-range requests throw', () => {
  const ls = leaves(1000);
  assert.ok(inclusionProof(ls, 517).length <= 10);
  assert.ok(consistencyProof(ls, 333).length <= 2 * 10);
  assert.throws(() => inclusionProof(ls, 1000), RangeError);
  assert.throws(() => consistencyProof(ls, 1001), RangeError);
});
