import { sha256 } from '@noble/hashes/sha2.js';
import { peerIdFromString } from '@libp2p/peer-id';
import type { PrivateKey } from '@libp2p/interface';
import { ClusterDefinitionType } from '../protocol/messages.ts';
import { validateMultiaddr, validateOrg, type PeerInfo } from './identity.ts';

/**
 * The cluster definition (issue 3), in the manner of Charon's cluster lock: members, threshold
 * and the default org-quorum rule, hashed canonically (the protobuf encoding of the sorted
 * definition) and signed by every member's identity key. Keygen refuses to start until every
 * member has signed; peers compare the hash at every connection.
 */
export interface ClusterMember { org: string; peerId: string; addresses: string[] }
export interface ClusterSignature { peerId: string; signature: string } // hex Ed25519
export interface ClusterDefinition {
  version: 1;
  name: string;
  threshold: number;
  quorum: { distinctOrgs: number; otherOrgs: number };
  /**
   * f: how many members may be faulty (malicious, rolled back) while no two conflicting requests
   * at one nonce both get an approval certificate (issue 11). Needs n ≥ 3f + 1.
   */
  faulty: number;
  /** Per key id, the orgs that may originate signing requests; a key not listed: every org. */
  requesters: Record<string, string[]>;
  members: ClusterMember[];
  /** Operators' signatures over the definition hash; not part of the hash. */
  signatures: ClusterSignature[];
}

export class ClusterError extends Error {
  override readonly name = 'ClusterError';
}

const LOCK_LABEL = new TextEncoder().encode('potluck/cluster-lock/v1\0');

export function validateDefinition(d: ClusterDefinition): void {
  const bad = (m: string) => new ClusterError(`cluster definition: ${m}`);
  if (d.version !== 1) throw bad(`unsupported version ${String(d.version)}`);
  if (typeof d.name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(d.name)) throw bad(`name "${String(d.name)}" must be 1–64 letters, digits, '.', '_' or '-'`);
  if (!Array.isArray(d.members) || d.members.length < 2 || d.members.length > 16) throw bad(`needs 2..16 members, has ${d.members?.length ?? 0}`);
  const n = d.members.length;
  if (!Number.isInteger(d.threshold) || d.threshold < 2 || d.threshold > n) throw bad(`threshold ${d.threshold} must be in 2..${n}`);
  const ids = new Set<string>();
  for (const m of d.members) {
    validateOrg(m.org);
    try {
      const pid = peerIdFromString(m.peerId);
      if (pid.type !== 'Ed25519') throw new Error(`${pid.type} key`);
    } catch (e) {
      throw bad(`member "${m.org}" has an invalid peer id "${m.peerId}" (${(e as Error).message})`);
    }
    if (ids.has(m.peerId)) throw bad(`peer id ${m.peerId} is listed twice`);
    ids.add(m.peerId);
    if (!Array.isArray(m.addresses) || m.addresses.length === 0) throw bad(`member "${m.org}" has no addresses`);
    m.addresses.forEach(validateMultiaddr);
  }
  const sorted = [...d.members].sort((a, b) => (a.peerId < b.peerId ? -1 : 1));
  if (sorted.some((m, k) => m !== d.members[k])) throw bad('members must be sorted by peer id');
  const orgs = new Set(d.members.map((m) => m.org)).size;
  const q = d.quorum;
  if (!q || !Number.isInteger(q.distinctOrgs) || q.distinctOrgs < 1 || q.distinctOrgs > Math.min(orgs, d.threshold))
    throw bad(`quorum.distinctOrgs ${q?.distinctOrgs} must be in 1..${Math.min(orgs, d.threshold)} (distinct orgs, at most the threshold)`);
  if (!Number.isInteger(q.otherOrgs) || q.otherOrgs < 0 || q.otherOrgs > q.distinctOrgs) throw bad(`quorum.otherOrgs ${q.otherOrgs} must be in 0..${q.distinctOrgs}`);
  if (!Number.isInteger(d.faulty) || d.faulty < 0) throw bad(`faulty ${String(d.faulty)} must be a whole number ≥ 0 (the members assumed faulty at most)`);
  if (n < 3 * d.faulty + 1) throw bad(`faulty ${d.faulty} needs at least ${3 * d.faulty + 1} members (n ≥ 3f + 1), this cluster has ${n}`);
  if (typeof d.requesters !== 'object' || d.requesters === null || Array.isArray(d.requesters)) throw bad('requesters must be an object: key id → list of orgs');
  const orgNames = new Set(d.members.map((m) => m.org));
  for (const [keyId, list] of Object.entries(d.requesters)) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(keyId)) throw bad(`requesters: key id "${keyId}" must be 1–64 letters, digits, '.', '_' or '-'`);
    if (!Array.isArray(list) || list.length === 0) throw bad(`requesters.${keyId} must be a non-empty list of orgs`);
    for (const o of list) if (typeof o !== 'string' || !orgNames.has(o)) throw bad(`requesters.${keyId}: "${String(o)}" is not an org of this cluster`);
    if (new Set(list).size !== list.length || list.some((o, i) => i > 0 && o <= list[i - 1]!)) throw bad(`requesters.${keyId} must be sorted without duplicates`);
  }
}

/** The default f for n members: the most that n ≥ 3f + 1 allows. */
export const defaultFaulty = (n: number): number => Math.floor((n - 1) / 3);

