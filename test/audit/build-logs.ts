/**
 * Builds real audit logs for tests (issue 5): the in-process simulator runs keygen, presign and
 * online signing for a 3-of-5 cluster with real Ed25519 identities, and every party writes the
 * entries a peer writes (the daemon should mirror this):
 *   - AuditPolicy when its policy file is loaded;
 *   - per protocol message sent or received: AuditMessage (auditMessageOf: public broadcasts whole,
 *     everything else as SHA-256, signMultiply with pk_i ‖ R_i);
 *   - per session: AuditSessionEnd (output: PK for a DKG, sigSid for a presign), AuditKey after a DKG,
 *     AuditBurn after BAN_PAIR; evidence = the culprit's signed envelope;
 *   - per approval round (issue 11): each approving member's AuditVerdict (from the real
 *     peer/request-policy.ts evaluation, SQLite in memory, carrying the request and the round id)
 *     and its signed AuditApproval; a refusing approver writes nothing; a requester refusing its own
 *     client writes only an AuditVerdict carrying the request;
 *   - per signing attempt: AuditRequest (requester or co-signer) and AuditCertificate, then
 *     AuditSignature (every signer) with the tx hash;
 *   - AuditCosignature: each peer cosigns the others' checkpoints (C2SP witness style).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import type { PrivateKey } from '@libp2p/interface';
import { sha256 } from '@noble/hashes/sha2.js';
import { hexToBytes, keccak256 } from 'viem';
import { approvalQuorum, createDefinition, definitionHash, type ClusterDefinition } from '../../src/cluster/definition.ts';
import { membersOf, partyOrder } from '../../src/cluster/members.ts';
import type { PeerInfo } from '../../src/cluster/identity.ts';
import { scalarToBytes } from '../../src/crypto/scalar-point.ts';
import { sealEnvelope } from '../../src/net/envelope.ts';
import { defaultDevnetPolicy, policyToJson } from '../../src/policy/policy-file.ts';
import { signedTransaction } from '../../src/policy/tx-policy.ts';
import { encodeCertificate, signApproval, subjectOf, type Approval } from '../../src/policy/approval.ts';
import { RequestPolicy } from '../../src/peer/request-policy.ts';
import { encodeSigningRequest, type SigningRequest } from '../../src/peer/signing-request.ts';
import { DealingSession, dealingInstanceId, type DealingOutput, type DealingRequest } from '../../src/protocol/dkg.ts';
import { BanPairError, type ProtocolError } from '../../src/protocol/errors.ts';
import type { KeyShare } from '../../src/protocol/key-share.ts';
import type { RoundMachine } from '../../src/protocol/machine.ts';
import { decodeBody } from '../../src/protocol/messages.ts';
import { OnlineSession, PresignSession, ethAddress, signInstanceId, type Presignature, type Signature } from '../../src/protocol/sign.ts';
import { runMachines, type Delivery, type RunResult, type Tamper } from '../../src/sim/run-machines.ts';
import { partyRngs, refreshRequest } from '../../src/sim/simulator.ts';
import { cosignCheckpoint, originOf, signNote, checkpointBody } from '../../src/audit/checkpoint.ts';
import { ZERO_HASH, auditMessageOf, entryLeafHash, sessionEndOf, signEntry, signerOf, type AuditRecordInput } from '../../src/audit/entry.ts';
import { encodeLogRecord } from '../../src/audit/log-file.ts';
import { rootFromLeafHashes } from '../../src/audit/merkle.ts';

export const CHAIN_ID = 900;
export const INBOX = '0xff00000000000000000000000000000000000901';
export const KEY_ID = 'batcher';
const DEFAULT_ORGS = ['aurora', 'aurora', 'borealis', 'cirrus', 'dorado'];

export interface TestPeer {
  org: string;
  peerId: string;
  key: PrivateKey;
  seed: Uint8Array;
  publicKey: Uint8Array;
  /** Cluster member index (definition order). */
  member: number;
  /** Key party index (identities sorted). */
  party: number;
  policy: RequestPolicy;
  policySha: Uint8Array;
  records: AuditRecordInput[];
}

