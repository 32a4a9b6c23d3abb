import { hash32, hash64 } from '../crypto/hash.ts';
import { xorInto } from '../crypto/bit-matrix.ts';
import { DecodeError } from '../crypto/errors.ts';
import { GROUPS, K, LEAVES, SEED_BYTES, SEEDS_BYTES } from './params.ts';

/**
 * All-but-one OT from a puncturable PRF (SoftSpokenOT Figs. 13/14, spec §2.3). R (the base-OT
 * sender) grows a GGM tree of depth 4 per group from the keys of base OT 4g, and for levels 2..4
 * sends the XOR of the even children masked by key 0 and of the odd children masked by key 1 of
 * base OT 4g+ℓ−1, plus a proof (t̃, s̃) binding all 16 leaves.
 * E, knowing one key per level, recovers every leaf but Δ_g = Σ_i (1 ⊕ c_{4g+i})·2^{3−i}.
 */
export const PPRF_GROUP_BYTES = (K - 1) * 2 * 32 + 64 + 64; // 320
export const PPRF_BYTES = GROUPS * PPRF_GROUP_BYTES; // 20,480 per ordered pair

export class PprfProofError extends Error {
  override readonly name = 'PprfProofError';
  readonly group: number;
  constructor(group: number) {
    super(`all-but-one OT proof does not verify in group ${group}`);
    this.group = group;
  }
}

const expand = (sid: Uint8Array, node: Uint8Array) => hash64('ot/pprf', sid, node);
const mask = (sid: Uint8Array, g: number, level: number, key: Uint8Array) => hash32('ot/pprf-mask', sid, g, level, key);
const leafTag = (sid: Uint8Array, g: number, y: number, leaf: Uint8Array) => hash64('ot/pprf-leaf', sid, g, y, leaf);

/** R side: all 16 seeds per group (64×16×32 B) and the message to E. */
export function pprfBuild(sidABO: Uint8Array, keys0: Uint8Array[], keys1: Uint8Array[]): { seeds: Uint8Array; message: Uint8Array } {
  const seeds = new Uint8Array(SEEDS_BYTES);
  const message = new Uint8Array(PPRF_BYTES);
  for (let g = 0; g < GROUPS; g++) {
    const out = message.subarray(g * PPRF_GROUP_BYTES, (g + 1) * PPRF_GROUP_BYTES);
    let level: Uint8Array[] = [keys0[K * g]!, keys1[K * g]!];
    for (let l = 2; l <= K; l++) {
      const next: Uint8Array[] = [];
      for (const node of level) {
        const h = expand(sidABO, node);
        next.push(h.subarray(0, 32), h.subarray(32, 64));
      }
      const sums = [mask(sidABO, g, l, keys0[K * g + l - 1]!), mask(sidABO, g, l, keys1[K * g + l - 1]!)];
      next.forEach((node, idx) => xorInto(sums[idx & 1]!, node));
      out.set(sums[0]!, (l - 2) * 64);
      out.set(sums[1]!, (l - 2) * 64 + 32);
      level = next;
    }
    const tags = level.map((leaf, y) => leafTag(sidABO, g, y, leaf));
    const tTilde = new Uint8Array(64);
    for (const tag of tags) xorInto(tTilde, tag);
    out.set(tTilde, (K - 1) * 64);
    out.set(hash64('ot/pprf-proof', sidABO, g, ...tags), (K - 1) * 64 + 64);
    level.forEach((leaf, y) => seeds.set(leaf, (g * LEAVES + y) * SEED_BYTES));
  }
  return { seeds, message };
}

/**
 * E side: Δ_g per group and the 15 known seeds (the punctured one is left zero). Throws
 * DecodeError on a wrong length and PprfProofError when the proof fails (the caller aborts).
 * The puncture index depends on E's secret choice bits; reads are indexed by it (ToB App. D).
 */
export function pprfEval(sidABO: Uint8Array, choices: Uint8Array, keys: Uint8Array[], message: Uint8Array): { delta: Uint8Array; seeds: Uint8Array } {
  if (message.length !== PPRF_BYTES) throw new DecodeError('pprf', `expected ${PPRF_BYTES} bytes, got ${message.length}`);
  const seeds = new Uint8Array(SEEDS_BYTES);
  const delta = new Uint8Array(GROUPS);
  const bit = (i: number) => (choices[i >>> 3]! >>> (i & 7)) & 1;
  for (let g = 0; g < GROUPS; g++) {
    const msg = message.subarray(g * PPRF_GROUP_BYTES, (g + 1) * PPRF_GROUP_BYTES);
    const c0 = bit(K * g);
    let level: Uint8Array[] = [new Uint8Array(32), new Uint8Array(32)];
    level[c0] = keys[K * g]!;
    let p = 1 - c0; // punctured node index at this level
    for (let l = 2; l <= K; l++) {
      const c = bit(K * g + l - 1);
      const next: Uint8Array[] = [];
      level.forEach((node, x) => {
        if (x === p) next.push(new Uint8Array(32), new Uint8Array(32));
        else {
          const h = expand(sidABO, node);
          next.push(h.subarray(0, 32), h.subarray(32, 64));
        }
      });
      // Side c's sum is unmasked with our key; it yields the missing child 2p + c.
      const recovered = msg.slice((l - 2) * 64 + c * 32, (l - 2) * 64 + c * 32 + 32);
      xorInto(recovered, mask(sidABO, g, l, keys[K * g + l - 1]!));
      next.forEach((node, x) => {
        if ((x & 1) === c && x !== 2 * p + c) xorInto(recovered, node);
      });
      next[2 * p + c] = recovered;
      p = 2 * p + (1 - c);
      level = next;
    }
    delta[g] = p;
    // Proof: s̃_Δ = t̃ ⊕ ⊕_{y≠Δ} s̃_y, then H(s̃_0‖…‖s̃_15) must equal s̃.
    const tags: Uint8Array[] = new Array(LEAVES);
    const missing = msg.slice((K - 1) * 64, (K - 1) * 64 + 64);
    for (let y = 0; y < LEAVES; y++) {
      if (y === p) continue;
      tags[y] = leafTag(sidABO, g, y, level[y]!);
      xorInto(missing, tags[y]!);
    }
    tags[p] = missing;
    const expected = msg.subarray((K - 1) * 64 + 64, (K - 1) * 64 + 128);
    const got = hash64('ot/pprf-proof', sidABO, g, ...tags);
    let diff = 0;
    for (let k = 0; k < 64; k++) diff |= got[k]! ^ expected[k]!;
    if (diff !== 0) throw new PprfProofError(g);
    level.forEach((leaf, y) => {
      if (y !== p) seeds.set(leaf, (g * LEAVES + y) * SEED_BYTES);
    });
  }
  return { delta, seeds };
}
