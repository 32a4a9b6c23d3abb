import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { createPublicClient, http, type Address } from 'viem';
import { systemRng, type Rng } from '../crypto/random.ts';
import { loadIdentity } from '../cluster/identity.ts';
import { approvalQuorum, definitionHash, parseDefinition, requireFullySigned, type ClusterDefinition } from '../cluster/definition.ts';
import { membersOf, type Member } from '../cluster/members.ts';
import { signerOf, type Signer } from '../cluster/signing.ts';
import { Mesh } from '../net/mesh.ts';
import { PeerNode } from '../net/peer-node.ts';
import type { KeyShare } from '../protocol/key-share.ts';
import { ethAddress } from '../protocol/sign.ts';
import { openKeyShare } from '../store/key-share-vault.ts';
import { PeerStore } from '../store/database.ts';
import { poolKey } from '../store/presignature-seal.ts';
import { WitnessRecords } from '../store/witness-records.ts';
import type { Control } from './control.ts';
import { CeremonyCoordinator, CeremonyError, type CeremonyResult } from './dealing-ceremony.ts';
import { DeclinedError, SessionHost } from './session-host.ts';
import { candidateSets, type QuorumRule } from './signer-set.ts';
import { RequestPolicy } from './request-policy.ts';
import { AuditRecorder } from './audit-recorder.ts';
import type { Verdict } from '../policy/verdict.ts';
import type { DaemonMetrics } from './peer-metrics.ts';
import { hex, holdersOf, partyOrg, type DaemonOptions, type LoadedKey, type PeerCore } from './peer-core.ts';
import { Approver } from './approver.ts';
import { CoSigner } from './cosigner.ts';
import { L1Nonces } from './l1-nonces.ts';
import { MAX_PAIR_INCIDENTS, PairRepair } from './pair-repair.ts';
import { PresignaturePool } from './presignature-pool.ts';
import { Requester, SignError, type SignResult } from './requester.ts';
import { Witness } from './witness.ts';

export { MAX_PAIR_INCIDENTS, SignError, type DaemonOptions, type SignResult };

/**
 * The peer daemon (`potluck start`): the composition root. It loads the identity, the signed
 * cluster definition and the key shares, opens the store and the audit log, starts libp2p, and
 * wires the roles (issue 11): the requester (peer/requester.ts), the approver (approver.ts), the
 * co-signer (cosigner.ts), the presignature pool (presignature-pool.ts), pair repair
 * (pair-repair.ts) and the audit-log witness (witness.ts). Control messages from members are
 * dispatched to them here; readiness and status are read from them.
 */
export class Daemon implements PeerCore {
  readonly opts: DaemonOptions;
  readonly definition: ClusterDefinition;
  readonly clusterHash: Uint8Array;
  readonly members: Member[];
  readonly self: Member;
  readonly keys = new Map<string, LoadedKey>();
  readonly log: Logger;
  readonly rng: Rng = systemRng;
  readonly identity: Signer;
  store!: PeerStore;
  host!: SessionHost;
  mesh!: Mesh;
  /** This org's policy over what it signs (issue 4); loaded from `<home>/policy.json`. */
  policy!: RequestPolicy;
  /** This peer's append-only audit log (issue 5), `<home>/audit.log`. */
  audit!: AuditRecorder;
  /** Blame and BAN_PAIR counters (issue 6); set by the signing API's metrics, absent without them. */
  metrics: DaemonMetrics | undefined;
  stopping = false;
  private node!: PeerNode;
  private ceremonies!: CeremonyCoordinator;
  private pairs!: PairRepair;
  private pool!: PresignaturePool;
  private approver!: Approver;
  private cosigner!: CoSigner;
  private requester!: Requester;
  private witness!: Witness;
  private l1: L1Nonces | undefined;
  private refill: NodeJS.Timeout | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly startedAt = Date.now();

  private constructor(opts: DaemonOptions, def: ClusterDefinition, members: Member[], self: Member, identity: Signer) {
    this.opts = opts;
    this.log = opts.log;
    this.definition = def;
    this.clusterHash = definitionHash(def);
    this.members = members;
    this.self = self;
    this.identity = identity;
  }