/**
 * c = ⌈(n + f + 1) / 2⌉: approvals a certificate needs among n approvers. Any two sets of c
 * share 2c − n ≥ f + 1 members, so with at most f faulty, one honest member is in both.
 */
export const approvalQuorum = (n: number, f: number): number => Math.ceil((n + f + 1) / 2);

/** Whether `org` may originate signing requests for `keyId`. */
export const mayRequest = (d: ClusterDefinition, keyId: string, org: string): boolean => {
  const list = d.requesters[keyId];
  return list === undefined || list.includes(org);
};

export function createDefinition(
  name: string, threshold: number, quorum: { distinctOrgs: number; otherOrgs: number }, peers: PeerInfo[],
  opts: { faulty?: number; requesters?: Record<string, string[]> } = {},
): ClusterDefinition {
  const members = peers.map((p) => ({ org: p.org, peerId: p.peerId, addresses: [...p.addresses] })).sort((a, b) => (a.peerId < b.peerId ? -1 : 1));
  const requesters = Object.fromEntries(Object.entries(opts.requesters ?? {}).map(([k, v]) => [k, [...new Set(v)].sort()]));
  const d: ClusterDefinition = { version: 1, name, threshold, quorum, faulty: opts.faulty ?? defaultFaulty(members.length), requesters, members, signatures: [] };
  validateDefinition(d);
  return d;
}

/** SHA-256 over a label and the protobuf encoding of everything but the signatures. */
export function definitionHash(d: ClusterDefinition): Uint8Array {
  validateDefinition(d);
  const bytes = ClusterDefinitionType.encode(ClusterDefinitionType.create({
    version: d.version, name: d.name, threshold: d.threshold, quorumDistinctOrgs: d.quorum.distinctOrgs, quorumOtherOrgs: d.quorum.otherOrgs,
    members: d.members.map((m) => ({ org: m.org, peerId: m.peerId, addresses: m.addresses })),
    faulty: d.faulty,
    requesters: Object.keys(d.requesters).sort().map((keyId) => ({ keyId, orgs: d.requesters[keyId] })),
  })).finish();
  const msg = new Uint8Array(LOCK_LABEL.length + bytes.length);
  msg.set(LOCK_LABEL);
  msg.set(bytes, LOCK_LABEL.length);
  return sha256(msg);
}

const lockMessage = (hash: Uint8Array) => {
  const m = new Uint8Array(LOCK_LABEL.length + 32);
  m.set(LOCK_LABEL);
  m.set(hash, LOCK_LABEL.length);
  return m;
};

/** Add (or replace) this operator's signature. The key must belong to a member. */
export async function signDefinition(d: ClusterDefinition, key: PrivateKey, peerId: string): Promise<ClusterDefinition> {
  if (!d.members.some((m) => m.peerId === peerId)) throw new ClusterError(`peer ${peerId} is not a member of cluster "${d.name}"`);
  const sig = await key.sign(lockMessage(definitionHash(d)));
  const signatures = d.signatures.filter((s) => s.peerId !== peerId).concat({ peerId, signature: Buffer.from(sig).toString('hex') });
  signatures.sort((a, b) => (a.peerId < b.peerId ? -1 : 1));
  return { ...d, signatures };
}

/** Which members have not signed, and which signatures do not verify against this definition. */
export async function checkSignatures(d: ClusterDefinition): Promise<{ missing: ClusterMember[]; invalid: string[] }> {
  const msg = lockMessage(definitionHash(d));
  const invalid: string[] = [];
  const good = new Set<string>();
  for (const s of d.signatures ?? []) {
    const member = d.members.find((m) => m.peerId === s.peerId);
    let ok = false;
    try {
      ok = member !== undefined && /^[0-9a-f]{128}$/.test(s.signature) && (await peerIdFromString(s.peerId).publicKey!.verify(msg, Buffer.from(s.signature, 'hex')));
    } catch {
      ok = false;
    }
    if (ok) good.add(s.peerId);
    else invalid.push(s.peerId);
  }
  return { missing: d.members.filter((m) => !good.has(m.peerId)), invalid };
}

/** Throws ClusterError naming every member who has not (validly) signed. */
export async function requireFullySigned(d: ClusterDefinition): Promise<void> {
  const { missing, invalid } = await checkSignatures(d);
  if (invalid.length) throw new ClusterError(`cluster "${d.name}": signatures that do not match this definition (was it edited after signing?): ${invalid.join(', ')}`);
  if (missing.length) throw new ClusterError(`cluster "${d.name}" is not signed by every member yet; missing: ${missing.map((m) => `${m.org} (${m.peerId})`).join(', ')}`);
}

export function parseDefinition(text: string, source: string): ClusterDefinition {
  let d: ClusterDefinition;
  try {
    d = JSON.parse(text) as ClusterDefinition;
  } catch (e) {
    throw new ClusterError(`${source} is not valid JSON (${(e as Error).message})`);
  }
  if (typeof d !== 'object' || d === null || Array.isArray(d)) throw new ClusterError(`${source} is not a cluster definition (a JSON object)`);
  if (d.faulty === undefined) throw new ClusterError(`${source}: cluster definition has no "faulty" (f, the members assumed faulty at most; issue 11). Recreate it with "potluck cluster create" (default f = ⌊(n−1)/3⌋) and have every member sign it again`);
  d.signatures ??= [];
  d.requesters ??= {};
  validateDefinition(d);
  return d;
}
