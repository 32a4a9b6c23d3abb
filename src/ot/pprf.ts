import { hash32, hash64 } from '../crypto/hash.ts';
import { xorInto } from '../crypto/bit-matrix.ts';
import { andMask, byteMask, isEqual, selectBytes, xorMasked } from '../crypto/select.ts';
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
 */
export function pprfEval(sidABO: Uint8Array, choices: Uint8Array, keys: Uint8Array[], message: Uint8Array): { delta: Uint8Array; seeds: Uint8Array } {
  if (message.length !== PPRF_BYTES) throw new DecodeError('pprf', `expected ${PPRF_BYTES} bytes, got ${message.length}`);
  const seeds = new Uint8Array(SEEDS_BYTES);
  const delta = new Uint8Array(GROUPS);
  for (let g = 0; g < GROUPS; g++) {
    const msg = message.subarray(g * PPRF_GROUP_BYTES, (g + 1) * PPRF_GROUP_BYTES);
    const { punctured, valid } = pprfEvalGroup(sidABO, g, choices, keys, msg, seeds.subarray(g * LEAVES * SEED_BYTES, (g + 1) * LEAVES * SEED_BYTES));
    if (!valid) throw new PprfProofError(g);
    delta[g] = punctured;
  }
  return { delta, seeds };
}

/**
 * One group of pprfEval: writes the 16 leaves into `out` (the punctured one zero) and returns
 * Δ_g and whether the proof holds. The punctured index p follows from the secret choice bits, so
 * nothing branches on p or on a choice bit and nothing is read or written at an index derived
 * from them: every node is expanded, the punctured one too (then masked to zero), both halves
 * of a level's sums are read and one is selected by mask, the recovered child is written into
 * every position under a mask, and every leaf is tagged (ToB App. D flagged the branching
 * version). Exported for the timing bench.
 */
export function pprfEvalGroup(sidABO: Uint8Array, g: number, choices: Uint8Array, keys: Uint8Array[], msg: Uint8Array, out: Uint8Array): { punctured: number; valid: boolean } {
  const bit = (i: number) => (choices[i >>> 3]! >>> (i & 7)) & 1;
  // Level 1: our key sits at index c0, the punctured node 1 − c0 is zero.
  const c0 = bit(K * g);
  let level: Uint8Array[] = [keys[K * g]!.slice(), keys[K * g]!.slice()];
  andMask(level[0]!, byteMask(1 - c0));
  andMask(level[1]!, byteMask(c0));
  let p = 1 - c0;
  for (let l = 2; l <= K; l++) {
    const c = bit(K * g + l - 1);
    const next: Uint8Array[] = new Array(level.length * 2);
    for (let x = 0; x < level.length; x++) {
      const h = expand(sidABO, level[x]!);
      andMask(h, byteMask(1 - isEqual(x, p))); // the punctured node's children stay zero
      next[2 * x] = h.subarray(0, 32);
      next[2 * x + 1] = h.subarray(32, 64);
    }
    // Side c's sum, unmasked with our key, yields the missing child 2p + c: the XOR of that side's
    // other children (the missing one is zero here, so it can be XORed in too).
    const at = (l - 2) * 64;
    const recovered = selectBytes(c, msg.subarray(at, at + 32), msg.subarray(at + 32, at + 64));
    xorInto(recovered, mask(sidABO, g, l, keys[K * g + l - 1]!));
    for (let x = 0; x < next.length; x++) xorMasked(recovered, next[x]!, byteMask(isEqual(x & 1, c)));
    const target = 2 * p + c;
    for (let x = 0; x < next.length; x++) xorMasked(next[x]!, recovered, byteMask(isEqual(x, target)));
    p = 2 * p + (1 - c);
    level = next;
  }
  // Proof: s̃_Δ = t̃ ⊕ ⊕_{y≠Δ} s̃_y, then H(s̃_0‖…‖s̃_15) must equal s̃.
  const missing = msg.slice((K - 1) * 64, (K - 1) * 64 + 64);
  const tags: Uint8Array[] = new Array(LEAVES);
  for (let y = 0; y < LEAVES; y++) {
    tags[y] = leafTag(sidABO, g, y, level[y]!);
    xorMasked(missing, tags[y]!, byteMask(1 - isEqual(y, p)));
  }
  for (let y = 0; y < LEAVES; y++) selectBytes(isEqual(y, p), tags[y]!, missing, tags[y]!);
  const expected = msg.subarray((K - 1) * 64 + 64, (K - 1) * 64 + 128);
  const got = hash64('ot/pprf-proof', sidABO, g, ...tags);
  let diff = 0;
  for (let k = 0; k < 64; k++) diff |= got[k]! ^ expected[k]!;
  for (let y = 0; y < LEAVES; y++) out.set(level[y]!, y * SEED_BYTES); // the punctured leaf is zero
  return { punctured: p, valid: diff === 0 };
}
