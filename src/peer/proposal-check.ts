/**
 * The checks every proposal from another member passes first, for presigning and signing alike:
 * a key we hold at that epoch, a proposer holding a share, a well-formed signer set with us in it
 * that meets the cluster's org quorum, no burned pair and no pair under OT re-setup. All cheap
 * and read-only: they run before anything is written or computed.
 */
import type { Member } from '../cluster/members.ts';
import { quorumViolation } from './signer-set.ts';
import type { PairRepair } from './pair-repair.ts';
import { partyOrg, type LoadedKey, type PeerCore } from './peer-core.ts';

/** The key, or the reason to decline. */
export function checkProposal(core: PeerCore, pairs: PairRepair, from: Member, p: { keyId: string; epoch: number; signers: number[] }): LoadedKey | string {
  const k = core.keys.get(p.keyId);
  if (!k) return `unknown key "${p.keyId}"`;
  if (p.epoch !== k.share.epoch) return `key ${p.keyId} is at epoch ${k.share.epoch}, not ${p.epoch}`;
  const proposer = k.partyOf.get(from.index);
  if (proposer === undefined) return `${from.org} holds no share of ${p.keyId}`;
  if (p.signers.length !== k.share.threshold || !p.signers.every((x, i) => i === 0 || x > p.signers[i - 1]!) || p.signers.some((x) => !k.memberOf.has(x))) return 'malformed signer set';
  if (!p.signers.includes(k.share.index)) return 'this peer is not in the signer set';
  const why = quorumViolation(p.signers, proposer, partyOrg(core, k), core.definition.quorum);
  if (why) return why;
  const burned = core.store.burnedPeers(k.share.keyId);
  const b = p.signers.find((x) => burned.has(x));
  if (b !== undefined) return `the pair with ${partyOrg(core, k)(b)} is burned until its OT setup is redone`;
  const busy = p.signers.find((x) => x !== k.share.index && pairs.isBusy(k, x));
  if (busy !== undefined) return `the OT setup with ${partyOrg(core, k)(busy)} is being redone`;
  return k;
}
