/** Parameters of spec §2.1 (as in the audited Silence Labs implementation). */
export const KAPPA = 256; // bits of n
export const LAMBDA_C = 256; // base OTs per ordered pair
export const LAMBDA_S = 128; // statistical security
export const K = 4; // SoftSpokenOT subfield bits
export const GROUPS = LAMBDA_C / K; // 64 all-but-one OTs of 1-of-16
export const LEAVES = 1 << K; // 16
export const XI = KAPPA + 2 * LAMBDA_S; // 512 extended OTs per RVOLE (gadget length)
export const W = 128; // check block (GF(2^128))
export const L_PRIME = XI + W; // 640 extended choice bits incl. padding
export const ROW_BYTES = L_PRIME / 8; // 80
export const M = XI / W; // 4 check chunks
export const OT_WIDTH = 3; // ℓ + ρ scalars per extended OT
export const SEED_BYTES = 32;
export const SEEDS_BYTES = GROUPS * LEAVES * SEED_BYTES; // 32,768 per ordered pair
