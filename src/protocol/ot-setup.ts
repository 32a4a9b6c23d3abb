import { baseOtReceiverFinish, type BaseOtReceiverState } from '../ot/endemic-ot.ts';
import { pprfEval, PprfProofError } from '../ot/pprf.ts';
import { AbortError } from './errors.ts';
import { attributed } from './machine.ts';

/**
 * E's last step of a pairwise OT setup (spec §2.3), shared by the DKG (round 3) and the pair
 * re-setup (round 3): finish the base OT with R's reply, evaluate the all-but-one OT, and turn a
 * bad proof into ABORT pprf-proof naming R (a malformed reply is ABORT decode, also naming R).
 * The base-OT secrets (choice bits c, scalars t_ι, the received keys) are wiped whatever the outcome.
 */
export function finishOtSetup(
  peer: number, evidence: Uint8Array, sid: { ot: Uint8Array; abo: Uint8Array }, state: BaseOtReceiverState, otReply: Uint8Array, pprf: Uint8Array,
): { delta: Uint8Array; seeds: Uint8Array } {
  let keys: Uint8Array[] = [];
  try {
    keys = attributed(peer, evidence, () => baseOtReceiverFinish(sid.ot, state, otReply));
    return attributed(peer, evidence, () => pprfEval(sid.abo, state.choices, keys, pprf));
  } catch (e) {
    if (e instanceof PprfProofError) throw new AbortError('pprf-proof', e.message, peer, evidence);
    throw e;
  } finally {
    wipeBaseOt(state);
    for (const k of keys) k.fill(0);
  }
}

/** Zero a base-OT receiver state (choice bits and t_ι); BigInts cannot be wiped, only dropped. */
export function wipeBaseOt(state: BaseOtReceiverState): void {
  state.choices.fill(0);
  state.t.fill(0n);
}