  static async start(opts: DaemonOptions): Promise<Daemon> {
    const { key, info } = loadIdentity(opts.home);
    const defPath = join(opts.home, 'cluster.json');
    if (!existsSync(defPath)) throw new SignError('bad-request', `no cluster definition at ${defPath}: copy the signed definition there`);
    const def = parseDefinition(readFileSync(defPath, 'utf8'), defPath);
    await requireFullySigned(def);
    const members = membersOf(def);
    const self = members.find((m) => m.peerId === info.peerId);
    if (!self) throw new SignError('bad-request', `this peer (${info.peerId}) is not a member of cluster ${def.name}`);
    const d = new Daemon(opts, def, members, self, signerOf(key));
    d.loadKeys();
    d.store = new PeerStore(join(opts.home, 'potluck.db'));
    d.policy = RequestPolicy.load(opts.home, d.store.db, d.log);
    const interrupted = d.store.failInterruptedSessions();
    if (interrupted) d.log.warn({ sessions: interrupted }, 'sessions interrupted by the last shutdown marked failed');
    // Rollback safety (issue 11): no presignature stored before this start is ever used.
    const discarded = d.store.discardPresignatures();
    if (discarded) d.log.info({ presignatures: discarded }, 'presignatures from before this start discarded (a restored copy must never sign twice)');
    d.audit = AuditRecorder.open(opts.home, d.clusterHash, self.peerId, key, d.log);
    d.audit.policy(d.policy.file);
    d.node = await PeerNode.start({ privateKey: key, listen: info.addresses, allowed: new Set(members.map((m) => m.peerId)), clusterHash: d.clusterHash });
    d.host = new SessionHost({
      self, secretKey: key, members, clusterHash: d.clusterHash, log: d.log,
      onControl: (from, session, c) => d.onControl(from, session, c),
      onBan: (culprit, e) => d.pairs.onBan(culprit, e),
      onBlame: (culprit, e) => d.metrics?.blame(culprit.org, e.check),
      transcript: (e) => d.audit.transcript(e),
      ...(opts.faults?.tamperOut ? { tamperOut: opts.faults.tamperOut } : {}),
    });
    d.ceremonies = new CeremonyCoordinator({
      home: opts.home, passphrase: opts.passphrase, log: d.log, rng: d.rng, host: d.host, self, clusterHash: d.clusterHash, members,
      isConnected: (m) => d.mesh.isConnected(m.peerId), ...(opts.scryptLogN ? { scryptLogN: opts.scryptLogN } : {}),
    });
    d.mesh = await Mesh.start({
      node: d.node,
      members: new Map(members.filter((m) => m !== self).map((m) => [m.peerId, m.addresses])),
      onFrame: (peer, frame) => d.host.onFrame(peer, frame),
      onStreamLost: (peer) => d.host.peerUp(peer),
      ...(opts.meshFault ? { fault: opts.meshFault } : {}),
    });
    d.host.mesh = d.mesh;
    d.witness = new Witness(d, new WitnessRecords(d.store.db));
    const withheld = () => d.witness.withheld();
    d.pairs = new PairRepair(d);
    d.pool = new PresignaturePool(d, d.pairs);
    d.approver = new Approver(d, withheld);
    d.cosigner = new CoSigner(d, d.pairs, withheld);
    d.requester = new Requester(d, { pool: d.pool, pairs: d.pairs, approver: d.approver, withheld });
    if (opts.l1RpcUrl) {
      d.l1 = new L1Nonces(opts.l1RpcUrl, d.log);
      d.l1.start(() => d.keyAddresses());
      d.policy.confirmedNonce = (chainId, from) => d.l1?.nonce(chainId, from);
    }
    d.node.onPeer('up', (peer) => {
      d.log.info({ peer: d.orgOf(peer) }, 'peer connected');
      d.host.peerUp(peer);
      const m = d.members.find((x) => x.peerId === peer);
      if (m) d.witness.send(m);
    });
    d.node.onPeer('down', (peer) => d.log.warn({ peer: d.orgOf(peer) }, 'peer disconnected'));
    d.mesh.keepConnected(1000);
    if ((opts.poolTarget ?? 2) > 0) {
      d.refill = setInterval(() => d.pool.refill(), 250);
      d.refill.unref();
    }
    d.every(1000, () => d.pairs.resetupBurnedPairs());
    if (opts.refreshEveryMs) d.scheduleRefresh(opts.refreshEveryMs);
    d.every(opts.checkpointIntervalMs ?? 30_000, () => d.witness.send());
    d.log.info({ peerId: self.peerId, org: self.org, cluster: def.name, keys: [...d.keys.keys()], listen: d.node.addresses, faulty: def.faulty }, 'peer started');
    return d;
  }

