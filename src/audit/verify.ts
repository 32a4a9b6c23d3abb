import { secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, getAddress, hexToBytes, isAddressEqual, keccak256, type Address } from 'viem';
import { approvalQuorum, definitionHash, type ClusterDefinition } from '../cluster/definition.ts';
import { membersOf, partyOrder, type Member } from '../cluster/members.ts';
import { DecodeError } from '../crypto/errors.ts';
import { evalInExponent } from '../crypto/feldman.ts';
import { hash32 } from '../crypto/hash.ts';
import { Fn, N, Point, bytesToBigInt, chunks, pointFromBytes, pointOrIdentityFromBytes } from '../crypto/scalar-point.ts';
import { SCHNORR_PROOF_BYTES, decodeSchnorr, schnorrVerify } from '../crypto/schnorr.ts';
import { BlockPayloadError, blockSigningHash, decodeBlockPayloadArgs } from '../policy/block-payload.ts';
import { CertificateError, certificateApprovals, conflictingApprovals, encodeCertificate, openApproval, openCertificate, type Approval } from '../policy/approval.ts';
import { raiseFloor, slotKey } from '../policy/equivocation.ts';
import { parsePolicy, quorumReason, toTxPolicy, type PolicyFile } from '../policy/policy-file.ts';
import { decodeTransactionArgs, digestOf, evaluateTransaction, signedTransaction, type BatchTransaction } from '../policy/tx-policy.ts';
import type { Reason } from '../policy/verdict.ts';
import { EnvelopeType, OldPublicDataType, SigningRequestType, decodeBody, strictDecode, type KeygenCommit, type KeygenConfirm, type KeygenReveal } from '../protocol/messages.ts';
import { ethAddress } from '../protocol/sign.ts';
import { checkpointBody, openCheckpoint, parseOrigin, type Checkpoint } from './checkpoint.ts';
import {
  AuditError, PUBLIC_KINDS, ZERO_HASH, decodeAuditEntry, entrySigningMessage, verifyEd25519,
  type AuditEntry, type AuditKey, type AuditMessage, type AuditRequest, type AuditSignature, type RecordCase, type RecordMap,
} from './entry.ts';
import { scanLogFile } from './log-file.ts';
import { equalBytes, leafHash, rootFromLeafHashes } from './merkle.ts';

/**
 * The offline auditor (issue 5, `potluck audit verify`): pure over the cluster definition and the
 * log bytes of one or more peers. Every failure is an AuditError naming the log, the entry and the
 * rule. Rules: decode, signer, signature, cluster, author, seq, prev (structure); policy, secret,
 * message (per entry); key, dkg (key ceremonies); request, verdict-missing, verdict, replay, quorum,
 * signer-set, digest, combine, nonce, ecdsa, tx-hash (signatures); disagreement (across logs);
 * evidence (aborts); checkpoint (cosigned tree heads); inclusion (bundles).
 */
export interface LogInput { name: string; bytes: Uint8Array }
export interface VerifyInput {
  definition: ClusterDefinition;
  logs: readonly LogInput[];
  /** Extra signed checkpoints (C2SP signed notes), e.g. collected from witnesses. */
  checkpoints?: readonly string[];
}

export interface Located<K extends RecordCase = RecordCase> {
  view: LogView;
  seq: number;
  entry: AuditEntry;
  value: RecordMap[K];
}
export interface LogView {
  name: string;
  /** The author (first trusted entry's peer id); null if no entry could be trusted. */
  peer: string | null;
  member: Member | null;
  /** Entries that decoded and whose signature by a member verified, in file order. */
  entries: Located[];
  /** Leaf hashes of every record (full logs only). */
  leaves: Uint8Array[] | null;
}

export interface VerdictStatus { org: string; peer: string; verdict: 'approve' | 'refuse' | 'missing' | 'not provided' }
export interface SessionSummary {
  session: string;
  kind: string;
  ok: boolean;
  keyId?: string;
  epoch?: number;
  publicKey?: string;
  requesterOrg?: string;
  signerOrgs?: string[];
  verdicts?: VerdictStatus[];
  digest?: string;
  /** Orgs whose approvals make the session's certificate (issue 11). */
  approvedBy?: string[];
  r?: string;
  s?: string;
  yParity?: number;
  txHash?: string;
  aborted?: { errorClass: string; check: string; culprit: number; culpritOrg: string | null; evidence: 'signed by culprit' | 'payload only' | 'none' | 'invalid'; reportedBy: string[] };
  notes: string[];
}
/** A member's two signed approvals of different contents at one nonce (issue 11). */
export interface Equivocation { org: string; peerId: string; slot: string; digests: string[]; approvals: string[] }
export interface AuditReport {
  ok: boolean;
  failures: AuditError[];
  sessions: SessionSummary[];
  equivocations: Equivocation[];
  logs: { name: string; peer: string | null; org: string | null; entries: number; root: string | null }[];
  notes: string[];
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const utf8 = (s: string) => new TextEncoder().encode(s);
const ONLINE = 'dkls23/online/v1', PRESIGN = 'dkls23/presign/v1';

/** Shared state of one verification run. */
export class AuditContext {
  readonly definition: ClusterDefinition;
  readonly clusterHash: Uint8Array;
  readonly members: Member[];
  readonly failures: AuditError[] = [];
  readonly notes: string[] = [];
  private readonly byPeer: Map<string, Member>;
  private readonly byKey: Map<string, Member>;

  constructor(definition: ClusterDefinition) {
    this.definition = definition;
    this.clusterHash = definitionHash(definition);
    this.members = membersOf(definition);
    this.byPeer = new Map(this.members.map((m) => [m.peerId, m]));
    this.byKey = new Map(this.members.map((m) => [hex(m.publicKey), m]));
  }
  memberByPeer(peerId: string): Member | undefined {
    return this.byPeer.get(peerId);
  }
  memberByKey(pub: Uint8Array): Member | undefined {
    return this.byKey.get(hex(pub));
  }
  fail(rule: string, detail: string, at?: Located | { view: LogView; seq: number | null }): void {
    this.failures.push(new AuditError(rule, detail, at ? { log: at.view.name, entry: at.seq, peer: at.view.peer } : {}));
  }
}

// ---- per-entry admission and log structure ----

/** Decode one SignedAuditEntry and check it is by a member, signed, for this cluster. */
export function admitEntry(ctx: AuditContext, view: LogView, rec: { entry: Uint8Array; signature: Uint8Array }, position: number): Located | undefined {
  const at = { view, seq: position };
  let e: AuditEntry;
  try {
    e = decodeAuditEntry(rec.entry);
  } catch (err) {
    if (!(err instanceof DecodeError)) throw err;
    ctx.fail('decode', `record ${position}: ${err.message}`, at);
    return undefined;
  }
  const member = ctx.memberByPeer(e.peerId);
  if (!member) {
    ctx.fail('signer', `record ${position} is written by ${e.peerId.slice(0, 64)}, not a member of the cluster`, at);
    return undefined;
  }
  if (!verifyEd25519(member.publicKey, entrySigningMessage(e.clusterHash, rec.entry), rec.signature)) {
    ctx.fail('signature', `record ${position}: the signature of ${member.org} (${member.peerId}) does not verify`, at);
    return undefined;
  }
  const loc: Located = { view, seq: e.seq, entry: e, value: e.record.value };
  if (!equalBytes(e.clusterHash, ctx.clusterHash)) {
    ctx.fail('cluster', `entry is for cluster ${hex(e.clusterHash)}, not ${hex(ctx.clusterHash)}`, loc);
    return undefined;
  }
  if (view.peer === null) {
    view.peer = e.peerId;
    view.member = member;
  } else if (view.peer !== e.peerId) {
    ctx.fail('author', `entry by ${member.org} (${e.peerId}) in the log of ${view.member?.org} (${view.peer}): one author per log`, loc);
    return undefined;
  }
  return loc;
}

/** Parse a whole log file: every record admitted, seq 0, 1, 2, … and the prev chain (RFC 9162 leaves). */
export function loadLog(ctx: AuditContext, input: LogInput): LogView {
  const view: LogView = { name: input.name, peer: null, member: null, entries: [], leaves: [] };
  const { records, problem } = scanLogFile(input.bytes);
  // A record that is not admitted (already reported) still takes its position; its successor's
  // prev is not re-reported. `expected` only grows, so one reorder or duplicate is one failure.
  let expected = 0, prevAdmitted = true;
  for (const [i, r] of records.entries()) {
    const leaf = leafHash(r.bytes);
    view.leaves!.push(leaf);
    const loc = admitEntry(ctx, view, r, i);
    if (!loc) {
      expected++;
      prevAdmitted = false;
      continue;
    }
    if (loc.seq !== expected)
      ctx.fail('seq', loc.seq < expected ? `seq ${loc.seq} at record ${i}, after seq ${expected - 1}: entry reordered or duplicated` : `seq ${loc.seq} at record ${i} where ${expected} was expected: entries missing`, loc);
    expected = Math.max(expected, loc.seq + 1);
    if (prevAdmitted && !equalBytes(loc.entry.prev, i === 0 ? ZERO_HASH : view.leaves![i - 1]!)) ctx.fail('prev', `prev is not the leaf hash of the record before (record ${i})`, loc);
    prevAdmitted = true;
    view.entries.push(loc);
  }
  if (problem) ctx.fail('decode', `record ${problem.index} at byte offset ${problem.offset}: ${problem.detail}`, { view, seq: problem.index });
  if (records.length === 0 && !problem) ctx.notes.push(`log ${input.name} is empty`);
  return view;
}

// ---- the session index over every log ----

const of = <K extends RecordCase>(loc: Located, k: K): loc is Located<K> => loc.entry.record.case === k;

class Index {
  readonly byCase = new Map<RecordCase, Located[]>();
  readonly bySession = new Map<string, Located[]>(); // message, request, verdict, sessionEnd, signature by session hex
  readonly keys = new Map<string, Located<'key'>[]>(); // keyId/epoch

