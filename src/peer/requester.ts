/**
 * The requester (issues 3, 4, 11): this org's API client asked for a signature and this org's
 * policy approved it. First an approval round: every connected holder of the key is asked to
 * approve the exact request, and c = ⌈(n+f+1)/2⌉ approvals (ours included) form the certificate
 * that co-signers need before they spend anything. Then a signer set of approvers under the
 * org-quorum rule, a presignature it owns for that set (used mark fsync'd first, spec §2.9), and
 * flight 4; on a decline or timeout, another set of approvers.
 */
import { approvalQuorum, mayRequest } from '../cluster/definition.ts';
import type { Member } from '../cluster/members.ts';
import { DecodeError } from '../crypto/errors.ts';
import { CertificateError, encodeCertificate, openApproval, type Approval } from '../policy/approval.ts';
import type { Verdict } from '../policy/verdict.ts';
import { decodeTransactionArgs } from '../policy/transaction-args.ts';
import { ProtocolError } from '../protocol/errors.ts';
import { OnlineSession, type Signature } from '../protocol/sign.ts';
import { openPresignature } from '../store/presignature-seal.ts';
import type { Approver } from './approver.ts';
import { AuditRecorder } from './audit-recorder.ts';
import type { Decision, SignProposal } from './control.ts';
import type { PairRepair } from './pair-repair.ts';
import { hex, holdersOf, partiesMap, partyOrg, type LoadedKey, type PeerCore } from './peer-core.ts';
import type { PresignaturePool } from './presignature-pool.ts';
import { DeclinedError, SessionTimeoutError } from './session-host.ts';
import { candidateSets, type QuorumRule } from './signer-set.ts';
import { decodeSigningRequest } from './signing-request.ts';

/** How long a requester waits for approvals (see gather). */
export const APPROVAL_TIMEOUT_MS = 15_000;

export class SignError extends Error {
  override readonly name = 'SignError';
  readonly code: 'unknown-key' | 'no-quorum' | 'failed' | 'bad-request' | 'withheld';
  /** Members that declined, with their reasons (their policy's refusals among them) and codes. */
  readonly declines: readonly { org: string; reason: string; code?: string }[];
  constructor(code: SignError['code'], message: string, declines: readonly { org: string; reason: string; code?: string }[] = []) {
    super(message);
    this.code = code;
    this.declines = declines;
  }
}

export interface SignResult {
  keyId: string;
  digest: string;
  r: string;
  s: string;
  yParity: 0 | 1;
  address: string;
  signers: { org: string; peerId: string }[];
  /** Orgs whose approvals made the certificate. */
  approvedBy: string[];
  session: string;
  presignature: 'pool' | 'fresh';
  attempts: number;
  ms: number;
}

/** After c approvals, wait this much longer for the rest (a wider choice of signer sets), never for a silent member. */
const APPROVAL_GRACE_MS = 100;
/** A member whose session timed out is avoided in signer sets this long, while sets without it exist. */
const SUSPECT_MS = 60_000;

interface Round {
  own: Approval;
  holders: Member[];
  approvals: Map<string, Approval>;
  declines: Map<number, { org: string; reason: string; code: string }>;
  asked: Set<number>;
  wake: () => void;
}

const subjectOf = (a: Approval): string => [a.kind, a.keyAddress, a.chainId, a.nonce, hex(a.contentKey), a.gas, a.maxFeePerGas, a.maxPriorityFeePerGas, a.maxFeePerBlobGas, hex(a.digest), hex(a.requestId)].join('|');

export class Requester {
  private readonly core: PeerCore;
  private readonly pool: PresignaturePool;
  private readonly pairs: PairRepair;
  private readonly approver: Approver;
  private readonly withheld: () => string | undefined;
  private readonly rounds = new Map<string, Round>();
  /** Members that stalled a session lately (member index → until): a slow or hostile member costs one timeout, not one per request. */
  private readonly suspects = new Map<number, number>();
  /** The last signatures this peer requested, for `status` (who co-signed what, how fast). */
  readonly recent: { at: string; digest: string; session: string; signers: string[]; ms: number; presignature: string }[] = [];

  /** Requests waiting for approvals (status). */
  get approvalRounds(): number {
    return this.rounds.size;
  }

  constructor(core: PeerCore, parts: { pool: PresignaturePool; pairs: PairRepair; approver: Approver; withheld: () => string | undefined }) {
    this.core = core;
    this.pool = parts.pool;
    this.pairs = parts.pairs;
    this.approver = parts.approver;
    this.withheld = parts.withheld;
  }