export interface TestCluster {
  definition: ClusterDefinition;
  threshold: number;
  clusterHash: Uint8Array;
  /** By key party index − 1. */
  peers: TestPeer[];
  shares: Map<number, KeyShare>;
  address: string;
  /** Secret values the logs must never contain (32-byte encodings). */
  secrets: Uint8Array[];
}

const hexOf = (b: Uint8Array) => Buffer.from(b).toString('hex');
const silent = { warn() {}, info() {}, debug() {}, error() {} } as unknown as Logger;

export interface ClusterOptions {
  /** One member per entry (default 5 members, orgs aurora ×2, borealis, cirrus, dorado). */
  orgs?: string[];
  /** Default 3. */
  threshold?: number;
  quorum?: { distinctOrgs: number; otherOrgs: number };
  orgQuorum?: { distinctOrgs: number; otherOrgs: number };
  /** A lower gas cap in some parties' policy files. */
  gasCap?: Map<number, bigint>;
}

export async function makeCluster(opts: ClusterOptions = {}): Promise<TestCluster> {
  const ORGS = opts.orgs ?? DEFAULT_ORGS;
  const keys = await Promise.all(ORGS.map((_, k) => generateKeyPairFromSeed('Ed25519', sha256(new TextEncoder().encode(`audit-test/${k}`)))));
  const infos: PeerInfo[] = keys.map((key, k) => ({ org: ORGS[k]!, peerId: peerIdFromPrivateKey(key).toString(), addresses: [`/ip4/127.0.0.1/tcp/${7100 + k}`], api: `127.0.0.1:${8100 + k}` }));
  const definition = createDefinition('audit-test', opts.threshold ?? 3, opts.quorum ?? { distinctOrgs: 2, otherOrgs: 1 }, infos);
  const members = membersOf(definition);
  const order = partyOrder(members);
  const root = mkdtempSync(join(tmpdir(), 'potluck-audit-'));
  const peers = order.map((m, k): TestPeer => {
    const key = keys[infos.findIndex((i) => i.peerId === m.peerId)]!;
    const file = defaultDevnetPolicy({ chainId: CHAIN_ID, batchInbox: INBOX, quorum: opts.orgQuorum ?? { distinctOrgs: 2, otherOrgs: 1 }, clients: ['batcher.example'] });
    const cap = opts.gasCap?.get(k + 1);
    if (cap !== undefined) file.transactions.caps.gas = cap;
    const json = JSON.stringify(policyToJson(file), null, 2) + '\n';
    const dir = mkdtempSync(join(root, 'home-'));
    writeFileSync(join(dir, 'policy.json'), json);
    const policy = RequestPolicy.load(dir, new Database(':memory:'), silent);
    const policySha = sha256(new TextEncoder().encode(json));
    return {
      org: m.org, peerId: m.peerId, key, seed: key.raw.slice(0, 32), publicKey: m.publicKey, member: m.index, party: k + 1, policy, policySha,
      records: [{ case: 'policy', value: { sha256: policySha, json } }],
    };
  });
  return { definition, clusterHash: definitionHash(definition), threshold: definition.threshold, peers, shares: new Map(), address: '', secrets: [] };
}

export const peerOf = (c: TestCluster, party: number): TestPeer => c.peers[party - 1]!;

// ---- running protocol machines with every party writing its AuditMessages ----

interface RunInfo { session: Uint8Array; protocol: string }

