import { peerIdFromString } from '@libp2p/peer-id';
import type { ClusterDefinition } from './definition.ts';

/**
 * The cluster's members with stable indices: member index = position in the definition's
 * member list (sorted by peer id) + 1. Control envelopes use member indices; protocol sessions
 * map their own party indices onto them. `publicKey` is the raw Ed25519 identity key, which is
 * also the party identity inside key shares (sorted by these bytes).
 */
export interface Member {
  index: number;
  org: string;
  peerId: string;
  publicKey: Uint8Array;
  addresses: string[];
}

export function membersOf(def: ClusterDefinition): Member[] {
  return def.members.map((m, k) => {
    const pk = peerIdFromString(m.peerId).publicKey;
    if (!pk || pk.type !== 'Ed25519') throw new RangeError(`member ${m.org} (${m.peerId}) has no Ed25519 identity`);
    return { index: k + 1, org: m.org, peerId: m.peerId, publicKey: pk.raw, addresses: m.addresses };
  });
}

/** Members in key-share party order (identities sorted by public key bytes). */
export const partyOrder = (members: readonly Member[]): Member[] => [...members].sort((a, b) => Buffer.compare(a.publicKey, b.publicKey));