  /**
   * Sign `digest` for `request` (SigningRequest bytes), which this org's policy approved with
   * `verdict` (its slot is claimed). Throws SignError.
   */
  async sign(k: LoadedKey, digest: Uint8Array, request: Uint8Array, verdict: Verdict, quorum: QuorumRule): Promise<SignResult> {
    const core = this.core;
    if (digest.length !== 32) throw new SignError('bad-request', `digest must be 32 bytes, got ${digest.length}`);
    const held = this.withheld();
    if (held) throw new SignError('withheld', held);
    if (!mayRequest(core.definition, k.share.keyId, core.self.org)) throw new SignError('bad-request', `${core.self.org} may not originate requests for key ${k.share.keyId} (cluster definition: requesters ${core.definition.requesters[k.share.keyId]!.join(', ')})`);
    let decoded;
    try {
      decoded = decodeSigningRequest(request);
    } catch (e) {
      if (e instanceof DecodeError) throw new SignError('bad-request', e.message);
      throw e;
    }
    // Cheap before the own approval is written: too few holders connected to certify anything.
    const holders = holdersOf(core, k);
    const c0 = approvalQuorum(holders.length, core.definition.faulty);
    const up = holders.filter((m) => m === core.self || core.mesh.isConnected(m.peerId));
    if (up.length < c0) throw new SignError('no-quorum', `approval certificate needs ${c0} of ${holders.length} holders (f = ${core.definition.faulty}); connected: ${up.map((m) => m.org).join(', ')}`);
    const t0 = performance.now();
    const own = this.approver.approveOwn(k, decoded, request, verdict, core.rng(32));
    if (hex(own.digest) !== hex(digest)) throw new SignError('bad-request', 'the digest is not the digest of the request');
    const round = await this.gather(k, request, own);
    const approvals = [...round.approvals.values()];
    const c = approvalQuorum(round.holders.length, core.definition.faulty);
    const declines = [...round.declines.values()];
    if (approvals.length < c) {
      const silent = round.holders.filter((m) => m !== core.self && !round.approvals.has(m.peerId) && !round.declines.has(m.index)).map((m) => m.org);
      throw new SignError('no-quorum', `approval certificate needs ${c} of ${round.holders.length} holders (f = ${core.definition.faulty}); approved by ${approvals.map((a) => a.approverOrg).join(', ')}${declines.length ? `; declined by ${declines.map((d) => `${d.org} (${d.reason})`).join('; ')}` : ''}${silent.length ? `; no answer from ${silent.join(', ')}` : ''}`, declines);
    }
    const certificate = encodeCertificate(approvals);
    core.audit.certificate(own.requestId, certificate);
    const approved = new Set(approvals.map((a) => round.holders.find((m) => m.peerId === a.approver)!).map((m) => k.partyOf.get(m.index)!));
    const logged = AuditRecorder.loggedRequest(request).bytes;
    const tx = decoded.body.case === 'transaction' ? decodeTransactionArgs(JSON.parse(decoded.body.argsJson)) : undefined;
    const floor = () => {
      if (tx?.ok) core.policy.recordsStore.raiseFloor(tx.tx);
    };
    return this.attempts(k, digest, logged, certificate, approved, quorum, floor, t0, declines, approvals.map((a) => a.approverOrg));
  }