  private every(ms: number, f: () => void): void {
    const t = setInterval(f, ms);
    t.unref();
    this.timers.push(t);
  }

  private orgOf(peer: string): string {
    return this.members.find((m) => m.peerId === peer)?.org ?? peer;
  }

  private loadKeys(): void {
    const dir = join(this.opts.home, 'keys');
    if (!existsSync(dir)) return;
    for (const f of readdirSync(dir).filter((x) => x.endsWith('.share')).sort()) {
      const share = openKeyShare(new Uint8Array(readFileSync(join(dir, f))), this.opts.passphrase);
      this.keys.set(share.keyId, this.loaded(share));
    }
  }

  private loaded(share: KeyShare): LoadedKey {
    const memberOf = new Map<number, number>();
    share.parties.forEach((id, k) => {
      const m = this.members.find((x) => Buffer.compare(x.publicKey, id) === 0);
      if (!m) throw new SignError('bad-request', `key ${share.keyId}: party ${k + 1} is not a member of this cluster definition`);
      memberOf.set(k + 1, m.index);
    });
    if (memberOf.get(share.index) !== this.self.index) throw new SignError('bad-request', `key ${share.keyId} belongs to another member`);
    return { share, address: ethAddress(share.publicKey), poolKey: poolKey(share), memberOf, partyOf: new Map([...memberOf].map(([p, m]) => [m, p])) };
  }

  /**
   * Refresh or reshare `plan.keyId` with the other holders (spec §2.11, §2.12); switches to the new
   * epoch when everyone acknowledged. Without the key, this peer can only be added by a reshare.
   */
  async ceremony(plan: { kind: 'refresh' | 'reshare'; keyId?: string; threshold?: number; remove?: string[]; add?: string[]; address?: string; tag?: string }, timeoutMs: number): Promise<CeremonyResult> {
    // An org being added (or recovered: its share is lost or stale) deals nothing and takes its share from the others.
    const joining = plan.kind === 'reshare' && (plan.add ?? []).includes(this.self.org);
    const held = !joining && (plan.keyId === undefined || this.keys.has(plan.keyId)) ? this.key(plan.keyId) : undefined;
    const base = { kind: plan.kind, remove: plan.remove ?? [], add: plan.add ?? [], ...(plan.address ? { address: plan.address } : {}), ...(plan.tag ? { tag: plan.tag } : {}) };
    let run;
    if (held) {
      const holders = held.share.parties.map((_, i) => this.host.member(held.memberOf.get(i + 1)!));
      run = this.ceremonies.run(held.share, holders, { ...base, keyId: held.share.keyId, threshold: plan.threshold ?? held.share.threshold }, timeoutMs);
    } else {
      const keyId = plan.keyId ?? (this.keys.size === 1 ? [...this.keys.keys()][0]! : undefined);
      if (keyId === undefined) throw new CeremonyError('name the key to join (--key NAME)');
      if (plan.threshold === undefined) throw new CeremonyError(`this peer takes a new share of ${keyId}: pass the holders' --threshold, --remove and --add`);
      run = this.ceremonies.run(undefined, undefined, { ...base, keyId, threshold: plan.threshold }, timeoutMs);
    }
    const { share, result } = await run;
    this.audit.key(share, plan.kind);
    this.keys.set(share.keyId, this.loaded(share));
    const dropped = this.store.deletePresignatures(share.keyId);
    this.log.info({ keyId: share.keyId, epoch: share.epoch, droppedPresignatures: dropped }, 'switched to the new epoch');
    return result;
  }