function runRecorded<O>(c: TestCluster, machines: Map<number, RoundMachine<O>>, info: RunInfo, seed: string, tamper?: Tamper): RunResult<O> {
  const log = (party: number, sent: boolean, from: number, to: number, payload: Uint8Array) => {
    peerOf(c, party).records.push({ case: 'message', value: auditMessageOf({ session: info.session, protocol: info.protocol, sent, from, to, payload }) });
    try {
      const b = decodeBody(payload);
      if (b.case === 'keygenShare') c.secrets.push(...[b.value.share, b.value.zeroSeed].filter((x) => x.length === 32));
    } catch {
      /* byzantine bytes */
    }
  };
  for (const [i, m] of machines) {
    const receive = m.receive.bind(m);
    m.receive = (msg, rng) => {
      if (!m.failed) log(i, false, msg.from, msg.to ?? 0, msg.bytes);
      return receive(msg, rng);
    };
  }
  const wrapped: Tamper = (from, msg, recipients) => {
    const ds: Delivery[] = tamper ? tamper(from, msg, recipients) : recipients.map((to) => ({ to, bytes: msg.bytes, broadcast: msg.to === null }));
    const seen = new Set<string>();
    for (const d of ds) {
      const k = `${d.broadcast ? 0 : d.to}:${hexOf(d.bytes)}`;
      if (seen.has(k)) continue;
      seen.add(k);
      log(from, true, from, d.broadcast ? 0 : d.to, d.bytes);
    }
    return ds;
  };
  return runMachines(machines, partyRngs([...machines.keys()], seed), wrapped);
}

/** What a receiving peer keeps as evidence: the culprit's envelope around the offending bytes. */
function evidenceOf(c: TestCluster, e: ProtocolError, protocol: string, session: Uint8Array, to: number): Uint8Array | undefined {
  const ev = (e as { evidence?: Uint8Array }).evidence;
  if (!ev || e.culprit === undefined) return undefined;
  const culprit = peerOf(c, e.culprit);
  return sealEnvelope({ clusterHash: c.clusterHash, protocol, session: session.length === 32 ? session : sha256(session), from: culprit.member, to: peerOf(c, to).member, seq: 7, payload: ev }, culprit.key);
}

function endSession<O>(c: TestCluster, res: RunResult<O>, ids: number[], info: RunInfo, output: (o: O) => Uint8Array): void {
  for (const i of ids) {
    const e = res.errors.get(i);
    const o = res.outputs.get(i);
    const evidence = e ? evidenceOf(c, e, info.protocol, info.session, i) : undefined;
    peerOf(c, i).records.push({ case: 'sessionEnd', value: sessionEndOf(info.session, info.protocol, e ? { error: e, ...(evidence ? { evidence } : {}) } : o !== undefined ? { output: output(o) } : { error: new Error('session did not finish') }) });
  }
}

// ---- key ceremonies ----

function dealing(c: TestCluster, req: DealingRequest, old: Map<number, KeyShare>, seed: string, tamper?: Tamper): RunResult<DealingOutput> {
  const ids = req.participants.map((_, k) => k + 1);
  const info = { session: dealingInstanceId(req), protocol: 'dkls23/dkg/v1' };
  const res = runRecorded(c, new Map(ids.map((i) => [i, new DealingSession(req, i, old.get(i))])), info, seed, tamper);
  endSession(c, res, ids, info, (o) => o.publicKey.toBytes(true));
  for (const [i, o] of res.outputs) {
    if (!o.share) continue;
    peerOf(c, i).records.push({
      case: 'key',
      value: {
        keyId: req.keyId, epoch: req.epoch, kind: req.kind, dkgSession: o.dkgSid, publicKey: o.publicKey.toBytes(true), threshold: req.threshold,
        parties: o.share.parties, publicShares: o.publicShares.map((p) => p.toBytes(true)),
      },
    });
    c.secrets.push(scalarToBytes(o.share.secretShare));
    for (const p of o.share.pairs.values()) c.secrets.push(p.zeroSeed, p.receiverSeeds.slice(0, 32), p.senderSeeds.slice(32, 64));
  }
  return res;
}

export function keygen(c: TestCluster, seed = 'audit-keygen'): void {
  const res = runKeygen(c, KEY_ID, seed);
  if (res.errors.size) throw new Error(`keygen failed: ${[...res.errors.values()].map((e) => e.message).join('; ')}`);
  c.shares = new Map([...res.outputs].map(([i, o]) => [i, o.share!]));
  c.address = ethAddress(c.shares.get(1)!.publicKey);
}

