import { sha256 } from '@noble/hashes/sha2.js';

/**
 * Merkle tree hashing of RFC 9162 §2.1 (= RFC 6962 §2.1) over SHA-256. Trees are given by their
 * leaf hashes; sizes are numbers (a log never reaches 2^53 entries).
 */
export const HASH_BYTES = 32;

/** MTH({d}) = SHA-256(0x00 ‖ d) (RFC 9162 §2.1.1). */
export function leafHash(leaf: Uint8Array): Uint8Array {
  const b = new Uint8Array(1 + leaf.length);
  b[0] = 0x00;
  b.set(leaf, 1);
  return sha256(b);
}

/** SHA-256(0x01 ‖ left ‖ right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  const b = new Uint8Array(1 + 2 * HASH_BYTES);
  b[0] = 0x01;
  b.set(left, 1);
  b.set(right, 1 + HASH_BYTES);
  return sha256(b);
}

/** The largest power of two smaller than n (n ≥ 2). */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** MTH over leaf hashes: the empty tree hashes to SHA-256(""). O(n) with a stack of perfect subtrees. */
export function rootFromLeafHashes(leaves: readonly Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return sha256(new Uint8Array(0));
  // Perfect subtrees of decreasing size, left to right; the tree is their right-to-left fold.
  const stack: { size: number; hash: Uint8Array }[] = [];
  for (const h of leaves) {
    let cur = { size: 1, hash: h };
    while (stack.length && stack[stack.length - 1]!.size === cur.size) {
      const l = stack.pop()!;
      cur = { size: l.size * 2, hash: nodeHash(l.hash, cur.hash) };
    }
    stack.push(cur);
  }
  let acc = stack.pop()!.hash;
  while (stack.length) acc = nodeHash(stack.pop()!.hash, acc);
  return acc;
}

const checkRange = (what: string, m: number, n: number, strict: boolean) => {
  if (!Number.isSafeInteger(m) || !Number.isSafeInteger(n) || m < 0 || (strict ? m >= n : m > n)) throw new RangeError(`${what}: ${m} out of range for a tree of ${n}`);
};

/** PATH(m, D[n]) of RFC 9162 §2.1.3.1: the audit path of leaf m, bottom-up. */
export function inclusionProof(leaves: readonly Uint8Array[], m: number): Uint8Array[] {
  checkRange('inclusionProof', m, leaves.length, true);
  const path = (lo: number, hi: number, i: number): Uint8Array[] => {
    const n = hi - lo;
    if (n === 1) return [];
    const k = splitPoint(n);
    return i < k
      ? [...path(lo, lo + k, i), rootFromLeafHashes(leaves.slice(lo + k, hi))]
      : [...path(lo + k, hi, i - k), rootFromLeafHashes(leaves.slice(lo, lo + k))];
  };
  return path(0, leaves.length, m);
}

/** RFC 9162 §2.1.3.2: does `proof` show leaf `index` with hash `leaf` in the tree of `size` with `root`? */
export function verifyInclusion(leaf: Uint8Array, index: number, size: number, proof: readonly Uint8Array[], root: Uint8Array): boolean {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return false;
  let fn = index, sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (p.length !== HASH_BYTES || sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
    } else r = nodeHash(r, p);
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equalBytes(r, root);
}

/** PROOF(m, D[n]) = SUBPROOF(m, D[n], true) of RFC 9162 §2.1.4.1; empty for m = 0 or m = n. */
export function consistencyProof(leaves: readonly Uint8Array[], m: number): Uint8Array[] {
  checkRange('consistencyProof', m, leaves.length, false);
  if (m === 0 || m === leaves.length) return [];
  const sub = (m: number, lo: number, hi: number, b: boolean): Uint8Array[] => {
    const n = hi - lo;
    if (m === n) return b ? [] : [rootFromLeafHashes(leaves.slice(lo, hi))];
    const k = splitPoint(n);
    return m <= k
      ? [...sub(m, lo, lo + k, b), rootFromLeafHashes(leaves.slice(lo + k, hi))]
      : [...sub(m - k, lo + k, hi, false), rootFromLeafHashes(leaves.slice(lo, lo + k))];
  };
  return sub(m, 0, leaves.length, true);
}

/** RFC 9162 §2.1.4.2: is the tree (size2, root2) an append-only extension of (size1, root1)? */
export function verifyConsistency(size1: number, size2: number, root1: Uint8Array, root2: Uint8Array, proof: readonly Uint8Array[]): boolean {
  if (!Number.isSafeInteger(size1) || !Number.isSafeInteger(size2) || size1 < 0 || size2 < size1) return false;
  if (size1 === size2) return proof.length === 0 && equalBytes(root1, root2);
  if (size1 === 0) return proof.length === 0; // the empty tree is a prefix of every tree
  if (proof.length === 0 || proof.some((p) => p.length !== HASH_BYTES)) return false;
  // Step 2: if size1 is an exact power of 2, prepend root1 to the proof.
  const path = isPowerOfTwo(size1) ? [root1, ...proof] : [...proof];
  let fn = size1 - 1, sn = size2 - 1;
  while (fn % 2 === 1) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
  let fr = path[0]!, sr = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (fn % 2 === 0) while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
    } else sr = nodeHash(sr, c);
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equalBytes(fr, root1) && equalBytes(sr, root2);
}

const isPowerOfTwo = (n: number): boolean => {
  while (n > 1 && n % 2 === 0) n /= 2;
  return n === 1;
};

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