  private key(keyId: string | undefined): LoadedKey {
    if (keyId === undefined) {
      if (this.keys.size !== 1) throw new SignError('unknown-key', this.keys.size === 0 ? 'this peer holds no key yet: run "potluck keygen"' : `this peer holds ${this.keys.size} keys; name one (${[...this.keys.keys()].join(', ')})`);
      return [...this.keys.values()][0]!;
    }
    const k = this.keys.get(keyId);
    if (!k) throw new SignError('unknown-key', `unknown key "${keyId}"${this.keys.size ? ` (this peer holds ${[...this.keys.keys()].join(', ')})` : ''}`);
    return k;
  }

  /** The cluster's org quorum, raised to this org's own policy minimum where that is stricter. */
  quorum(): QuorumRule {
    const own = this.policy.quorum();
    const q = this.definition.quorum;
    return own ? { distinctOrgs: Math.max(q.distinctOrgs, own.distinctOrgs), otherOrgs: Math.max(q.otherOrgs, own.otherOrgs) } : q;
  }

  /**
   * Sign `digest` for `request` (SigningRequest bytes), which this org's policy approved with
   * `verdict`: an approval round, then a signer set of approvers (peer/requester.ts).
   */
  async sign(keyId: string | undefined, digest: Uint8Array, request: Uint8Array, verdict: Verdict): Promise<SignResult> {
    return this.requester.sign(this.key(keyId), digest, request, verdict, this.quorum());
  }

  private onControl(from: Member, session: Uint8Array, c: Control): void {
    if (this.stopping) return;
    if (this.opts.intercept?.(from, session, c)) return;
    if (this.ceremonies.onControl(from, session, c)) return;
    switch (c.case) {
      case 'approvalRequest':
        return this.approver.onApprovalRequest(from, session, c.value);
      case 'approval':
        if (!this.requester.onApproval(from, session, c.value)) this.log.debug({ peer: from.org }, 'ignored an approval for no round of ours');
        return;
      case 'presignProposal':
        return this.pool.onPresignProposal(from, session, c.value);
      case 'signProposal':
        return this.cosigner.onSignProposal(from, session, c.value);
      case 'pairSetupProposal':
        return this.pairs.onPairSetupProposal(from, session, c.value);
      case 'checkpoint':
        return this.witness.onCheckpoint(from, session, c.value);
      case 'checkpointReply':
        return this.witness.onReply(from, c.value);
      case 'decision':
        if (this.requester.onDecision(from, c.value)) return;
        if (!c.value.accept && this.host.isActive(c.value.session)) this.host.fail(c.value.session, new DeclinedError('the session', from, c.value.reason, c.value.code));
        return;
      default:
        this.log.debug({ peer: from.org, kind: c.case }, 'ignored a control message');
    }
  }

  /**
   * `potluck policy release` (issue 11): free the nonce slot (chainId, from, nonce), logged in the
   * audit log. Without `force`, only once the L1 shows the nonce consumed (its confirmed nonce is
   * past it); with `force`, any slot, for the stated reason (a slot claimed by junk that will never
   * be posted). Throws SignError('bad-request') naming what is missing.
   */
  async releaseSlot(p: { chainId: number; from: string; nonce: number; force: boolean; reason: string; l1RpcUrl?: string }): Promise<{ released: boolean; detail: string }> {
    const url = p.l1RpcUrl ?? this.opts.l1RpcUrl;
    let why: string;
    if (p.force) {
      if (!p.reason.trim()) throw new SignError('bad-request', '--force needs --reason: the audit log records why a slot was freed');
      why = `forced: ${p.reason}`;
    } else {
      if (!url) throw new SignError('bad-request', 'to check that the nonce is consumed on L1, pass --l1-rpc URL (or start the daemon with it); otherwise --force --reason');
      const client = createPublicClient({ transport: http(url, { retryCount: 2, timeout: 5000 }) });
      const [chainId, confirmed] = await Promise.all([client.getChainId(), client.getTransactionCount({ address: p.from as Address, blockTag: 'latest' })]);
      if (chainId !== p.chainId) throw new SignError('bad-request', `the L1 at ${url} is chain ${chainId}, not ${p.chainId}`);
      if (confirmed <= p.nonce) throw new SignError('bad-request', `the L1 does not show nonce ${p.nonce} of ${p.from} as consumed (confirmed nonce ${confirmed}); use --force --reason to free it anyway`);
      why = `consumed on L1: confirmed nonce ${confirmed} > ${p.nonce}${p.reason ? `; ${p.reason}` : ''}`;
    }
    const rec = this.policy.recordsStore.release(p.chainId, p.from, p.nonce);
    const slot = `${p.chainId}/${p.from.toLowerCase()}/${p.nonce}`;
    if (!rec) return { released: false, detail: `no record at ${slot}` };
    this.audit.incident('slot-release', `released ${slot} (content ${rec.contentKey}): ${why}`, new TextEncoder().encode(JSON.stringify(this.policy.recordsStore.recordJson(rec))));
    this.log.warn({ slot, why }, 'nonce slot released by the operator');
    return { released: true, detail: `released ${slot}: ${why}` };
  }