/** A keygen ceremony with every party logging; `tamper` makes a party byzantine. */
export function runKeygen(c: TestCluster, keyId: string, seed: string, tamper?: Tamper): RunResult<DealingOutput> {
  const all = c.peers.map((p) => p.party);
  const req: DealingRequest = { kind: 'keygen', keyId, epoch: 0, threshold: c.threshold, participants: c.peers.map((p) => p.publicKey), dealers: all, receivers: all, nonce: new Uint8Array(32).fill(1) };
  return dealing(c, req, new Map(), seed, tamper);
}

/** Reshare among the same members, dealt by the old committee `committee` (old key indices). */
export function reshare(c: TestCluster, committee: number[], seed = 'audit-reshare'): void {
  const old = c.shares.get(committee[0]!)!;
  const all = c.peers.map((p) => p.party);
  const req: DealingRequest = {
    kind: 'reshare', keyId: KEY_ID, epoch: old.epoch + 1, threshold: c.threshold, participants: c.peers.map((p) => p.publicKey),
    dealers: committee, receivers: all, dealerOldIndices: committee, nonce: new Uint8Array(32).fill(0xaa),
  };
  const res = dealing(c, req, c.shares, seed);
  if (res.errors.size) throw new Error(`reshare failed: ${[...res.errors.values()].map((e) => e.message).join('; ')}`);
  c.shares = new Map([...res.outputs].map(([i, o]) => [i, o.share!]));
}

export function refresh(c: TestCluster, seed = 'audit-refresh'): void {
  const res = dealing(c, refreshRequest(c.shares), c.shares, seed);
  if (res.errors.size) throw new Error('refresh failed');
  c.shares = new Map([...res.outputs].map(([i, o]) => [i, o.share!]));
}

// ---- signing ----

export const txArgs = (over: Record<string, unknown> = {}, address = ''): Record<string, unknown> => ({
  from: address.toLowerCase(), to: INBOX, gas: '0x186a0', gasPrice: null, maxFeePerGas: '0x77359400', maxPriorityFeePerGas: '0x3b9aca00',
  value: '0x0', nonce: '0x2a', data: null, input: SAMPLE_BATCH, accessList: [], chainId: '0x384', ...over,
});
/** A calldata batch: version 0, one frame (channel ab…ab, frame 0, last). */
const SAMPLE_BATCH = '0x00' + 'ab'.repeat(16) + '0000' + '00000010' + '78'.repeat(16) + '01';

export interface SignSpec {
  requester: number;
  signers: number[];
  /** TransactionArgs, or a raw digest. */
  args?: Record<string, unknown>;
  rawDigest?: Uint8Array;
  presignTamper?: Tamper;
  onlineTamper?: Tamper;
  seed?: string;
  /** Members asked to approve (default: every other holder). */
  approvers?: number[];
  /** A retry with another signer set under the certificate of an earlier approval round. */
  round?: ApprovalRound;
  /** What the signers log as the certificate (default: the round's approvals, encoded). */
  certificate?: (round: ApprovalRound) => Uint8Array;
}
export interface ApprovalRound { requestId: Uint8Array; approvals: Approval[]; digest: Uint8Array; request: SigningRequest; requestBytes: Uint8Array }
export interface SignOutcome { sigSid?: Uint8Array; presignSession: Uint8Array; signature?: Signature; refused?: string; txHash?: Uint8Array; round?: ApprovalRound }

let counter = 0;

/**
 * An approval round as the daemon runs it (peer/requester.ts, peer/approver.ts): the requester's
 * own verdict and approval, then each asked member's evaluation as approver; an approval writes
 * its verdict and the signed approval, a refusal writes nothing.
 */