  private async attempts(
    k: LoadedKey, digest: Uint8Array, request: Uint8Array, certificate: Uint8Array, approved: Set<number>, quorum: QuorumRule,
    floor: () => void, t0: number, declines: { org: string; reason: string; code?: string }[], approvedBy: string[],
  ): Promise<SignResult> {
    const core = this.core;
    const me = k.share.index;
    const excluded = new Set<number>();
    const maxAttempts = core.opts.maxAttempts ?? 3;
    const failures: string[] = [];
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      const burned = core.store.burnedPeers(k.share.keyId);
      const usable = this.pairs.usableParty(k, burned, excluded);
      const sets = candidateSets(k.share.parties.length, k.share.threshold, me, partyOrg(core, k), quorum, (p) => approved.has(p) && usable(p));
      if (!sets.length) {
        const live = core.members.filter((m) => m === core.self || core.mesh.isConnected(m.peerId)).map((m) => m.org);
        throw new SignError('no-quorum', `no signer set of ${k.share.threshold} approvers (${approvedBy.join(', ')}) satisfies the org quorum (${quorum.distinctOrgs} orgs, ${quorum.otherOrgs} besides ${core.self.org}) with the peers online (${live.join(', ')})${failures.length ? `; earlier attempts: ${failures.join('; ')}` : ''}`, declines);
      }
      // Avoid members that stalled lately while other sets exist; then prefer the set whose pool holds
      // the most presignatures this peer owns; ties at random, so that load spreads over the orgs
      // (the choice is public, the randomness need not be secret).
      const now = Date.now();
      const suspect = (p: number) => (this.suspects.get(k.memberOf.get(p)!) ?? 0) > now;
      const trusted = sets.filter((S) => !S.some(suspect));
      const stock = (trusted.length ? trusted : sets).map((S) => ({ S, n: core.store.countOwned(k.share.keyId, k.share.epoch, S, me) }));
      const best = Math.max(...stock.map((x) => x.n));
      const ties = stock.filter((x) => x.n === best);
      const S = ties[core.rng(1)[0]! % ties.length]!.S;
      try {
        let row = core.store.takePresignature(k.share.keyId, k.share.epoch, S, me, floor); // used mark (and fee floor) fsync'd here
        const fromPool = row !== undefined;
        if (!row) {
          const sigSid = await this.pool.presign(k, S, true); // stored already used: no other request can take it
          core.store.db.transaction(floor).immediate();
          row = core.store.getPresignature(sigSid)!;
        }
        const sig = await this.spend(k, row.sigSid, row.blob, S, digest, request, certificate);
        for (const p of S) this.suspects.delete(k.memberOf.get(p)!);
        const result: SignResult = {
          keyId: k.share.keyId, digest: '0x' + hex(digest), r: '0x' + sig.r.toString(16).padStart(64, '0'), s: '0x' + sig.s.toString(16).padStart(64, '0'), yParity: sig.yParity,
          address: k.address, signers: S.map((p) => core.host.member(k.memberOf.get(p)!)).map((m) => ({ org: m.org, peerId: m.peerId })), approvedBy,
          session: '0x' + hex(row.sigSid), presignature: fromPool ? 'pool' : 'fresh', attempts: attempt, ms: Math.round((performance.now() - t0) * 100) / 100,
        };
        this.recent.push({ at: new Date().toISOString(), digest: result.digest, session: result.session, signers: result.signers.map((x) => x.org), ms: result.ms, presignature: result.presignature });
        if (this.recent.length > 20) this.recent.shift();
        return result;
      } catch (e) {
        if (e instanceof SessionTimeoutError)
          for (const m of e.waitingFor) {
            excluded.add(m.index);
            this.suspects.set(m.index, Date.now() + SUSPECT_MS);
          }
        else if (e instanceof DeclinedError) {
          excluded.add(e.member.index);
          declines.push({ org: e.member.org, reason: e.reason, code: e.code });
          // It lost its half of our presignatures (restarted, restored from a backup, or its
          // database is gone): every one we hold with it is dead; drop them so the pool refills fresh.
          if (e.code === 'unknown-presignature') {
            const party = k.partyOf.get(e.member.index);
            if (party !== undefined) core.log.warn({ peer: e.member.org, dropped: core.store.deletePresignatures(k.share.keyId, party) }, 'peer no longer knows our presignatures; dropped every one shared with it');
          }
        } else if (e instanceof ProtocolError && e.culprit !== undefined) {
          const m = k.memberOf.get(e.culprit);
          if (m !== undefined) excluded.add(m);
        } else if (!(e instanceof ProtocolError)) throw e;
        failures.push(`attempt ${attempt} with ${S.map(partyOrg(core, k)).join('+')}: ${(e as Error).message}`);
        core.log.warn({ attempt, signers: S.map(partyOrg(core, k)), err: (e as Error).message }, 'signing attempt failed; retrying with another set');
      }
    }
    throw new SignError('failed', `signing failed after ${maxAttempts} attempts: ${failures.join('; ')}`, declines);
  }

  /** Flight 4 with a presignature already marked used on disk. */
  private async spend(k: LoadedKey, sigSid: Uint8Array, blob: Uint8Array, S: number[], digest: Uint8Array, request: Uint8Array, certificate: Uint8Array): Promise<Signature> {
    const core = this.core;
    const presig = openPresignature(blob, k.poolKey, sigSid);
    core.audit.request({ session: sigSid, role: 'requester', requesterOrg: core.self.org, keyId: k.share.keyId, epoch: k.share.epoch, signers: S, signerOrgs: S.map(partyOrg(core, k)), request, digest });
    core.audit.certificate(sigSid, certificate);
    const proposal: SignProposal = { keyId: k.share.keyId, epoch: k.share.epoch, signers: S, presignature: sigSid, digest, request, certificate };
    const deadline = Date.now() + (core.opts.signTimeoutMs ?? 5000);
    core.store.sessionStarted(sigSid, 'sign', k.share.keyId, S, core.self.org);
    for (const p of S) if (p !== k.share.index) core.host.sendControl(k.memberOf.get(p)!, sigSid, { case: 'signProposal', value: proposal }, deadline);
    try {
      const sig = await core.host.run({ id: sigSid, protocol: 'dkls23/online/v1', what: `signature ${hex(sigSid).slice(0, 12)}`, machine: new OnlineSession(presig, digest), parties: partiesMap(k, S), deadline, rng: core.rng });
      core.store.sessionEnded(sigSid, true, `r=${sig.r.toString(16)}`);
      core.audit.signature({ session: sigSid, signature: sig, address: k.address, request, sync: true });
      return sig;
    } catch (e) {
      core.store.sessionEnded(sigSid, false, (e as Error).message);
      throw e;
    } finally {
      core.host.forget(sigSid);
    }
  }

  /** Ask every connected holder to approve; resolve once c approvals and a little grace are in, everyone answered, or the deadline passed. */
  private gather(k: LoadedKey, request: Uint8Array, own: Approval): Promise<Round> {
    const core = this.core;
    const holders = holdersOf(core, k);
    const c = approvalQuorum(holders.length, core.definition.faulty);
    const id = own.requestId;
    // 15 s: an approver answers from its event loop, which a burst of on-demand presigns can keep
    // busy for seconds (200 concurrent requests at 5 peers took > 5 s on 2 loaded cores). The round
    // ends as soon as c approvals are in, so the deadline only matters when a member stays silent.
    const deadline = Date.now() + (core.opts.approvalTimeoutMs ?? APPROVAL_TIMEOUT_MS);
    return new Promise<Round>((resolve) => {
      let graceTimer: NodeJS.Timeout | undefined;
      const finish = () => {
        clearTimeout(timer);
        clearTimeout(graceTimer);
        this.rounds.delete(hex(id));
        core.host.forgetControl(id);
        resolve(round);
      };
      const round: Round = {
        own, holders, approvals: new Map([[core.self.peerId, own]]), declines: new Map(), asked: new Set(),
        wake: () => {
          const answered = [...round.asked].every((m) => round.declines.has(m) || round.approvals.has(core.host.member(m).peerId));
          if (answered || round.approvals.size + [...round.asked].filter((m) => !round.declines.has(m) && !round.approvals.has(core.host.member(m).peerId)).length < c) return finish();
          if (round.approvals.size >= c && !graceTimer) graceTimer = setTimeout(finish, APPROVAL_GRACE_MS);
        },
      };
      const timer = setTimeout(finish, Math.max(0, deadline - Date.now()));
      this.rounds.set(hex(id), round);
      for (const m of holders)
        if (m !== core.self && core.mesh.isConnected(m.peerId)) {
          round.asked.add(m.index);
          core.host.sendControl(m.index, id, { case: 'approvalRequest', value: { keyId: k.share.keyId, requestId: id, request } }, deadline);
        }
      round.wake();
    });
  }

  /** A member's answer to one of our approval rounds; false if no round of ours has this id. */
  onApproval(from: Member, session: Uint8Array, bytes: Uint8Array): boolean {
    const round = this.rounds.get(hex(session));
    if (!round || !round.asked.has(from.index)) return false;
    try {
      const a = openApproval(bytes, this.core.clusterHash, round.holders);
      if (a.approver !== from.peerId) throw new CertificateError('approver', `an approval by ${a.approverOrg} arrived from ${from.org}`);
      if (subjectOf(a) !== subjectOf(round.own)) throw new CertificateError('inconsistent', `${from.org} approved something else than it was asked`);
      round.approvals.set(a.approver, a);
    } catch (e) {
      if (!(e instanceof CertificateError)) throw e;
      round.declines.set(from.index, { org: from.org, reason: `invalid approval: ${e.message}`, code: 'certificate' });
    }
    round.wake();
    return true;
  }

  /** A member refused one of our approval rounds; false if no round of ours has this id. */
  onDecision(from: Member, d: Decision): boolean {
    const round = this.rounds.get(hex(d.session));
    if (!round || d.accept || !round.asked.has(from.index)) return false;
    round.declines.set(from.index, { org: from.org, reason: d.reason, code: d.code });
    round.wake();
    return true;
  }
}