  /** The operator's acknowledgement of a detected rollback (`potluck audit ack-rollback`). */
  acknowledgeRollback(reason: string): { witness: string; size: number; logSize: number } {
    const r = this.witness.acknowledge(reason);
    return { witness: r.witness, size: r.size, logSize: r.logSize };
  }

  /** Re-read policy.json (SIGHUP, admin API) and log the policy now in force. */
  reloadPolicy(): ReturnType<RequestPolicy['reload']> {
    const f = this.policy.reload();
    this.audit.policy(f);
    return f;
  }

  /** Addresses of the keys this peer holds (lowercase-insensitive match is the caller's). */
  keyAddresses(): string[] {
    return [...this.keys.values()].map((k) => k.address);
  }

  /** The signing threshold of this peer's keys (the largest, if they differ). */
  threshold(): number | undefined {
    return this.keys.size ? Math.max(...[...this.keys.values()].map((k) => k.share.threshold)) : undefined;
  }

  /** The key whose address is `address`, if this peer holds it. */
  keyIdFor(address: string): string | undefined {
    return [...this.keys.values()].find((k) => k.address.toLowerCase() === address.toLowerCase())?.share.keyId;
  }

  /**
   * `/readyz` (issues 4, 11): ready iff this peer may sign (no rollback detected, start-up check
   * done) and some key has c connected approvers among which a signer set meets the org quorum.
   */
  readiness(): { ready: true } | { ready: false; reason: string } {
    if (this.stopping) return { ready: false, reason: 'shutting down' };
    if (!this.keys.size) return { ready: false, reason: 'no key share (run potluck keygen)' };
    if (!this.policy.file) return { ready: false, reason: 'no policy file (write policy.json in the peer home, then SIGHUP)' };
    const held = this.witness.withheld();
    if (held) return { ready: false, reason: held };
    const q = this.quorum();
    const f = this.definition.faulty;
    for (const k of this.keys.values()) {
      const holders = holdersOf(this, k);
      const live = holders.filter((m) => m === this.self || this.mesh.isConnected(m.peerId)).length;
      if (live < approvalQuorum(holders.length, f)) continue;
      const burned = this.store.burnedPeers(k.share.keyId);
      if (candidateSets(k.share.parties.length, k.share.threshold, k.share.index, partyOrg(this, k), q, this.pairs.usableParty(k, burned, new Set())).length) return { ready: true };
    }
    // Counts only: /readyz needs no client certificate, so it names no org (potluck status does).
    const live = this.members.filter((m) => m !== this.self && this.mesh.isConnected(m.peerId)).length;
    const c = approvalQuorum(this.members.length, f);
    if (live + 1 < c) return { ready: false, reason: `insufficient approvers: ${live} of ${this.members.length - 1} other members connected; an approval certificate needs ${c} of ${this.members.length} members (f = ${f}) including this one` };
    return { ready: false, reason: `insufficient quorum peers: ${live} of ${this.members.length - 1} other members connected; no signer set of them meets the org quorum (${q.distinctOrgs} orgs, ${q.otherOrgs} besides this one) without a burned pair` };
  }