  constructor(views: readonly LogView[]) {
    for (const v of views)
      for (const loc of v.entries) {
        const c = loc.entry.record.case;
        let lc = this.byCase.get(c);
        if (!lc) this.byCase.set(c, (lc = []));
        lc.push(loc);
        const s = (loc.value as { session?: Uint8Array }).session;
        if (s && s.length && c !== 'burn') {
          const k = hex(s);
          let l = this.bySession.get(k);
          if (!l) this.bySession.set(k, (l = []));
          l.push(loc);
        }
        if (of(loc, 'key')) {
          const k = `${loc.value.keyId}/${loc.value.epoch}`;
          let lk = this.keys.get(k);
          if (!lk) this.keys.set(k, (lk = []));
          lk.push(loc);
        }
      }
  }
  all<K extends RecordCase>(k: K): Located<K>[] {
    return (this.byCase.get(k) ?? []) as Located<K>[];
  }
  session<K extends RecordCase>(s: string, k: K): Located<K>[] {
    return (this.bySession.get(s) ?? []).filter((l): l is Located<K> => of(l, k));
  }
  key(keyId: string, epoch: number): AuditKey | undefined {
    return this.keys.get(`${keyId}/${epoch}`)?.[0]?.value;
  }
}

const who = (l: Located) => `${l.view.member?.org ?? '?'} (${l.view.name}, entry ${l.seq})`;

// ---- per-entry checks ----

function checkEntries(ctx: AuditContext, views: readonly LogView[]): void {
  for (const v of views)
    for (const loc of v.entries) {
      if (of(loc, 'policy')) {
        if (!equalBytes(sha256(utf8(loc.value.json)), loc.value.sha256)) ctx.fail('policy', 'sha256 is not the hash of the recorded policy JSON', loc);
        else
          try {
            parsePolicy(JSON.parse(loc.value.json));
          } catch (e) {
            ctx.fail('policy', `recorded policy does not parse: ${(e as Error).message}`, loc);
          }
      } else if (of(loc, 'message')) {
        const m = loc.value;
        if (!PUBLIC_KINDS.has(m.kind)) {
          if (m.payload.length) ctx.fail('secret', `a ${m.kind || 'undecodable'} message is logged whole; only its SHA-256 may be`, loc);
          else if (m.payloadSha256.length !== 32) ctx.fail('message', 'payload_sha256 must be 32 bytes', loc);
          if (m.publicValues.length && !(m.kind === 'signMultiply' && m.publicValues.length === 66)) ctx.fail('secret', `public_values are only pk_i ‖ R_i of signMultiply`, loc);
        } else {
          let ok = false;
          try {
            ok = decodeBody(m.payload).case === m.kind;
          } catch {
            ok = false;
          }
          if (!ok) ctx.fail('message', `payload is not a ${m.kind} message`, loc);
          if (m.payloadSha256.length && !equalBytes(m.payloadSha256, sha256(m.payload))) ctx.fail('message', 'payload_sha256 does not match the payload', loc);
        }
      }
    }
}

/** SHA-256 of a logged protocol message and its public values: what two logs must agree on. */
const messageDigest = (m: AuditMessage): string => hex(m.payload.length ? sha256(m.payload) : m.payloadSha256) + '/' + hex(m.publicValues);

/** Two peers' copies of the same message (sender's and each recipient's) must be identical. */
function checkMessageAgreement(ctx: AuditContext, index: Index): void {
  for (const [s, locs] of index.bySession) {
    const seen = new Map<string, { d: string; loc: Located<'message'> }>();
    const reported = new Set<string>();
    for (const loc of locs) {
      if (!of(loc, 'message')) continue;
      const m = loc.value;
      const k = `${m.protocol} ${m.kind} ${m.from}→${m.to}`;
      const d = messageDigest(m);
      const prev = seen.get(k);
      if (!prev) seen.set(k, { d, loc });
      else if (prev.d !== d && !reported.has(k)) {
        reported.add(k);
        ctx.fail('disagreement', `session ${s.slice(0, 16)}: ${who(prev.loc)} and ${who(loc)} logged different ${m.kind} messages from party ${m.from} to ${m.to || 'all'}`, loc);
      }
    }
  }
}

// ---- key ceremonies (spec §2.2, §2.11, §2.12) ----

interface Transcript {
  commits: Map<number, KeygenCommit>;
  reveals: Map<number, KeygenReveal>;
  confirms: Map<number, KeygenConfirm>;
}

/** The public broadcasts of the DKG whose dkgSid is `dkgSid`, from whichever logs hold them. */
function transcriptOf(index: Index, dkgSid: Uint8Array): Transcript | undefined {
  const msgs = index.all('message');
  const sessionOf = msgs.find((l) => {
    if (l.value.kind !== 'keygenReveal' && l.value.kind !== 'keygenConfirm') return false;
    try {
      const b = decodeBody(l.value.payload);
      return (b.case === 'keygenReveal' || b.case === 'keygenConfirm') && equalBytes(b.value.sessionId, dkgSid);
    } catch {
      return false;
    }
  })?.value.session;
  if (!sessionOf) return undefined;
  const t: Transcript = { commits: new Map(), reveals: new Map(), confirms: new Map() };
  for (const l of index.session(hex(sessionOf), 'message')) {
    if (!l.value.payload.length) continue;
    try {
      const b = decodeBody(l.value.payload);
      if (b.case === 'keygenCommit' && !t.commits.has(l.value.from)) t.commits.set(l.value.from, b.value);
      if (b.case === 'keygenReveal' && !t.reveals.has(l.value.from)) t.reveals.set(l.value.from, b.value);
      if (b.case === 'keygenConfirm' && !t.confirms.has(l.value.from)) t.confirms.set(l.value.from, b.value);
    } catch {
      /* reported by checkEntries */
    }
  }
  return t;
}

/**
 * Reproduce a key from its public transcript: dkgSid from the round-1 broadcasts, each Feldman
 * vector opens its commitment and carries valid PoKs, PK = Σ_i F_{i,0} (keygen; refresh: Σ F_{i,0} = O
 * and PK unchanged; reshare: Σ F_{i,0} = the old PK), S_k = Σ_i Σ_m F_{i,m}·k^m (+ old S_k on refresh)
 * for every new index k, and every KeygenConfirm matches. Returns problems and notes.
 */
function reproduceKey(ak: AuditKey, t: Transcript, old: AuditKey | undefined): { problems: string[]; notes: string[] } {
  const problems: string[] = [], notes: string[] = [];
  const kind = ak.kind, th = ak.threshold;
  const P = t.commits.size;
  const idx = Array.from({ length: P }, (_, k) => k + 1);
  if (P < 2 || idx.some((i) => !t.commits.has(i))) return { problems: [`round-1 broadcasts of parties 1..${P} are not all in the logs`], notes };
  const instance = t.commits.get(1)!.instanceId;
  if (idx.some((i) => !equalBytes(t.commits.get(i)!.instanceId, instance))) problems.push('round-1 broadcasts name different ceremonies');
  const dkgSid = hash32('dkg/sid', instance, ...idx.map((i) => t.commits.get(i)!.sessionNonce));
  if (!equalBytes(dkgSid, ak.dkgSession)) problems.push('dkgSid recomputed from the round-1 broadcasts differs from the recorded one');
  const dealers = idx.filter((i) => (t.reveals.get(i)?.feldman.length ?? 0) > 0);
  if (idx.some((i) => !t.reveals.has(i))) problems.push('round-2 broadcasts are missing');
  if ((kind === 'keygen' || kind === 'refresh') && dealers.length !== P) problems.push(`${kind}: ${dealers.length} of ${P} parties dealt`);
  const first = kind === 'refresh' ? 1 : 0;
  const agg: Point[] = Array.from({ length: th }, () => Point.ZERO);
  for (const j of dealers) {
    const r = t.reveals.get(j)!, c = t.commits.get(j)!;
    try {
      if (!equalBytes(r.sessionId, dkgSid)) throw new Error('wrong dkgSid');
      const F = chunks(r.feldman, 33, th, 'feldman').map((b, k) => (k === 0 && kind === 'refresh' ? pointOrIdentityFromBytes(b, 'feldman') : pointFromBytes(b, 'feldman')));
      if (!equalBytes(hash32('dkg/commit', c.sessionNonce, j, r.feldman, r.decommitment), c.commitment)) throw new Error('Feldman vector does not open its commitment');
      if (kind === 'refresh' && !F[0]!.is0()) throw new Error('refresh constant term is not the identity');
      const proofs = chunks(r.proofs, SCHNORR_PROOF_BYTES, th - first, 'proofs');
      for (let k = first; k < th; k++)
        if (!schnorrVerify('dkg/dlog', [dkgSid, j, k], F[k]!, decodeSchnorr(proofs[k - first]!, 'proof'))) throw new Error(`PoK of coefficient ${k} does not verify`);
      F.forEach((p, k) => (agg[k] = agg[k]!.add(p)));
    } catch (e) {
      problems.push(`dealer ${j}: ${(e as Error).message}`);
    }
  }
  let PK: Point;
  try {
    PK = pointFromBytes(ak.publicKey, 'publicKey');
  } catch {
    return { problems: [...problems, 'recorded public key does not decode'], notes };
  }
  if (kind === 'keygen' && !agg[0]!.equals(PK)) problems.push('Σ F_{i,0} is not the recorded public key');
  if (kind === 'refresh') {
    if (!agg[0]!.is0()) problems.push('refresh: Σ F_{i,0} is not the identity');
    if (old && !equalBytes(old.publicKey, ak.publicKey)) problems.push('refresh changed the public key');
  }
  if (kind === 'reshare') {
    const copies = dealers.map((j) => hex(t.reveals.get(j)!.oldPublic));
    if (new Set(copies).size !== 1) problems.push('dealers sent different old public data');
    try {
      const o = strictDecode(OldPublicDataType, t.reveals.get(dealers[0]!)!.oldPublic, 'oldPublic') as unknown as { publicKey: Uint8Array };
      if (!equalBytes(o.publicKey, ak.publicKey)) problems.push('reshare changed the public key');
    } catch {
      problems.push('old public data does not decode');
    }
    if (!agg[0]!.equals(PK)) problems.push('Σ G_{i,0} is not the public key');
    notes.push('reshare: per-dealer constants λ_i·S_i not re-checked (the session-to-old-index map is not logged)');
  }
  // Receivers confirm with their public share, in ascending session index = new key index.
  const receivers = idx.filter((i) => (t.confirms.get(i)?.publicShare.length ?? 0) > 0);
  if (idx.some((i) => !t.confirms.has(i))) problems.push('round-4 broadcasts are missing');
  if (receivers.length !== ak.publicShares.length || ak.parties.length !== ak.publicShares.length) problems.push(`${receivers.length} receivers confirmed, the key records ${ak.publicShares.length} public shares`);
  const oldShares = kind === 'refresh' ? old?.publicShares : undefined;
  if (kind === 'refresh' && !oldShares) notes.push('refresh: previous epoch not in the logs, new public shares checked against the confirmations only');
  receivers.forEach((j, k) => {
    const c = t.confirms.get(j)!;
    let S = evalInExponent(agg, BigInt(k + 1));
    if (oldShares) {
      try {
        S = S.add(pointFromBytes(oldShares[k]!, 'old share'));
      } catch {
        problems.push(`old public share ${k + 1} does not decode`);
      }
    }
    const recorded = ak.publicShares[k];
    if (kind !== 'refresh' || oldShares) {
      if (!recorded || S.is0() || !equalBytes(S.toBytes(true), recorded)) problems.push(`public share ${k + 1} does not follow from the Feldman vectors`);
    }
    try {
      const Sj = pointFromBytes(c.publicShare, 'publicShare');
      if (!recorded || !equalBytes(c.publicShare, recorded)) problems.push(`party ${j} confirmed another public share than recorded`);
      if (!schnorrVerify('dkg/final', [dkgSid, j], Sj, decodeSchnorr(c.proof, 'proof'))) problems.push(`party ${j}: PoK of its share does not verify`);
    } catch {
      problems.push(`party ${j}: confirmation does not decode`);
    }
  });
  for (const i of idx) {
    const c = t.confirms.get(i);
    if (c && (!equalBytes(c.publicKey, ak.publicKey) || !equalBytes(c.sessionId, dkgSid))) problems.push(`party ${i} confirmed another public key or session`);
  }
  return { problems, notes };
}

function checkKeys(ctx: AuditContext, index: Index, summaries: SessionSummary[]): void {
  for (const [k, locs] of index.keys) {
    const first = locs[0]!, ak = first.value;
    const sum: SessionSummary = { session: hex(ak.dkgSession), kind: ak.kind, ok: true, keyId: ak.keyId, epoch: ak.epoch, publicKey: hex(ak.publicKey), notes: [] };
    const before = ctx.failures.length;
    const canon = JSON.stringify(keyFields(ak));
    for (const l of locs.slice(1)) if (JSON.stringify(keyFields(l.value)) !== canon) ctx.fail('disagreement', `key ${k}: ${who(first)} and ${who(l)} recorded different public key data`, l);
    const orgs = ak.parties.map((p) => ctx.memberByKey(p)?.org);
    if (orgs.some((o) => o === undefined)) ctx.fail('key', `key ${k} names a party that is not a cluster member`, first);
    sum.signerOrgs = orgs.map((o) => o ?? '?');
    if (ak.kind === 'pair-setup') sum.notes.push('pair re-setup: no public key data to reproduce');
    else {
      const t = transcriptOf(index, ak.dkgSession);
      if (!t) ctx.fail('dkg', `key ${k}: the ${ak.kind} transcript (public broadcasts) is not in the logs`, first);
      else {
        try {
          const { problems, notes } = reproduceKey(ak, t, index.key(ak.keyId, ak.epoch - 1));
          for (const p of problems) ctx.fail('dkg', `key ${k}: ${p}`, first);
          sum.notes.push(...notes);
        } catch (e) {
          ctx.fail('dkg', `key ${k}: the transcript cannot be evaluated (${(e as Error).message})`, first);
        }
      }
    }
    sum.ok = ctx.failures.length === before;
    summaries.push(sum);
  }
}
const keyFields = (k: AuditKey) => [k.kind, hex(k.dkgSession), hex(k.publicKey), k.threshold, k.parties.map(hex), k.publicShares.map(hex)];

// ---- requests and their digests (re-expressing proto SigningRequest; blobs are logged as versioned hashes) ----

export type LoggedRequest =
  | { client: string; case: 'transaction'; argsJson: string; blobs: Uint8Array[] }
  | { client: string; case: 'blockPayload'; argsJson: string; argsVersion: 1 | 2 }
  | { client: string; case: 'rawDigest'; digest: Uint8Array };

export function decodeLoggedRequest(bytes: Uint8Array): LoggedRequest {
  const m = strictDecode(SigningRequestType, bytes, 'signing request') as unknown as Record<string, Record<string, unknown>> & { body?: string; version?: number; client?: string; rawDigest?: Uint8Array };
  if (m.version !== 1) throw new DecodeError('signing request', 'version is not 1');
  const client = typeof m.client === 'string' ? m.client : '';
  const v = m.body ? m[m.body] : undefined;
  const json = typeof v?.argsJson === 'string' ? v.argsJson : '';
  if (m.body === 'transaction') return { client, case: 'transaction', argsJson: json, blobs: Array.isArray(v?.blobs) ? (v.blobs as Uint8Array[]).map((b) => new Uint8Array(b)) : [] };
  if (m.body === 'blockPayload' && (v?.argsVersion === 1 || v?.argsVersion === 2)) return { client, case: 'blockPayload', argsJson: json, argsVersion: v.argsVersion };
  if (m.body === 'rawDigest' && m.rawDigest instanceof Uint8Array && m.rawDigest.length === 32) return { client, case: 'rawDigest', digest: new Uint8Array(m.rawDigest) };
  throw new DecodeError('signing request', 'no valid body');
}

/** The digest a peer signs for a request (spec §2.8): tx signing hash, block signing hash, or the raw digest. */
export function digestOfRequest(r: LoggedRequest): Uint8Array | undefined {
  try {
    if (r.case === 'transaction') return hexToBytes(digestOf(JSON.parse(r.argsJson)));
    if (r.case === 'blockPayload') return hexToBytes(blockSigningHash(decodeBlockPayloadArgs(JSON.parse(r.argsJson), r.argsVersion)));
    return r.digest;
  } catch {
    return undefined;
  }
}

// ---- verdict replay: the pure part of peer/request-policy.ts `evaluate`, on what the log holds ----

const R = (rule: string, ok: boolean, detail: string): Reason => ({ rule, ok, detail });
/** Rules whose outcome depends on state the log does not hold: taken from the record, not replayed. */
export const NOT_REPLAYED = ['rate-limit', 'nonce-window'] as const;
/** Rules produced by policy/ functions shared with the peer: their detail text must match too. */
const EXACT = new Set(['args', 'chain-id', 'from', 'to', 'value-zero', 'gas-cap', 'fee-cap', 'priority-fee-cap', 'access-list', 'calldata-frames', 'calldata-empty', 'blob-fee-cap', 'blob-count', 'equivocation', 'org-quorum']);

export interface ReplayInput {
  policy: PolicyFile | null;
  request: LoggedRequest;
  role: 'requester' | 'approver';
  requesterOrg: string;
  threshold: number | undefined;
  keyAddresses: string[];
  blobHashes: Uint8Array[];
  /** The record at the same (chainId, from, nonce) when this verdict was made, rebuilt from this peer's log. */
  recorded: BatchTransaction | null;
  /** The recorded reasons (for the rules that are not replayed). */
  recordedReasons: readonly Reason[];
}

export function replayReasons(x: ReplayInput): Reason[] {
  const f = x.policy, req = x.request;
  const taken = (rule: string) => x.recordedReasons.find((r) => r.rule === rule) ?? R(rule, false, 'not recorded');
  const pre: Reason[] = [];
  if (!f) pre.push(R('no-policy', false, '(no policy file)'));
  else {
    if (x.role === 'requester' && req.case !== 'rawDigest') pre.push(taken('rate-limit'));
    if (req.case !== 'rawDigest' && x.threshold !== undefined) {
      const q = f.quorum, t = x.threshold;
      pre.push(R('org-quorum', !(q.distinctOrgs > t || q.otherOrgs > t - 1), 'requester: can a t-set meet this org\'s minimum'));
    }
  }
  if (req.case === 'rawDigest') return [...pre, R('raw-digest', f?.rawDigests === true, 'rawDigests')];
  if (req.case === 'blockPayload') {
    try {
      const args = decodeBlockPayloadArgs(JSON.parse(req.argsJson), req.argsVersion);
      const allowed = f?.blockPayloads?.chainIds;
      const sender = args.senderAddress;
      return [
        ...pre, R('block-args', true, ''),
        !allowed ? R('block-disabled', false, '') : R('block-chain-id', allowed.some((c) => BigInt(c) === args.chainId), ''),
        R('block-sender', sender === null || x.keyAddresses.some((a) => isAddressEqual(a as Address, sender)), ''),
      ];
    } catch (e) {
      if (!(e instanceof BlockPayloadError) && !(e instanceof SyntaxError)) throw e;
      return [...pre, R('block-args', false, e.message)];
    }
  }
  let args: unknown;
  try {
    args = JSON.parse(req.argsJson);
  } catch (e) {
    return [...pre, R('args', false, `TransactionArgs are not JSON: ${(e as Error).message}`)];
  }
  const decoded = decodeTransactionArgs(args);
  if (!decoded.ok || !f) return decoded.ok ? pre : [...pre, R('args', false, decoded.problems.join('; '))];
  const tx = decoded.tx;
  const from = x.keyAddresses.find((a) => isAddressEqual(a as Address, tx.from)) ?? x.keyAddresses[0] ?? '0x0000000000000000000000000000000000000000';
  const v = evaluateTransaction(toTxPolicy(f, from), args, { recorded: x.recorded });
  // Blobs handed over were checked against their KZG commitments and decoded by the peer; the log
  // keeps only their versioned hashes, so 'blob-content' is taken from the record if they match.
  const reasons = v.reasons.map((r) => {
    if (r.rule !== 'blob-content' || x.blobHashes.length === 0) return r;
    const want = (tx.blobVersionedHashes ?? []).map((h) => h.toLowerCase());
    const got = x.blobHashes.map((h) => bytesToHex(h));
    return want.length === got.length && want.every((h, i) => h === got[i]) ? taken('blob-content') : R('blob-content', false, 'logged blob hashes differ from blobVersionedHashes');
  });
  // As the peer evaluates: the cheap rules first; a refusal there stops before the blobs' content.
  const cheap = [...pre, taken('nonce-window'), ...reasons.filter((r) => r.rule !== 'blob-content')];
  if (!cheap.every((r) => r.ok)) return cheap;
  return [...pre, taken('nonce-window'), ...reasons];
}

/** Compare a replay with the record: same rules in the same order, same outcomes, same detail where shared code made it. */
export function compareReasons(recorded: readonly Reason[], replayed: readonly Reason[]): string | undefined {
  if (recorded.length !== replayed.length) return `${recorded.length} reasons recorded, ${replayed.length} on replay (${replayed.map((r) => r.rule).join(', ')})`;
  for (const [i, a] of recorded.entries()) {
    const b = replayed[i]!;
    if (a.rule !== b.rule) return `reason ${i} is '${a.rule}', replay gives '${b.rule}'`;
    if (a.ok !== b.ok) return `rule '${a.rule}' recorded ${a.ok ? 'ok' : 'refused'}, replay gives ${b.ok ? 'ok' : 'refused'}: ${b.detail}`;
    if (EXACT.has(a.rule) && !(a.rule === 'org-quorum' && b.detail.startsWith('requester:')) && a.detail !== b.detail) return `rule '${a.rule}' detail differs on replay: "${a.detail}" vs "${b.detail}"`;
  }
  return undefined;
}

/** A view's request/verdict history, in log order, for replays and lookups. */
class PeerHistory {
  /** Changes of this peer's nonce records, in log order: a first approval claims a slot, a signature raises its floor, a release frees it. */
  private readonly slotEvents: { seq: number; slot: string; kind: 'claim' | 'raise' | 'release'; tx?: BatchTransaction }[] = [];
  constructor(readonly view: LogView) {
    const txOf = (bytes: Uint8Array): BatchTransaction | undefined => {
      try {
        const r = decodeLoggedRequest(bytes);
        if (r.case !== 'transaction') return undefined;
        const d = decodeTransactionArgs(JSON.parse(r.argsJson));
        return d.ok ? d.tx : undefined;
      } catch {
        return undefined; // replay reports it
      }
    };
    for (const l of view.entries) {
      if (of(l, 'verdict') && l.value.approve) {
        const req = this.requestOf(l);
        const tx = req && txOf(req.bytes);
        if (tx) this.slotEvents.push({ seq: l.seq, slot: slotKey(tx), kind: 'claim', tx });
      } else if (of(l, 'request')) {
        const tx = txOf(l.value.request);
        if (tx) this.slotEvents.push({ seq: l.seq, slot: slotKey(tx), kind: 'raise', tx });
      } else if (of(l, 'incident') && l.value.kind === 'slot-release') {
        try {
          const j = JSON.parse(new TextDecoder().decode(l.value.evidence)) as { chain_id: string; from: string; nonce: string };
          this.slotEvents.push({ seq: l.seq, slot: `${j.chain_id}/${j.from.toLowerCase()}/${j.nonce}`, kind: 'release' });
        } catch {
          /* an incident without a readable record frees nothing here */
        }
      }
    }
  }
  /** The request a verdict judged: carried by the verdict, or (logs before issue 11) its session's AuditRequest. */
  requestOf(v: Located<'verdict'>): { bytes: Uint8Array; loc?: Located<'request'> } | undefined {
    if (v.value.request.length) return { bytes: v.value.request };
    if (v.value.session.length) {
      const loc = this.view.entries.filter((l): l is Located<'request'> => of(l, 'request') && l.seq < v.seq && equalBytes(l.value.session, v.value.session)).pop();
      if (loc) return { bytes: loc.value.request, loc };
    }
    return undefined;
  }
  /** The record at `slot` just before entry `before`, as the peer's SQLite held it (store/policy-records.ts). */
  recordedAt(slot: string, before: number): BatchTransaction | null {
    let rec: BatchTransaction | null = null;
    for (const e of this.slotEvents) {
      if (e.seq >= before) break;
      if (e.slot !== slot) continue;
      if (e.kind === 'release') rec = null;
      else if (e.kind === 'claim') rec ??= e.tx!;
      else if (rec) rec = raiseFloor(rec, e.tx!);
    }
    return rec;
  }
  /** AuditKeys known to this peer before `seq`, latest epoch per key id. */
  keysBefore(seq: number): AuditKey[] {
    const latest = new Map<string, AuditKey>();
    for (const l of this.view.entries) if (l.seq < seq && of(l, 'key') && l.value.kind !== 'pair-setup') latest.set(l.value.keyId, l.value);
    return [...latest.values()];
  }
  policyBefore(sha: Uint8Array, seq: number): Located<'policy'> | undefined {
    return this.view.entries.filter((l): l is Located<'policy'> => of(l, 'policy') && l.seq < seq && equalBytes(l.value.sha256, sha)).pop();
  }
  /** The verdict this peer made in the approval round `requestId` (issue 11). */
  verdictOfRound(requestId: Uint8Array): Located<'verdict'> | undefined {
    return this.view.entries.find((l): l is Located<'verdict'> => of(l, 'verdict') && l.value.requestId.length === 32 && equalBytes(l.value.requestId, requestId));
  }
  /** This peer's AuditRequest of a signing session. */
  requestOfSession(session: Uint8Array): Located<'request'> | undefined {
    return this.view.entries.find((l): l is Located<'request'> => of(l, 'request') && equalBytes(l.value.session, session));
  }
}

function replayAll(ctx: AuditContext, index: Index, histories: Map<LogView, PeerHistory>): void {
  for (const v of index.all('verdict'))
    try {
      replayOne(ctx, index, histories.get(v.view)!, v);
    } catch (e) {
      ctx.fail('replay', `the verdict cannot be replayed (${(e as Error).message})`, v);
    }
}

function replayOne(ctx: AuditContext, index: Index, h: PeerHistory, v: Located<'verdict'>): void {
  const req = h.requestOf(v);
  if (!req) {
    ctx.fail('replay', 'no request is recorded for this verdict', v);
    return;
  }
  let request: LoggedRequest;
  try {
    request = decodeLoggedRequest(req.bytes);
  } catch (e) {
    ctx.fail('replay', `recorded request does not decode: ${(e as Error).message}`, v);
    return;
  }
  let policy: PolicyFile | null = null;
  if (v.value.policySha256.length) {
    const p = h.policyBefore(v.value.policySha256, v.seq);
    if (!p) {
      ctx.fail('policy', `verdict names policy ${hex(v.value.policySha256).slice(0, 16)}…, which is not recorded before it`, v);
      return;
    }
    try {
      policy = parsePolicy(JSON.parse(p.value.json));
    } catch {
      return; // reported by checkEntries
    }
  }
  const ar = req.loc?.value;
  const role = v.value.role === 'approver' ? 'approver' : 'requester';
  const keys = h.keysBefore(v.seq);
  const own = ar ? index.key(ar.keyId, ar.epoch) : undefined;
  const addr = (k: AuditKey) => ethAddressOf(k.publicKey);
  let recorded: BatchTransaction | null = null;
  if (request.case === 'transaction') {
    try {
      const d = decodeTransactionArgs(JSON.parse(request.argsJson));
      if (d.ok) recorded = h.recordedAt(slotKey(d.tx), v.seq);
    } catch {
      /* args refusal replays */
    }
  }
  const replayed = replayReasons({
    policy, request, role, requesterOrg: ar?.requesterOrg ?? v.view.member?.org ?? '',
    threshold: (own ?? keys[keys.length - 1])?.threshold,
    keyAddresses: own ? [addr(own)] : keys.map(addr),
    // An approver logs no AuditRequest: its verdict carries the request, blobs as their hashes.
    blobHashes: ar?.blobHashes ?? (request.case === 'transaction' ? request.blobs : []), recorded, recordedReasons: v.value.reasons,
  });
  const why = compareReasons(v.value.reasons, replayed);
  if (why) ctx.fail('replay', `verdict does not replay under the recorded policy: ${why}`, v);
  else if (v.value.approve !== replayed.every((r) => r.ok) || (v.value.approve && replayed.length === 0)) ctx.fail('replay', 'approve does not follow from the reasons', v);
  const digest = digestOfRequest(request);
  if (digest && v.value.digest.length && !equalBytes(digest, v.value.digest)) ctx.fail('digest', 'verdict digest is not the digest of its request', v);
}

const ethAddressOf = (pk: Uint8Array): string => {
  try {
    return getAddress(ethAddress(pointFromBytes(pk, 'publicKey')));
  } catch {
    return '0x0000000000000000000000000000000000000000';
  }
};

// ---- signatures (spec §2.7 flight 4, §2.8) ----

function checkSignatures(ctx: AuditContext, index: Index, views: readonly LogView[], histories: Map<LogView, PeerHistory>, summaries: SessionSummary[], focus?: string): Set<string> {
  let sessions = new Set<string>();
  for (const c of ['request', 'signature'] as const) for (const l of index.all(c)) sessions.add(hex(l.value.session));
  for (const l of index.all('message')) if (l.value.protocol === ONLINE) sessions.add(hex(l.value.session));
  if (focus !== undefined) sessions = new Set([...sessions].filter((s) => s === focus));
  for (const sid of sessions) {
    const before = ctx.failures.length;
    const sum: SessionSummary = { session: sid, kind: 'signature', ok: true, notes: [] };
    summaries.push(sum);
    try {
      signatureSession(ctx, index, views, histories, sid, sum);
    } catch (e) {
      ctx.fail('decode', `session ${sid.slice(0, 16)}: recorded values cannot be evaluated (${(e as Error).message})`, index.bySession.get(sid)?.[0]);
    }
    sum.ok = ctx.failures.length === before;
  }
  return sessions;
}

function signatureSession(ctx: AuditContext, index: Index, views: readonly LogView[], histories: Map<LogView, PeerHistory>, sid: string, sum: SessionSummary): void {
  const session = hexToBytes(`0x${sid}`);
  const reqs = index.session(sid, 'request');
  const sigs = index.session(sid, 'signature');
  const anchor = sigs[0] ?? index.bySession.get(sid)![0]!;
  if (reqs.length === 0) {
    if (sigs.length || index.session(sid, 'message').length) ctx.fail('verdict-missing', `session ${sid.slice(0, 16)}: no peer recorded the request`, anchor);
    return;
  }
  const canonLoc = reqs.find((l) => l.value.role === 'requester') ?? reqs[0]!;
  const q = canonLoc.value;
  for (const l of reqs) {
    const why = requestDifference(q, l.value);
    if (why) ctx.fail('disagreement', `session ${sid.slice(0, 16)}: ${who(canonLoc)} and ${who(l)} recorded different requests (${why})`, l);
    if (l.value.role !== 'requester' && l.value.role !== 'cosigner') ctx.fail('request', `unknown role "${l.value.role}"`, l);
  }
  Object.assign(sum, { keyId: q.keyId, epoch: q.epoch, requesterOrg: q.requesterOrg, signerOrgs: q.signerOrgs, digest: hex(q.digest) });
  const key = index.key(q.keyId, q.epoch);
  if (!key) {
    ctx.fail('key', `session ${sid.slice(0, 16)}: key ${q.keyId} epoch ${q.epoch} is not recorded in any log`, canonLoc);
    return;
  }
  sum.publicKey = hex(key.publicKey);
  // The signer set: key indices → members → orgs.
  const signerMembers = q.signers.map((p) => (p >= 1 && p <= key.parties.length ? ctx.memberByKey(key.parties[p - 1]!) : undefined));
  if (q.signers.length !== key.threshold || signerMembers.some((m) => !m) || q.signers.some((p, i) => i > 0 && p <= q.signers[i - 1]!)) {
    ctx.fail('signer-set', `signers [${q.signers.join(', ')}] are not ${key.threshold} ascending holders of the key`, canonLoc);
    return;
  }
  const orgs = signerMembers.map((m) => m!.org);
  if (orgs.join(',') !== q.signerOrgs.join(',')) ctx.fail('signer-set', `signer orgs recorded as [${q.signerOrgs.join(', ')}], the key's parties are [${orgs.join(', ')}]`, canonLoc);
  sum.signerOrgs = orgs;
  const requesterView = canonLoc.value.role === 'requester' ? canonLoc.view : undefined;
  const requester = requesterView?.member ?? undefined;
  if (requester && requester.org !== q.requesterOrg) ctx.fail('signer-set', `requester is ${requester.org}, the request names ${q.requesterOrg}`, canonLoc);
  if (!requesterView && !signerMembers.some((m) => m!.org === q.requesterOrg && views.some((v) => v.peer === m!.peerId))) sum.notes.push("the requester's log is not provided");
  // The digest, recomputed from the request.
  let request: LoggedRequest | undefined;
  try {
    request = decodeLoggedRequest(q.request);
  } catch (e) {
    ctx.fail('digest', `request does not decode: ${(e as Error).message}`, canonLoc);
  }
  if (request?.case === 'transaction' && (request.blobs.length !== q.blobHashes.length || request.blobs.some((b, i) => !equalBytes(b, q.blobHashes[i]!))))
    ctx.fail('request', 'the logged request must carry each blob as its versioned hash, as in blob_hashes', canonLoc);
  const digest = request && digestOfRequest(request);
  if (request && !digest) ctx.fail('digest', 'no digest can be computed from the recorded request', canonLoc);
  if (digest && !equalBytes(digest, q.digest)) ctx.fail('digest', 'recorded digest is not the digest of the recorded request', canonLoc);
  // Did the session reach flight 4? Every signer whose partial left, or all of them once there is a
  // signature, must have approved; a session declined before that only reports the verdicts.
  const partialFrom = new Set(index.session(sid, 'message').filter((l) => l.value.kind === 'signPartial').map((l) => l.value.from));
  const wentOn = sigs.length > 0 || partialFrom.size > 0;
  if (!wentOn) sum.notes.push('the session stopped before flight 4 (declined or aborted)');
  // The cluster's org-quorum rule (cluster definition; same rule as peer/signer-set.ts), via policy-file.ts quorumReason.
  const qr = quorumReason({ quorum: ctx.definition.quorum } as PolicyFile, { signerOrgs: orgs, requesterOrg: q.requesterOrg });
  const requesterIn = requester ? signerMembers.some((m) => m!.peerId === requester.peerId) : orgs.includes(q.requesterOrg);
  if (wentOn && (!qr.ok || !requesterIn))
    ctx.fail('quorum', `signer set [${orgs.join(', ')}] for ${q.requesterOrg} violates the cluster quorum (${ctx.definition.quorum.distinctOrgs} orgs, ${ctx.definition.quorum.otherOrgs} besides the requester's)${requesterIn ? '' : ': the requester is not in the set'}`, canonLoc);
  // The approval certificate (issue 11): c approvals of exactly this digest by the key's holders,
  // every signer among them; each approver's verdict in its own log, where that log is provided.
  const holders = key.parties.map((p) => ctx.memberByKey(p)).filter((m): m is Member => m !== undefined);
  const c = approvalQuorum(key.parties.length, ctx.definition.faulty);
  const certs = index.session(sid, 'certificate');
  let approvals: Approval[] | undefined;
  for (const cl of certs) {
    if (approvals && !equalBytes(cl.value.certificate, encodeCertificate(approvals))) ctx.fail('disagreement', `session ${sid.slice(0, 16)}: ${who(cl)} logged another certificate than ${who(certs[0]!)}`, cl);
    if (approvals) continue;
    try {
      approvals = openCertificate(cl.value.certificate, { clusterHash: ctx.clusterHash, approvers: holders, quorum: c, digest: q.digest, keyAddress: ethAddressOf(key.publicKey) });
    } catch (e) {
      if (!(e instanceof CertificateError)) throw e;
      ctx.fail('certificate', `session ${sid.slice(0, 16)}: ${e.message}`, cl);
    }
  }
  if (!certs.length && wentOn) ctx.fail('certificate', `session ${sid.slice(0, 16)}: no approval certificate is logged for it (a signature needs ${c} approvals of its digest)`, canonLoc);
  sum.approvedBy = approvals?.map((a) => a.approverOrg) ?? [];
  sum.verdicts = [];
  for (const [k, m] of signerMembers.map((x) => x!).entries()) {
    const signed = sigs.length > 0 || partialFrom.has(q.signers[k]!);
    const view = views.find((v) => v.peer === m.peerId);
    if (approvals && signed && !approvals.some((a) => a.approver === m.peerId)) ctx.fail('certificate', `session ${sid.slice(0, 16)}: ${m.org} signed without being one of the approvers`, canonLoc);
    if (!view) continue;
    const h = histories.get(view)!;
    const r = h.requestOfSession(session);
    if (r && requester && (r.value.role === 'requester') !== (m.peerId === requester.peerId)) ctx.fail('verdict', `${m.org} recorded role ${r.value.role}`, r);
    if (signed && !r) ctx.fail('verdict-missing', `session ${sid.slice(0, 16)}: the log of ${m.org} holds no request for it`, { view, seq: null });
  }
  for (const a of approvals ?? []) {
    const view = views.find((v) => v.peer === a.approver);
    if (!view) {
      sum.verdicts.push({ org: a.approverOrg, peer: a.approver, verdict: 'not provided' });
      continue;
    }
    const v = histories.get(view)!.verdictOfRound(a.requestId);
    if (!v) {
      ctx.fail('verdict-missing', `session ${sid.slice(0, 16)}: the log of ${a.approverOrg} holds no verdict for its approval (round ${hex(a.requestId).slice(0, 16)})`, { view, seq: null });
      sum.verdicts.push({ org: a.approverOrg, peer: a.approver, verdict: 'missing' });
      continue;
    }
    sum.verdicts.push({ org: a.approverOrg, peer: a.approver, verdict: v.value.approve ? 'approve' : 'refuse' });
    if (!v.value.approve) ctx.fail('verdict', `session ${sid.slice(0, 16)}: ${a.approverOrg} refused (${v.value.reasons.filter((x) => !x.ok).map((x) => x.rule).join(', ')}) yet its approval is in the certificate`, v);
    if (!equalBytes(v.value.digest, q.digest)) ctx.fail('digest', `${a.approverOrg}'s verdict is for another digest`, v);
  }
  for (const v of views)
    if (v.peer && !signerMembers.some((m) => m!.peerId === v.peer) && index.session(sid, 'message').some((l) => l.view === v))
      ctx.fail('signer-set', `${v.member?.org} took part in session ${sid.slice(0, 16)} without being in its signer set`, { view: v, seq: null });
  // The signature.
  const ends = index.session(sid, 'sessionEnd').filter((l) => !l.value.ok);
  if (sigs.length === 0) {
    if (!ends.length) sum.notes.push('no signature recorded');
    return;
  }
  const sigLoc = sigs.find((l) => l.view === requesterView) ?? sigs[0]!;
  const sig = sigLoc.value;
  for (const l of sigs) {
    const a = l.value;
    if (!equalBytes(a.r, sig.r) || !equalBytes(a.s, sig.s) || a.yParity !== sig.yParity || !equalBytes(a.digest, sig.digest) || !equalBytes(a.txHash, sig.txHash) || a.address.toLowerCase() !== sig.address.toLowerCase())
      ctx.fail('disagreement', `session ${sid.slice(0, 16)}: ${who(sigLoc)} and ${who(l)} recorded different signatures`, l);
  }
  Object.assign(sum, { r: hex(sig.r), s: hex(sig.s), yParity: sig.yParity, ...(sig.txHash.length ? { txHash: hex(sig.txHash) } : {}) });
  if (!equalBytes(sig.digest, q.digest)) ctx.fail('digest', 'the signature is for another digest than the request', sigLoc);
  checkSignatureMath(ctx, index, sid, key, q, sig, sigLoc, request, sum);
}

function requestDifference(a: AuditRequest, b: AuditRequest): string | undefined {
  if (a.requesterOrg !== b.requesterOrg) return 'requester org';
  if (a.keyId !== b.keyId || a.epoch !== b.epoch) return 'key';
  if (a.signers.join(',') !== b.signers.join(',') || a.signerOrgs.join(',') !== b.signerOrgs.join(',')) return 'signer set';
  if (!equalBytes(a.request, b.request)) return 'request bytes';
  if (a.blobHashes.map(hex).join(',') !== b.blobHashes.map(hex).join(',')) return 'blob hashes';
  if (!equalBytes(a.digest, b.digest)) return 'digest';
  return undefined;
}

function checkSignatureMath(ctx: AuditContext, index: Index, sid: string, key: AuditKey, q: AuditRequest, sig: AuditSignature, at: Located, request: LoggedRequest | undefined, sum: SessionSummary): void {
  const r = bytesToBigInt(sig.r), s = bytesToBigInt(sig.s);
  if (sig.r.length !== 32 || sig.s.length !== 32 || r === 0n || r >= N || s === 0n || s > N >> 1n) {
    ctx.fail('ecdsa', 'r, s are not canonical 32-byte low-s scalars', at);
    return;
  }
  let PK: Point;
  try {
    PK = pointFromBytes(key.publicKey, 'publicKey');
  } catch {
    ctx.fail('key', 'recorded public key does not decode', at);
    return;
  }
  // Σw_i / Σu_i from the flight-4 broadcasts is s or n − s (spec §2.7 combine, §2.8 low-s).
  const partials = new Map<number, { u: bigint; w: bigint }>();
  for (const l of index.session(sid, 'message')) {
    if (l.value.kind !== 'signPartial' || partials.has(l.value.from)) continue;
    try {
      const b = decodeBody(l.value.payload);
      if (b.case !== 'signPartial') continue;
      if (!equalBytes(b.value.digest, sig.digest) || !equalBytes(b.value.sessionId, hexToBytes(`0x${sid}`))) ctx.fail('digest', `party ${l.value.from}'s partial is for another digest or session`, l);
      partials.set(l.value.from, { u: bytesToBigInt(b.value.u) % N, w: bytesToBigInt(b.value.w) % N });
    } catch {
      /* reported by checkEntries */
    }
  }
  const missing = q.signers.filter((p) => !partials.has(p));
  let flipped: boolean | undefined;
  if (missing.length) ctx.fail('combine', `the flight-4 partials of parties ${missing.join(', ')} are not in the logs`, at);
  else {
    let U = 0n, W = 0n;
    for (const p of q.signers) {
      U = (U + partials.get(p)!.u) % N;
      W = (W + partials.get(p)!.w) % N;
    }
    const s2 = U === 0n ? 0n : Fn.div(W, U);
    if (s2 !== s && N - s2 !== s) ctx.fail('combine', 'Σw_i / Σu_i of the logged partials is neither s nor n − s', at);
    else flipped = s2 !== s;
  }
  // r = x(Σ R_i) mod n, Σ pk_i = PK, from the public values of the presign session's flight 3.
  const presign = index.all('sessionEnd').find((l) => l.value.protocol === PRESIGN && l.value.ok && equalBytes(l.value.output, hexToBytes(`0x${sid}`)));
  if (!presign) sum.notes.push('r not re-derived: the presign session is not in the logs');
  else {
    const pub = new Map<number, Uint8Array>();
    for (const l of index.session(hex(presign.value.session), 'message'))
      if (l.value.kind === 'signMultiply' && l.value.publicValues.length === 66 && !pub.has(l.value.from)) pub.set(l.value.from, l.value.publicValues);
    const lack = q.signers.filter((p) => !pub.has(p));
    if (lack.length) sum.notes.push(`r not re-derived: R_i of parties ${lack.join(', ')} not logged`);
    else {
      try {
        let Rsum = Point.ZERO, pkSum = Point.ZERO;
        for (const p of q.signers) {
          const v = pub.get(p)!;
          pkSum = pkSum.add(pointFromBytes(v.subarray(0, 33), 'pk'));
          Rsum = Rsum.add(pointFromBytes(v.subarray(33), 'R'));
        }
        const Ra = Rsum.toAffine();
        if (Ra.x % N !== r) ctx.fail('nonce', 'r is not x(Σ R_i) mod n of the presign session', at);
        else if (flipped !== undefined && (Number(Ra.y & 1n) ^ (flipped ? 1 : 0)) !== sig.yParity) ctx.fail('nonce', 'y-parity does not follow from R and the low-s flip', at);
        if (!pkSum.equals(PK)) ctx.fail('nonce', 'Σ pk_i of the presign session is not the public key', at);
      } catch {
        ctx.fail('nonce', 'logged R_i / pk_i do not decode', at);
      }
    }
  }
  // The signature verifies against the group key over the digest recomputed from the request.
  const digest = request ? digestOfRequest(request) : undefined;
  if (digest) {
    const compact = new Uint8Array(64);
    compact.set(sig.r);
    compact.set(sig.s, 32);
    let ok = false;
    try {
      ok = secp256k1.verify(compact, digest, key.publicKey, { prehash: false, lowS: true }) && new secp256k1.Signature(r, s, sig.yParity).recoverPublicKey(digest).equals(PK);
    } catch {
      ok = false;
    }
    if (!ok) ctx.fail('ecdsa', 'signature does not verify (or recover) against the group key over the digest of the recorded request', at);
    else if (sig.address && sig.address.toLowerCase() !== ethAddress(PK)) ctx.fail('ecdsa', `recorded address ${sig.address} is not the key's address`, at);
  }
  if (request?.case === 'transaction') {
    try {
      const raw = signedTransaction(JSON.parse(request.argsJson), { r, s, yParity: sig.yParity });
      if (!equalBytes(hexToBytes(keccak256(raw)), sig.txHash)) ctx.fail('tx-hash', 'tx_hash is not keccak256 of the signed transaction rebuilt from the request', at);
    } catch (e) {
      ctx.fail('tx-hash', `the signed transaction cannot be rebuilt: ${(e as Error).message}`, at);
    }
  } else if (sig.txHash.length) ctx.fail('tx-hash', 'tx_hash recorded for a request that is not a transaction', at);
}

// ---- approvals: one member, two contents at one nonce (issue 11) ----

/**
 * Every approval in the logs (given, and inside certificates), checked against the cluster's
 * members; a member that approved two different contents at one transaction slot equivocated,
 * and its two signed approvals are the evidence. With at most f faulty members no such pair can
 * both be certified; beyond f, this names who broke it.
 */
function checkConflictingApprovals(ctx: AuditContext, index: Index): Equivocation[] {
  const approvers = ctx.members.map((m) => ({ org: m.org, peerId: m.peerId, publicKey: m.publicKey }));
  const found: Approval[] = [];
  const where = new Map<string, Located>();
  const add = (bytes: Uint8Array, loc: Located) => {
    const k = hex(bytes);
    if (where.has(k)) return;
    try {
      found.push(openApproval(bytes, ctx.clusterHash, approvers));
      where.set(k, loc);
    } catch {
      /* an invalid approval proves nothing; certificates holding one fail the 'certificate' rule */
    }
  };
  for (const l of index.all('approval')) add(l.value.approval, l);
  for (const l of index.all('certificate'))
    try {
      for (const b of certificateApprovals(l.value.certificate)) add(b, l);
    } catch {
      /* reported by the 'certificate' rule */
    }
  // A forced `policy release` by the approver explains the second approval but does not excuse it: the
  // slot lost its one-content guarantee at that org, which is what an auditor must review.
  const releases = index.all('incident').filter((l) => l.value.kind === 'slot-release');
  return conflictingApprovals(found).map((x) => {
    const a = where.get(hex(x.first.bytes))!, b = where.get(hex(x.second.bytes))!;
    const released = releases.find((l) => l.view.peer === x.approver && l.value.detail.startsWith(`released ${x.slot} `));
    ctx.fail('equivocation', `${x.approverOrg} (${x.approver}) approved two different requests at ${x.slot}: digest 0x${hex(x.first.digest)} (${who(a)}) and digest 0x${hex(x.second.digest)} (${who(b)}); both approvals are signed by its identity key${released ? `; it released that slot (${who(released)}: ${released.value.detail.slice(0, 200)}), review that release` : ''}`, b);
    return { org: x.approverOrg, peerId: x.approver, slot: x.slot, digests: ['0x' + hex(x.first.digest), '0x' + hex(x.second.digest)], approvals: ['0x' + hex(x.first.bytes), '0x' + hex(x.second.bytes)] };
  });
}

// ---- aborts: culprit and evidence ----

function checkAborts(ctx: AuditContext, index: Index, summaries: SessionSummary[], focus?: string): void {
  const bySession = new Map(summaries.filter((s) => s.kind === 'signature').map((s) => [s.session, s]));
  const groups = new Map<string, Located<'sessionEnd'>[]>();
  for (const l of index.all('sessionEnd'))
    if (!l.value.ok && (focus === undefined || hex(l.value.session) === focus)) groups.set(hex(l.value.session), [...(groups.get(hex(l.value.session)) ?? []), l]);
  for (const [sid, ends] of groups) {
    let sum = bySession.get(sid);
    if (!sum) summaries.push((sum = { session: sid, kind: kindOfProtocol(ends[0]!.value.protocol), ok: true, notes: [] }));
    const e = ends.find((l) => l.value.culprit > 0) ?? ends[0]!;
    const c = e.value.culprit;
    const member = c > 0 ? culpritMember(ctx, index, e) : undefined;
    let evidence: NonNullable<SessionSummary['aborted']>['evidence'] = e.value.evidence.length ? 'payload only' : 'none';
    if (e.value.evidence.length) {
      const env = decodeEnvelope(e.value.evidence);
      if (env) {
        const sender = ctx.members[env.from - 1];
        const ok = !!sender && equalBytes(env.clusterHash, ctx.clusterHash) && verifyEd25519(sender.publicKey, env.unsigned, env.signature);
        if (!ok) {
          evidence = 'invalid';
          ctx.fail('evidence', 'the evidence envelope is not validly signed by a member of this cluster', e);
        } else if (member && sender.peerId !== member.peerId) {
          evidence = 'invalid';
          ctx.fail('evidence', `the evidence is signed by ${sender.org}, the culprit is ${member.org}`, e);
        } else evidence = 'signed by culprit';
      }
    }
    sum.aborted = {
      errorClass: e.value.errorClass, check: e.value.check, culprit: c, culpritOrg: member?.org ?? null, evidence,
      reportedBy: [...new Set(ends.filter((l) => c === 0 || l.value.culprit === c).map((l) => l.view.member?.org ?? '?'))],
    };
    for (const b of index.all('burn')) if (hex(b.value.session) === sid) sum.notes.push(`${b.view.member?.org} burned its pair with ${b.value.peerOrg} (${b.value.check})`);
  }
}

const kindOfProtocol = (p: string) => (p === PRESIGN ? 'presign' : p === ONLINE ? 'signature' : p === 'dkls23/dkg/v1' ? 'dealing' : p.replace(/^dkls23\//, '').replace(/\/v1$/, ''));

/** The member behind a culprit party index: signing sessions number parties by key index, keygen by sorted identity. */
function culpritMember(ctx: AuditContext, index: Index, e: Located<'sessionEnd'>): Member | undefined {
  const c = e.value.culprit;
  const req = index.session(hex(e.value.session), 'request')[0];
  const burn = index.all('burn').find((b) => b.view === e.view && equalBytes(b.value.session, e.value.session) && b.value.peer === c);
  const key = req ? index.key(req.value.keyId, req.value.epoch)
    : e.value.protocol === 'dkls23/dkg/v1' ? undefined
    : burn ? e.view.entries.filter((l): l is Located<'key'> => of(l, 'key') && l.value.keyId === burn.value.keyId && l.seq < e.seq).pop()?.value
    : e.view.entries.filter((l): l is Located<'key'> => of(l, 'key') && l.seq < e.seq).pop()?.value;
  if (key) return key.parties[c - 1] ? ctx.memberByKey(key.parties[c - 1]!) : undefined;
  return partyOrder(ctx.members)[c - 1]; // keygen and refresh number the parties by sorted identity
}

function decodeEnvelope(bytes: Uint8Array): { from: number; clusterHash: Uint8Array; signature: Uint8Array; unsigned: Uint8Array } | undefined {
  try {
    const m = strictDecode(EnvelopeType, bytes, 'envelope') as unknown as Record<string, unknown> & { from: number; clusterHash: Uint8Array; signature: Uint8Array };
    if (!(m.signature instanceof Uint8Array) || m.signature.length !== 64) return undefined;
    const unsigned = EnvelopeType.encode(EnvelopeType.create({ ...m, signature: new Uint8Array(0) })).finish();
    return { from: m.from, clusterHash: m.clusterHash, signature: m.signature, unsigned };
  } catch {
    return undefined;
  }
}

// ---- checkpoints and cosignatures (C2SP tlog-checkpoint / tlog-witness) ----

export interface TreeHead extends Checkpoint { source: string; at?: Located }

/** Record a tree head; two heads of one log at one size with different roots are a split view. */
function checkHeads(ctx: AuditContext, heads: readonly TreeHead[], views: readonly LogView[]): void {
  const seen = new Map<string, TreeHead>();
  const prefixRoots = new Map<string, string>();
  for (const h of heads) {
    const where = h.at ?? { view: { name: h.source, peer: null, member: null, entries: [], leaves: null }, seq: null };
    let author: Member | undefined;
    try {
      const o = parseOrigin(h.origin);
      if (o.clusterHash !== hex(ctx.clusterHash)) throw new Error('another cluster');
      author = ctx.memberByPeer(o.peerId);
      if (!author) throw new Error('not a member');
    } catch (e) {
      ctx.fail('checkpoint', `checkpoint origin ${h.origin.slice(0, 100)}: ${(e as Error).message}`, where);
      continue;
    }
    const k = `${h.origin} ${h.size}`;
    const prev = seen.get(k);
    if (prev && !equalBytes(prev.root, h.root)) ctx.fail('checkpoint', `two roots for ${author.org}'s log at size ${h.size} (${prev.source} and ${h.source}): split view`, where);
    seen.set(k, h);
    const log = views.find((v) => v.peer === author!.peerId && v.leaves);
    if (!log) continue;
    if (h.size > log.leaves!.length) {
      ctx.fail('checkpoint', `${h.source} cosigned ${author.org}'s log at size ${h.size}, the log has ${log.leaves!.length} entries: entries were removed`, where);
      continue;
    }
    const pk = `${log.name} ${h.size}`;
    let root = prefixRoots.get(pk);
    if (!root) prefixRoots.set(pk, (root = hex(rootFromLeafHashes(log.leaves!.slice(0, h.size)))));
    if (root !== hex(h.root)) ctx.fail('checkpoint', `${author.org}'s log at size ${h.size} does not have the root ${h.source} cosigned: the log was rewritten`, where);
  }
}

function cosignatureHeads(ctx: AuditContext, index: Index): TreeHead[] {
  const heads: TreeHead[] = [];
  for (const l of index.all('cosignature')) {
    const c = l.value;
    let author: Member | undefined;
    try {
      author = ctx.memberByPeer(parseOrigin(c.origin).peerId);
    } catch {
      author = undefined;
    }
    const body = (() => {
      try {
        return utf8(checkpointBody(c));
      } catch {
        return undefined;
      }
    })();
    if (!author || !body) {
      ctx.fail('checkpoint', `cosigned checkpoint with origin ${c.origin.slice(0, 100)} does not name a member or is malformed`, l);
      continue;
    }
    if (!verifyEd25519(author.publicKey, body, c.authorSignature)) ctx.fail('checkpoint', `${author.org}'s signature on the cosigned checkpoint does not verify`, l);
    else if (!verifyEd25519(l.view.member!.publicKey, body, c.cosignature)) ctx.fail('checkpoint', 'the cosignature does not verify', l);
    else heads.push({ origin: c.origin, size: c.size, root: c.root, source: `${l.view.member?.org} (${l.view.name}, entry ${l.seq})`, at: l });
  }
  return heads;
}

export function externalHeads(ctx: AuditContext, notes: readonly string[]): TreeHead[] {
  const heads: TreeHead[] = [];
  notes.forEach((text, i) => {
    try {
      const { checkpoint, verified } = openCheckpoint(text);
      heads.push({ ...checkpoint, source: `checkpoint ${i + 1} (signed by ${verified.length})` });
    } catch (e) {
      ctx.fail('checkpoint', `checkpoint ${i + 1}: ${(e as Error).message}`);
    }
  });
  return heads;
}

// ---- the whole run ----

/** Every semantic check over admitted entries; used for full logs and for bundles. */
export function checkViews(ctx: AuditContext, views: readonly LogView[], heads: readonly TreeHead[], opts: { focus?: string } = {}): { sessions: SessionSummary[]; equivocations: Equivocation[] } {
  const index = new Index(views);
  const histories = new Map(views.map((v) => [v, new PeerHistory(v)]));
  const summaries: SessionSummary[] = [];
  checkEntries(ctx, views);
  checkMessageAgreement(ctx, index);
  checkKeys(ctx, index, summaries);
  replayAll(ctx, index, histories);
  checkSignatures(ctx, index, views, histories, summaries, opts.focus);
  checkAborts(ctx, index, summaries, opts.focus);
  checkHeads(ctx, [...cosignatureHeads(ctx, index), ...heads], views);
  const equivocations = checkConflictingApprovals(ctx, index);
  return { sessions: summaries, equivocations };
}

/** `potluck audit verify --cluster FILE LOG...`: check everything; ok only if every rule holds. */
export function verifyAudit(input: VerifyInput): AuditReport {
  const ctx = new AuditContext(input.definition);
  const views = input.logs.map((l) => loadLog(ctx, l));
  const seen = new Map<string, string>();
  for (const v of views) {
    if (!v.peer) continue;
    const other = seen.get(v.peer);
    if (other) ctx.notes.push(`logs ${other} and ${v.name} are both by ${v.member?.org}; compared as two logs`);
    seen.set(v.peer, v.name);
  }
  const { sessions, equivocations } = checkViews(ctx, views, externalHeads(ctx, input.checkpoints ?? []));
  return {
    ok: ctx.failures.length === 0,
    failures: ctx.failures,
    sessions,
    equivocations,
    logs: views.map((v) => ({ name: v.name, peer: v.peer, org: v.member?.org ?? null, entries: v.leaves?.length ?? v.entries.length, root: v.leaves ? hex(rootFromLeafHashes(v.leaves)) : null })),
    notes: [...ctx.notes, `not replayed (stateful, taken from the record): ${NOT_REPLAYED.join(', ')}; blob-content when blobs were handed over (only their versioned hashes are logged)`],
  };
}

/** The per-session summary and the failures, as `potluck audit verify` prints them. */
export function formatReport(r: AuditReport): string {
  const out: string[] = [];
  for (const l of r.logs) out.push(`log ${l.name}: ${l.org ?? '?'} ${l.peer ?? ''}, ${l.entries} entries${l.root ? `, root ${l.root.slice(0, 16)}…` : ''}`);
  for (const s of r.sessions) {
    const parts = [`${s.ok ? 'ok  ' : 'FAIL'} ${s.kind} ${s.session.slice(0, 16)}…`];
    if (s.keyId !== undefined) parts.push(`key ${s.keyId}/${s.epoch}`);
    if (s.requesterOrg) parts.push(`requester ${s.requesterOrg}`);
    if (s.signerOrgs) parts.push(`${s.kind === 'signature' ? 'signers' : 'parties'} ${s.signerOrgs.join('+')}`);
    if (s.approvedBy?.length) parts.push(`approved by ${s.approvedBy.join('+')}`);
    if (s.verdicts) parts.push(`verdicts ${s.verdicts.map((v) => `${v.org}:${v.verdict}`).join(' ')}`);
    if (s.r) parts.push(`r ${s.r.slice(0, 12)}… s ${s.s!.slice(0, 12)}…`);
    if (s.txHash) parts.push(`tx 0x${s.txHash}`);
    if (s.aborted) parts.push(`aborted: ${s.aborted.errorClass} ${s.aborted.check}${s.aborted.culprit ? `, culprit party ${s.aborted.culprit} (${s.aborted.culpritOrg ?? 'unknown org'}), evidence ${s.aborted.evidence}` : ''}`);
    out.push(parts.join(', '));
    for (const n of s.notes) out.push(`     note: ${n}`);
  }
  for (const n of r.notes) out.push(`note: ${n}`);
  for (const e of r.equivocations) out.push(`EQUIVOCATION by ${e.org} (${e.peerId}) at ${e.slot}: approved ${e.digests.join(' and ')}`);
  for (const f of r.failures) out.push(`FAILED ${f.message}`);
  out.push(r.ok ? 'audit: every check holds' : `audit: ${r.failures.length} failure(s)`);
  return out.join('\n') + '\n';
}
