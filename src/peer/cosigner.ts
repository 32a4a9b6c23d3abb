/**
 * The co-signer (spec §2.7 flight 4 on the partner's side, §2.9; issue 11): a member proposes to
 * spend a presignature it owns with us on a digest. Every cheap check runs before anything is
 * written: the proposal's shape, this peer's own state, the member's rate and running sessions,
 * the presignature (known, unused, owned by the proposer, for this set), the approval
 * certificate (c valid approvals of exactly this digest, ours among them), the request's digest
 * and this org's quorum minimum. Only then the used mark (with the nonce slot's fee floor) is
 * fsync'd, and only then does the partial signature leave.
 */
import { bytesToHex } from 'viem';
import { approvalQuorum } from '../cluster/definition.ts';
import type { Member } from '../cluster/members.ts';
import { DecodeError } from '../crypto/errors.ts';
import { ApprovalError, CertificateError, encodeCertificate, openCertificate, subjectOf } from '../policy/approval.ts';
import { quorumReason } from '../policy/policy-file.ts';
import { decodeTransactionArgs } from '../policy/transaction-args.ts';
import { OnlineSession } from '../protocol/sign.ts';
import { openPresignature } from '../store/presignature-seal.ts';
import { PolicyRecordsError } from '../store/policy-records.ts';
import type { SignProposal } from './control.ts';
import { MemberLimiter } from './member-limiter.ts';
import type { PairRepair } from './pair-repair.ts';
import { decline, hex, holdersOf, partiesMap, partyOrg, sameSet, type PeerCore } from './peer-core.ts';
import { checkProposal } from './proposal-check.ts';
import { decodeSigningRequest, type SigningRequest } from './signing-request.ts';

/** Sessions (presign and sign) one member may have running with us on its proposals at once. */
export const MAX_SESSIONS_PER_MEMBER = 20;
/** Proposals of one member waiting for a presignature this peer is still finishing. */
export const MAX_WAITING_PER_MEMBER = 4;
const UNKNOWN_PRESIGNATURE_WAIT_MS = 3000;

export class CoSigner {
  private readonly core: PeerCore;
  private readonly pairs: PairRepair;
  private readonly withheld: () => string | undefined;
  private readonly limiter: MemberLimiter;
  private readonly waiting = new Map<number, number>();

  constructor(core: PeerCore, pairs: PairRepair, withheld: () => string | undefined) {
    this.core = core;
    this.pairs = pairs;
    this.withheld = withheld;
    this.limiter = new MemberLimiter(core.members, core.self, () => core.policy.file?.memberRequestsPerMinute ?? 1);
  }

  onSignProposal(from: Member, session: Uint8Array, p: SignProposal): void {
    const core = this.core;
    const k = checkProposal(core, this.pairs, from, p);
    if (typeof k === 'string') return decline(core, from, session, k);
    if (hex(session) !== hex(p.presignature)) return decline(core, from, session, 'session id must be the presignature id');
    if (core.host.isActive(session)) return;
    const held = this.withheld();
    if (held) return decline(core, from, session, held, 'rollback');
    if (!this.limiter.take(from.org)) {
      if (this.limiter.tellOverRate(from.org)) decline(core, from, session, `${from.org} exceeded ${this.limiter.perMinute} sign proposals per minute`, 'rate-limit');
      return;
    }
    this.consider(from, session, p, 0);
  }