  status(): Record<string, unknown> {
    return {
      peerId: this.self.peerId,
      org: this.self.org,
      cluster: { name: this.definition.name, hash: '0x' + hex(this.clusterHash), threshold: this.definition.threshold, quorum: this.definition.quorum, faulty: this.definition.faulty },
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      peers: this.members.filter((m) => m !== this.self).map((m) => ({ org: m.org, peerId: m.peerId, connected: this.mesh.isConnected(m.peerId), queuedBytes: this.mesh.queued(m.peerId), ...this.node.peerInfo(m.peerId) })),
      keys: [...this.keys.values()].map((k) => ({
        keyId: k.share.keyId, epoch: k.share.epoch, address: k.address, threshold: k.share.threshold, parties: k.share.parties.length, index: k.share.index,
        pool: {
          unused: this.store.poolSize(k.share.keyId, k.share.epoch),
          bySet: this.store.poolBySet(k.share.keyId, k.share.epoch).map((r) => ({ signers: r.signers.split(',').map(Number).map(partyOrg(this, k)), owner: partyOrg(this, k)(r.owner), count: r.count })),
        },
        burnedPairs: [...this.store.burnedPeers(k.share.keyId)].map(partyOrg(this, k)),
        repeatOffenders: k.share.parties.map((_, j) => j + 1).filter((j) => j !== k.share.index && this.store.incidentCount(k.share.keyId, j) >= MAX_PAIR_INCIDENTS).map(partyOrg(this, k)),
        approvalQuorum: approvalQuorum(k.share.parties.length, this.definition.faulty),
        requesters: this.definition.requesters[k.share.keyId] ?? 'every org',
      })),
      policy: this.policy.file ? { path: this.policy.path, quorum: this.policy.file.quorum, clients: this.policy.file.clients.map((c) => c.name) } : { path: this.policy.path, missing: true },
      ready: this.readiness(),
      scheduledRefresh: this.opts.refreshEveryMs ? this.scheduled : null,
      recentSignatures: this.requester.recent,
      rollback: this.witness.rollback ? { witness: this.witness.rollback.witness, witnessedSize: this.witness.rollback.size, logSize: this.witness.rollback.logSize, detail: this.witness.rollback.detail } : null,
      sessions: { active: this.host.activeCount, awaitingApprovals: this.requester.approvalRounds, completed: this.host.stats.completed, aborted: Object.fromEntries(this.host.stats.aborted), dropped: this.host.stats.dropped, recorded: this.store.sessionCounts() },
    };
  }

  /** Scheduled refreshes: the next one, and how the last went (for status). */
  readonly scheduled: { next: string | null; last: { at: string; keyId: string; ok: boolean; detail: string } | null } = { next: null, last: null };

  private refreshTimer: NodeJS.Timeout | undefined;

  private scheduleRefresh(periodMs: number): void {
    const arm = () => {
      if (this.stopping) return;
      const at = Math.ceil((Date.now() + 1) / periodMs) * periodMs;
      this.scheduled.next = new Date(at).toISOString();
      // One pending slot at a time (not one timer kept per period).
      this.refreshTimer = setTimeout(() => void run(new Date(at).toISOString()).finally(arm), at - Date.now());
      this.refreshTimer.unref();
    };
    const run = async (slot: string) => {
      for (const keyId of [...this.keys.keys()]) {
        if (this.stopping) return;
        const at = new Date().toISOString();
        try {
          // Everyone fires at the same boundary; stragglers have most of the period (at most 10 min).
          const r = await this.ceremony({ kind: 'refresh', keyId, tag: `scheduled ${slot}` }, Math.min(periodMs * 0.9, 600_000));
          this.scheduled.last = { at, keyId, ok: true, detail: `epoch ${r.epoch}` };
          this.log.info({ keyId, epoch: r.epoch }, 'scheduled refresh done');
        } catch (e) {
          this.scheduled.last = { at, keyId, ok: false, detail: (e as Error).message };
          this.log.warn({ keyId, err: (e as Error).message }, 'scheduled refresh failed; the current epoch stays active');
        }
      }
    };
    arm();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.refill) clearInterval(this.refill);
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    for (const t of this.timers) clearInterval(t);
    this.l1?.stop();
    await this.mesh.stop();
    await this.node.stop();
    this.store.close();
    this.audit.close();
  }
}
