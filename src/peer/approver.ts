/**
 * The approver (issue 11): another member asks this org to approve a signing request before any
 * presignature is spent. Cheap checks first, each refusing without a write: the round id, this
 * peer's own state (a detected rollback), the member's rate, whether it may originate requests for
 * the key at all, the request's shape. Then this org's policy (cheap rules, then the blobs' KZG
 * check), and only an approval claims the nonce slot (fsync'd) and is logged before the signed
 * approval leaves. The requester's own approval is made here too, from its own verdict.
 */
import { bytesToHex } from 'viem';
import { mayRequest } from '../cluster/definition.ts';
import type { Member } from '../cluster/members.ts';
import { DecodeError } from '../crypto/errors.ts';
import { signApproval, subjectOf, type Approval } from '../policy/approval.ts';
import type { Verdict } from '../policy/verdict.ts';
import type { ApprovalRequest } from './control.ts';
import { MemberLimiter } from './member-limiter.ts';
import type { AuditRecorder } from './audit-recorder.ts';
import { decline, type LoadedKey, type PeerCore } from './peer-core.ts';
import type { SessionHost } from './session-host.ts';

/** What the approver uses of the peer: its place in the cluster, its keys and policy, a signer, a log, a way out. */
export interface ApproverDeps extends Pick<PeerCore, 'members' | 'self' | 'definition' | 'clusterHash' | 'keys' | 'policy' | 'identity' | 'log'> {
  readonly audit: Pick<AuditRecorder, 'verdict' | 'approval'>;
  readonly host: Pick<SessionHost, 'sendControl'>;
}
import { decodeSigningRequest, type SigningRequest } from './signing-request.ts';

export class Approver {
  private readonly core: ApproverDeps;
  /** Why this peer gives no approval now (a detected rollback of its own state), or undefined. */
  private readonly withheld: () => string | undefined;
  private readonly limiter: MemberLimiter;

  constructor(core: ApproverDeps, withheld: () => string | undefined) {
    this.core = core;
    this.withheld = withheld;
    this.limiter = new MemberLimiter(core.members, core.self, () => core.policy.file?.memberRequestsPerMinute ?? 1);
  }

  /**
   * This peer's own approval as requester: its policy already approved `request` (the slot is
   * claimed). Logged with its verdict before it goes into any certificate.
   */
  approveOwn(k: LoadedKey, request: SigningRequest, requestBytes: Uint8Array, verdict: Verdict, requestId: Uint8Array): Approval {
    const core = this.core;
    const subject = subjectOf(request.body, k.address);
    const approval = signApproval({ ...subject, clusterHash: core.clusterHash, approverOrg: core.self.org, approver: core.self.peerId, requestId }, core.identity);
    core.audit.verdict({ session: requestId, digest: subject.digest, verdict, request: requestBytes, sync: false, role: 'requester', requestId });
    core.audit.approval(approval.bytes);
    return approval;
  }

  onApprovalRequest(from: Member, session: Uint8Array, a: ApprovalRequest): void {
    const core = this.core;
    if (bytesToHex(session) !== bytesToHex(a.requestId)) return decline(core, from, session, 'the session id must be the approval request id');
    const held = this.withheld();
    if (held) return decline(core, from, session, held, 'rollback');
    if (!this.limiter.take(from.org)) {
      if (this.limiter.tellOverRate(from.org)) decline(core, from, session, `${from.org} exceeded ${this.limiter.perMinute} approval requests per minute`, 'rate-limit');
      return;
    }
    const k = core.keys.get(a.keyId);
    if (!k) return decline(core, from, session, `unknown key "${a.keyId}"`);
    if (!k.partyOf.has(from.index)) return decline(core, from, session, `${from.org} holds no share of ${a.keyId}`);
    if (!mayRequest(core.definition, a.keyId, from.org)) return decline(core, from, session, `${from.org} may not originate requests for key ${a.keyId} (cluster definition: requesters)`, 'policy');
    let request: SigningRequest;
    try {
      request = decodeSigningRequest(a.request);
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      return decline(core, from, session, `malformed signing request: ${e.message}`);
    }
    const ev = core.policy.evaluate({ request, role: 'approver', requesterOrg: from.org, session, keyAddresses: [k.address], ...(request.body.case === 'rawDigest' ? {} : { threshold: k.share.threshold }) });
    if (ev.refusal || !ev.digest) return decline(core, from, session, `policy refused (${ev.refusal?.rule ?? 'args'}): ${ev.refusal?.detail ?? 'no digest'}`, 'policy');
    // Approved and the slot claimed (fsync'd by evaluate); log it, then sign and send.
    const subject = subjectOf(request.body, k.address);
    const approval = signApproval({ ...subject, clusterHash: core.clusterHash, approverOrg: core.self.org, approver: core.self.peerId, requestId: a.requestId }, core.identity);
    core.audit.verdict({ session, digest: ev.digest, verdict: ev.verdict, request: a.request, sync: false, role: 'approver', requestId: a.requestId });
    core.audit.approval(approval.bytes);
    core.host.sendControl(from.index, session, { case: 'approval', value: approval.bytes }, Date.now() + 10_000);
  }
}