export function approveRequest(c: TestCluster, spec: { requester: number; args?: Record<string, unknown>; rawDigest?: Uint8Array; approvers?: number[]; seed?: string }): ApprovalRound | { refused: string } {
  const owner = peerOf(c, spec.requester);
  const sr: SigningRequest = spec.rawDigest
    ? { client: 'admin', body: { case: 'rawDigest', digest: spec.rawDigest } }
    : { client: 'batcher.example', body: { case: 'transaction', argsJson: JSON.stringify(spec.args), blobs: [] } };
  const requestBytes = encodeSigningRequest(sr);
  const threshold = spec.rawDigest ? {} : { threshold: c.threshold };
  const requestId = sha256(new TextEncoder().encode(`round/${spec.seed ?? counter++}`));
  const ev = owner.policy.evaluate({ request: sr, role: 'requester', requesterOrg: owner.org, session: requestId, keyAddresses: [c.address], ...threshold });
  const verdict = (p: TestPeer, v: { digest?: Uint8Array; verdict: { approve: boolean; reasons: { rule: string; ok: boolean; detail: string }[] } }, role: string, round: Uint8Array) =>
    p.records.push({ case: 'verdict', value: { session: round, digest: v.digest ?? new Uint8Array(0), approve: v.verdict.approve, reasons: v.verdict.reasons, policySha256: p.policySha, request: requestBytes, role, requestId: round } });
  if (ev.refusal) {
    verdict(owner, ev, 'requester', new Uint8Array(0));
    return { refused: ev.refusal.rule };
  }
  const subject = subjectOf(sr.body, c.address);
  const approvals: Approval[] = [];
  const give = (p: TestPeer) => {
    const a = signApproval({ ...subject, clusterHash: c.clusterHash, approverOrg: p.org, approver: p.peerId, requestId }, p.seed);
    p.records.push({ case: 'approval', value: { approval: a.bytes } });
    approvals.push(a);
  };
  verdict(owner, ev, 'requester', requestId);
  give(owner);
  for (const i of spec.approvers ?? c.peers.map((p) => p.party).filter((x) => x !== spec.requester)) {
    const p = peerOf(c, i);
    const v = p.policy.evaluate({ request: sr, role: 'approver', requesterOrg: owner.org, session: requestId, keyAddresses: [c.address], ...threshold });
    if (v.refusal) continue;
    verdict(p, v, 'approver', requestId);
    give(p);
  }
  return { requestId, approvals, digest: ev.digest!, request: sr, requestBytes };
}

export function sign(c: TestCluster, spec: SignSpec): SignOutcome {
  const seed = spec.seed ?? `audit-sign-${counter++}`;
  const S = spec.signers;
  const owner = peerOf(c, spec.requester);
  const approval = spec.round ?? approveRequest(c, { ...spec, seed });
  const request = new Uint8Array([spec.requester, ...new TextEncoder().encode(seed)]);
  const presignSession = signInstanceId(c.shares.get(spec.requester)!, { signers: S, request });
  if ('refused' in approval) return { presignSession, refused: approval.refused };
  const round = approval;
  if (round.approvals.length < approvalQuorum(c.peers.length, c.definition.faulty)) return { presignSession, refused: 'approval-quorum', round };
  if (S.some((i) => !round.approvals.some((a) => a.approver === peerOf(c, i).peerId))) return { presignSession, refused: 'not-approved', round };
  const info = { session: presignSession, protocol: 'dkls23/presign/v1' };
  const pre = runRecorded(c, new Map(S.map((i) => [i, new PresignSession(c.shares.get(i)!, { signers: S, request })])), info, seed, spec.presignTamper);
  endSession(c, pre, S, info, (p: Presignature) => p.sigSid);
  for (const [i, e] of pre.errors)
    if (e instanceof BanPairError) peerOf(c, i).records.push({ case: 'burn', value: { keyId: KEY_ID, peer: e.culprit, peerOrg: peerOf(c, e.culprit).org, session: presignSession, check: e.check } });
  if (pre.errors.size || pre.outputs.size !== S.length) return { presignSession, round };
  const presigs = pre.outputs;
  const sigSid = presigs.get(spec.requester)!.sigSid;
  for (const p of presigs.values()) c.secrets.push(scalarToBytes(p.phi), scalarToBytes(p.v));

  const signerOrgs = S.map((i) => peerOf(c, i).org);
  const digest = round.digest;
  const certificate = spec.certificate ? spec.certificate(round) : encodeCertificate(round.approvals);
  const auditRequest = (role: string): AuditRecordInput => ({
    case: 'request', value: { session: sigSid, role, requesterOrg: owner.org, keyId: KEY_ID, epoch: c.shares.get(1)!.epoch, signers: S, signerOrgs, request: round.requestBytes, digest },
  });
  // The requester spends its presignature, then each co-signer (its own approval in the certificate).
  for (const i of S) {
    const p = peerOf(c, i);
    p.records.push(auditRequest(i === spec.requester ? 'requester' : 'cosigner'));
    p.records.push({ case: 'certificate', value: { session: sigSid, certificate } });
  }
  const oinfo = { session: sigSid, protocol: 'dkls23/online/v1' };
  const on = runRecorded(c, new Map(S.map((i) => [i, new OnlineSession(presigs.get(i)!, digest)])), oinfo, seed, spec.onlineTamper);
  endSession(c, on, S, oinfo, () => new Uint8Array(0));
  let out: SignOutcome = { presignSession, sigSid, round };
  for (const [i, sig] of on.outputs) {
    const txHash = spec.args ? hexToBytes(keccak256(signedTransaction(spec.args, { r: sig.r, s: sig.s, yParity: sig.yParity }))) : new Uint8Array(0);
    peerOf(c, i).records.push({ case: 'signature', value: { session: sigSid, digest, r: scalarToBytes(sig.r), s: scalarToBytes(sig.s), yParity: sig.yParity, address: c.address, txHash } });
    if (i === spec.requester) out = { ...out, signature: sig, txHash };
  }
  return out;
}