  private consider(from: Member, session: Uint8Array, p: SignProposal, waited: number): void {
    const core = this.core;
    if (waited > 0) this.unwait(from.index);
    if (core.stopping) return;
    const k = core.keys.get(p.keyId);
    if (!k || k.share.epoch !== p.epoch) return decline(core, from, session, `key ${p.keyId} changed epoch while the proposal waited`);
    const running = core.host.activeProposedBy(from.index);
    if (running >= MAX_SESSIONS_PER_MEMBER) return decline(core, from, session, `${running} sessions proposed by ${from.org} are running already`, 'busy');
    const row = core.store.getPresignature(p.presignature);
    if (!row) {
      // A requester that presigned on demand proposes as soon as its own flight 3 is done; ours
      // may still be finishing under load, so wait a little (bounded per member) before calling it unknown.
      const waiting = this.waiting.get(from.index) ?? 0;
      if (waited < UNKNOWN_PRESIGNATURE_WAIT_MS && core.host.activeCount > 0 && waiting < MAX_WAITING_PER_MEMBER) {
        this.waiting.set(from.index, waiting + 1);
        setTimeout(() => this.consider(from, session, p, waited + 50), 50).unref();
        return;
      }
      return decline(core, from, session, 'unknown presignature', 'unknown-presignature');
    }
    if (row.used) return decline(core, from, session, 'presignature already used');
    if (row.owner !== k.partyOf.get(from.index) || !sameSet(row.signers, p.signers)) return decline(core, from, session, 'presignature belongs to another requester or signer set');
    // The certificate: c approvals of exactly this digest by the key's holders, ours among them.
    const holders = holdersOf(core, k);
    let signed;
    try {
      signed = openCertificate(p.certificate, { clusterHash: core.clusterHash, approvers: holders, quorum: approvalQuorum(holders.length, core.definition.faulty), digest: p.digest, keyAddress: k.address });
    } catch (e) {
      if (!(e instanceof CertificateError)) throw e;
      return decline(core, from, session, e.message, 'certificate');
    }
    if (!signed.some((a) => a.approver === core.self.peerId)) return decline(core, from, session, `approval certificate: ${core.self.org} did not approve this digest`, 'certificate');
    let request: SigningRequest;
    try {
      request = decodeSigningRequest(p.request);
      if (bytesToHex(subjectOf(request.body, k.address).digest) !== bytesToHex(p.digest)) return decline(core, from, session, 'the proposed digest is not the digest of the request', 'certificate');
    } catch (e) {
      if (!(e instanceof DecodeError) && !(e instanceof ApprovalError)) throw e;
      return decline(core, from, session, `malformed signing request: ${e.message}`);
    }
    const signerOrgs = p.signers.map(partyOrg(core, k));
    if (core.policy.file) {
      const q = quorumReason(core.policy.file, { signerOrgs, requesterOrg: from.org });
      if (!q.ok) return decline(core, from, session, `policy refused (org-quorum): ${q.detail}`, 'policy');
    }
    // Spec §2.9: the used mark (and the slot's fee floor) on disk before the partial leaves.
    const tx = request.body.case === 'transaction' ? decodeTransactionArgs(JSON.parse(request.body.argsJson)) : undefined;
    let marked: boolean;
    try {
      marked = core.store.markUsed(p.presignature, { kind: 'cosign', keyId: k.share.keyId, signers: p.signers, requester: from.org }, () => {
        if (tx?.ok) core.policy.recordsStore.raiseFloor(tx.tx);
      });
    } catch (e) {
      // The slot changed since we approved (released by the operator): the transaction rolled back, nothing is marked.
      if (!(e instanceof PolicyRecordsError)) throw e;
      return decline(core, from, session, `policy refused (equivocation): ${e.message}`, 'policy');
    }
    if (!marked) return decline(core, from, session, 'presignature already used');
    core.opts.faults?.afterUsedMark?.();
    core.audit.request({ session: p.presignature, role: 'cosigner', requesterOrg: from.org, keyId: k.share.keyId, epoch: k.share.epoch, signers: p.signers, signerOrgs, request: p.request, digest: p.digest });
    core.audit.certificate(p.presignature, encodeCertificate(signed));
    let machine: OnlineSession;
    try {
      machine = new OnlineSession(openPresignature(row.blob, k.poolKey, p.presignature), p.digest);
    } catch (e) {
      core.store.sessionEnded(session, false, (e as Error).message);
      return decline(core, from, session, `cannot open presignature (${(e as Error).message})`);
    }
    core.host
      .run({ id: session, protocol: 'dkls23/online/v1', what: `co-signature for ${from.org}`, machine, parties: partiesMap(k, p.signers), deadline: Date.now() + (core.opts.signTimeoutMs ?? 5000), rng: core.rng, proposer: from.index })
      .then((sig) => {
        core.store.sessionEnded(session, true, `r=${sig.r.toString(16)}`);
        core.audit.signature({ session, signature: sig, address: k.address, request: p.request, sync: false });
      })
      .catch((e: Error) => {
        core.store.sessionEnded(session, false, e.message);
        core.log.warn({ peer: from.org, err: e.message }, 'co-signing session failed');
      })
      .finally(() => core.host.forget(session));
  }

  private unwait(member: number): void {
    const n = (this.waiting.get(member) ?? 1) - 1;
    if (n > 0) this.waiting.set(member, n);
    else this.waiting.delete(member);
  }
}
