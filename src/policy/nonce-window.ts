/**
 * The 'nonce-window' rule (issue 11): an org approves a transaction at nonce k only close to where
 * the account really is, so no member can claim hundreds of future nonce slots with junk and
 * block the batcher there. With an L1 node: confirmed ≤ k ≤ confirmed + W. Without one, the L1 is
 * estimated by the highest nonce this org already approved: k ≤ highest + W (any k before the
 * first approval). Pure; the caller supplies the confirmed nonce and the highest approved one.
 */
import type { Reason } from './verdict.ts';

export interface NonceView {
  /** The account's confirmed nonce on L1 (`eth_getTransactionCount(from, 'latest')`), if known. */
  confirmed?: number;
  /** The highest nonce this org approved for (chain, from), or null. */
  highest: number | null;
}

export function nonceWindowReason(nonce: number, view: NonceView, window: number): Reason {
  const rule = 'nonce-window';
  if (view.confirmed !== undefined) {
    const c = view.confirmed;
    if (nonce < c) return { rule, ok: false, detail: `nonce ${nonce} is below the L1's confirmed nonce ${c}: that slot is spent` };
    if (nonce > c + window) return { rule, ok: false, detail: `nonce ${nonce} is beyond the L1's confirmed nonce ${c} + window ${window}` };
    return { rule, ok: true, detail: `nonce ${nonce} within [${c}, ${c + window}] (L1 confirmed ${c})` };
  }
  if (view.highest === null) return { rule, ok: true, detail: `nonce ${nonce}: no nonce approved yet and no L1 to compare with` };
  if (nonce > view.highest + window) return { rule, ok: false, detail: `nonce ${nonce} is beyond the highest approved nonce ${view.highest} + window ${window}` };
  return { rule, ok: true, detail: `nonce ${nonce} ≤ highest approved ${view.highest} + window ${window}` };
}