// ---- checkpoints: each peer cosigns every other peer's current checkpoint ----

export function exchangeCheckpoints(c: TestCluster): void {
  const heads = c.peers.map((p) => {
    const leaves = leafHashesOf(c, p, p.records);
    const body = checkpointBody({ origin: originOf(c.clusterHash, p.peerId), size: leaves.length, root: rootFromLeafHashes(leaves) });
    return signNote(body, [{ name: originOf(c.clusterHash, p.peerId), publicKey: p.publicKey, sign: signerOf(p.key) }]);
  });
  for (const w of c.peers)
    c.peers.forEach((a, k) => {
      if (a === w) return;
      const { checkpoint, authorSignature, cosignature } = cosignCheckpoint(heads[k]!, { name: originOf(c.clusterHash, w.peerId), publicKey: w.publicKey, sign: signerOf(w.key) });
      w.records.push({ case: 'cosignature', value: { origin: checkpoint.origin, size: checkpoint.size, root: checkpoint.root, authorSignature, cosignature } });
    });
}

// ---- serialization: what `AuditLog.append` writes, record after record ----

export const timeOf = (seq: number): string => new Date(Date.UTC(2025, 0, 1) + seq * 1000).toISOString();

export function signedEntries(c: TestCluster, p: TestPeer, records: readonly AuditRecordInput[], key: PrivateKey | Uint8Array = p.key, peerId = p.peerId): Uint8Array[] {
  let prev: Uint8Array = ZERO_HASH;
  return records.map((record, seq) => {
    const s = signEntry({ clusterHash: c.clusterHash, peerId, seq, prev, time: timeOf(seq), record }, key);
    prev = entryLeafHash(s);
    return s;
  });
}
const leafHashesOf = (c: TestCluster, p: TestPeer, records: readonly AuditRecordInput[]) => signedEntries(c, p, records).map(entryLeafHash);

export function serializeLog(c: TestCluster, p: TestPeer, records: readonly AuditRecordInput[] = p.records): Uint8Array {
  return Buffer.concat(signedEntries(c, p, records).map(encodeLogRecord));
}

/** Every peer's log as `verifyAudit` takes it. */
export function logsOf(c: TestCluster, override: Map<string, AuditRecordInput[]> = new Map()): { name: string; bytes: Uint8Array }[] {
  return c.peers.map((p) => ({ name: `${p.org}-${p.party}.log`, bytes: serializeLog(c, p, override.get(p.peerId) ?? p.records) }));
}
