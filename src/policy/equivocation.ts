/**
 * Anti-equivocation at a nonce (system-anchors §1.4; issue 4). txmgr re-signs the same
 * (chainId, from, nonce) when it bumps fees, so a peer sees several requests per nonce. The first
 * approved content is recorded; a later request is allowed only if it differs in fee fields alone
 * and no fee decreases. Pure: the record is passed in, persistence belongs to the caller.
 */
import { concat, keccak256, serializeTransaction, type Hex } from 'viem';
import { toSerializable, type BatchTransaction } from './transaction-args.ts';
import type { Reason } from './verdict.ts';

/** May change at a nonce but never decrease: txmgr raises tip and fee cap by ≥ 10 %, blob fee by ≥ 100 % (§1.4). */
export const MONOTONE_FEE_FIELDS = ['maxFeePerGas', 'maxPriorityFeePerGas', 'maxFeePerBlobGas'] as const;
/**
 * May change either way. §1.4 says "only the fee fields change", but txmgr's `increaseGasPrice`
 * re-estimates the gas limit on every bump and uses the new estimate, which can be lower
 * ("non-determinism in gas limit estimation happens regularly"). The limit does not change what the
 * tx posts (to, value, data, blob hashes), and the 'gas-cap' rule still bounds it.
 */
export const FREE_FIELDS = ['gas'] as const;
/** Must be identical at a nonce (§1.5 recipe step 5: "byte-identical" content). */
export const CONTENT_FIELDS = ['chainId', 'from', 'nonce', 'type', 'to', 'value', 'data', 'accessList', 'blobVersionedHashes'] as const;

/** The record slot: `chainId/from/nonce`, from in lowercase. */
export const slotKey = (tx: BatchTransaction): string => `${tx.chainId}/${tx.from.toLowerCase()}/${tx.nonce}`;

/**
 * Canonical content key: keccak256(from(20) ‖ EIP-2718 serialization of the unsigned tx with gas
 * and every fee field set to 0). Equal for two requests iff they differ only in gas and fees.
 */
export function contentKey(tx: BatchTransaction): Hex {
  const base = toSerializable(tx);
  const zeroed = base.type === 'eip4844'
    ? { ...base, gas: 0n, maxFeePerGas: 0n, maxPriorityFeePerGas: 0n, maxFeePerBlobGas: 0n }
    : { ...base, gas: 0n, maxFeePerGas: 0n, maxPriorityFeePerGas: 0n };
  return keccak256(concat([tx.from.toLowerCase() as Hex, serializeTransaction(zeroed)]));
}

function contentValue(tx: BatchTransaction, f: (typeof CONTENT_FIELDS)[number]): string {
  if (f === 'accessList') return JSON.stringify(tx.accessList);
  if (f === 'blobVersionedHashes') return tx.blobVersionedHashes?.join(',') ?? '';
  if (f === 'from') return tx.from.toLowerCase();
  return String(tx[f]);
}

/**
 * The 'equivocation' rule. `recorded` is the request recorded for this slot (null: none yet).
 * Refusals name every differing content field, or every fee field that decreased.
 */
export function checkEquivocation(recorded: BatchTransaction | null, next: BatchTransaction): Reason {
  const rule = 'equivocation';
  if (recorded === null) return { rule, ok: true, detail: `first request at ${slotKey(next)}` };
  const differing = CONTENT_FIELDS.filter((f) => contentValue(recorded, f) !== contentValue(next, f));
  if (differing.length > 0) {
    return { rule, ok: false, detail: `differs from the request approved at ${slotKey(recorded)} in ${differing.join(', ')} (only gas and fee fields may change)` };
  }
  const decreased = MONOTONE_FEE_FIELDS.filter((f) => (next[f] ?? 0n) < (recorded[f] ?? 0n))
    .map((f) => `${f} decreased from ${recorded[f]} to ${next[f]}`);
  if (decreased.length > 0) return { rule, ok: false, detail: `${decreased.join(', ')} at ${slotKey(next)}` };
  return { rule, ok: true, detail: `same content as the request approved at ${slotKey(next)}, fees not lower` };
}

/**
 * What to record after `approved` was signed: the approved request itself. Its content equals the
 * first approved one by the rule above, and its fees are the highest so far, so the next request
 * must not go below the latest approved fees. Throws RangeError if `approved` fails the rule.
 */
export function recordAfterApproval(recorded: BatchTransaction | null, approved: BatchTransaction): BatchTransaction {
  const r = checkEquivocation(recorded, approved);
  if (!r.ok) throw new RangeError(`cannot record a refused request: ${r.detail}`);
  return approved;
}

/**
 * The higher floor of two requests with the same content: each monotone fee field at its maximum.
 * The floor is what was signed at the slot; a signed request at those fees may be in the mempool,
 * and fees only rise at a nonce, so an older export (a backup, another peer) or another signature
 * never lowers it. Returns `local` itself when nothing rises.
 */
export function raiseFloor(local: BatchTransaction, other: BatchTransaction): BatchTransaction {
  const higher = MONOTONE_FEE_FIELDS.filter((f) => (other[f] ?? 0n) > (local[f] ?? 0n));
  if (higher.length === 0) return local;
  // At least as high everywhere: keep it whole (its gas too); otherwise raise field by field.
  if (MONOTONE_FEE_FIELDS.every((f) => (other[f] ?? 0n) >= (local[f] ?? 0n))) return other;
  const merged = { ...local };
  for (const f of higher) (merged as Record<string, unknown>)[f] = other[f];
  return merged;
}
