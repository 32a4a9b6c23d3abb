import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { systemRng, type Rng } from '../crypto/random.ts';
import { loadIdentity } from '../cluster/identity.ts';
import { definitionHash, parseDefinition, requireFullySigned, type ClusterDefinition } from '../cluster/definition.ts';
import { membersOf, type Member } from '../cluster/members.ts';
import { Mesh, type FaultHook } from '../net/mesh.ts';
import { PeerNode } from '../net/peer-node.ts';
import { AbortError, ProtocolError } from '../protocol/errors.ts';
import type { KeyShare } from '../protocol/key-share.ts';
import { ethAddress, OnlineSession, PresignSession, signInstanceId, type Signature } from '../protocol/sign.ts';
import { openKeyShare } from '../store/key-share-vault.ts';
import { PeerStore } from '../store/database.ts';
import { openPresignature, poolKey, sealPresignature } from '../store/presignature-seal.ts';
import type { Control, PairSetupProposal, PresignProposal, SignProposal } from './control.ts';
import { PairSetupSession, pairSetupInstanceId, withPair } from '../protocol/pair-setup.ts';
import { writeShare } from '../store/share-file.ts';
import { CeremonyCoordinator, CeremonyError, type CeremonyResult } from './dealing-ceremony.ts';
import { DeclinedError, SessionHost, SessionTimeoutError } from './session-host.ts';
import { candidateSets, quorumViolation, type QuorumRule } from './signer-set.ts';
import { RequestPolicy } from './request-policy.ts';
import type { Faults } from './faults.ts';
import { AuditRecorder } from './audit-recorder.ts';
import { CheckpointError, originOf } from '../audit/checkpoint.ts';
import { signerOf } from '../audit/entry.ts';
import { sha256 } from '@noble/hashes/sha2.js';
import type { Verdict } from '../policy/verdict.ts';
import type { DaemonMetrics } from './peer-metrics.ts';

/**
 * The peer daemon (`potluck start`, issue 3): unlocks its key shares, keeps connected to every
 * member, keeps a presignature pool per likely signer set, co-signs proposals it accepts, and
 * runs signing requests that reach it: pick a signer set under the org-quorum rule from the live
 * peers, spend a presignature it owns (marked used and fsync'd first, spec §2.9), and retry with
 * another set if a co-signer declines or times out. Every co-signer runs its own org's policy on the
 * request before it spends anything (`RequestPolicy`, issue 4).
 */
export class SignError extends Error {
  override readonly name = 'SignError';
  readonly code: 'unknown-key' | 'no-quorum' | 'failed' | 'bad-request';
  /** Co-signers that declined, with their reasons (their policy's refusals among them). */
  readonly declines: readonly { org: string; reason: string }[];
  constructor(code: SignError['code'], message: string, declines: readonly { org: string; reason: string }[] = []) {
    super(message);
    this.code = code;
    this.declines = declines;
  }
}

export interface DaemonOptions {
  home: string;
  passphrase: string;
  log: Logger;
  /** Presignatures this peer keeps ready per likely signer set (it owns them). 0 disables the pool. */
  poolTarget?: number;
  /** Presign sessions this peer starts at once for its pool. */
  poolConcurrency?: number;
  signTimeoutMs?: number;
  presignTimeoutMs?: number;
  maxAttempts?: number;
  faults?: Faults;
  meshFault?: FaultHook;
  /** scrypt cost for re-sealing the share after a pair re-setup (default: the vault's). */
  scryptLogN?: number;
  /** How often this peer sends its audit-log checkpoint to the others to co-sign (default 30 s). */
  checkpointIntervalMs?: number;
  /**
   * Proactive refresh (spec §2.11) on a wall-clock schedule: at every multiple of this period
   * (since the Unix epoch) every holder joins a refresh of each key, so all orgs meet without
   * coordination. 0 or absent: refresh only by command.
   */
  refreshEveryMs?: number;
}

/** Spec §2.10 rule 3: after this many burns of the same pair, no automatic re-setup; reshare the org out. */
export const MAX_PAIR_INCIDENTS = 3;
const PAIR_SETUP_TIMEOUT_MS = 60_000;
const PAIR_SETTLE_MS = 3000;
const UNKNOWN_PRESIGNATURE_WAIT_MS = 3000;

interface LoadedKey {
  /** Replaced after a pair re-setup; sessions already running keep the object they started with. */
  share: KeyShare;
  address: string;
  poolKey: Uint8Array;
  /** key party index → member index, and back. */
  memberOf: Map<number, number>;
  partyOf: Map<number, number>;
}

export interface SignResult {
  keyId: string;
  digest: string;
  r: string;
  s: string;
  yParity: 0 | 1;
  address: string;
  signers: { org: string; peerId: string }[];
  session: string;
  presignature: 'pool' | 'fresh';
  attempts: number;
  ms: number;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const u32 = (x: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, x);
  return b;
};
const presignRequest = (owner: number, nonce: Uint8Array) => {
  const out = new Uint8Array(36);
  out.set(u32(owner), 0);
  out.set(nonce, 4);
  return out;
};
const sameSet = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((x, i) => x === b[i]);

export class Daemon {
  readonly definition: ClusterDefinition;
  readonly members: Member[];
  readonly self: Member;
  readonly keys = new Map<string, LoadedKey>();
  private readonly opts: DaemonOptions;
  private readonly log: Logger;
  private readonly rng: Rng = systemRng;
  private store!: PeerStore;
  private node!: PeerNode;
  private mesh!: Mesh;
  private host!: SessionHost;
  private refill: NodeJS.Timeout | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly refilling = new Set<string>();
  private readonly resetting = new Set<string>();
  private readonly lastPairSetup = new Map<number, number>();
  /** Pairs (`keyId:party`) under OT re-setup, until the given time: no session may use them. */
  private readonly pairBusy = new Map<string, number>();
  private readonly startedAt = Date.now();
  /** The last signatures this peer requested, for `status` (who co-signed what, how fast). */
  private readonly recent: { at: string; digest: string; session: string; signers: string[]; ms: number; presignature: string }[] = [];
  private stopping = false;
  private ceremonies!: CeremonyCoordinator;
  /** This org's policy over what it signs (issue 4); loaded from `<home>/policy.json`. */
  policy!: RequestPolicy;
  /** Blame and BAN_PAIR counters (issue 6); set by the signing API's metrics, absent without them. */
  metrics?: DaemonMetrics;
  /** This peer's append-only audit log (issue 5), `<home>/audit.log`. */
  audit!: AuditRecorder;
  private signer!: { origin: string; publicKey: Uint8Array; sign: (m: Uint8Array) => Uint8Array };

  private constructor(opts: DaemonOptions, def: ClusterDefinition, members: Member[], self: Member) {
    this.opts = opts;
    this.log = opts.log;
    this.definition = def;
    this.members = members;
    this.self = self;
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
    const d = new Daemon(opts, def, members, self);
    d.loadKeys();
    d.store = new PeerStore(join(opts.home, 'potluck.db'));
    d.policy = RequestPolicy.load(opts.home, d.store.db, d.log);
    const interrupted = d.store.failInterruptedSessions();
    if (interrupted) d.log.warn({ sessions: interrupted }, 'sessions interrupted by the last shutdown marked failed');
    const clusterHash = definitionHash(def);
    d.audit = AuditRecorder.open(opts.home, clusterHash, self.peerId, key, d.log);
    d.audit.policy(d.policy.file);
    d.signer = { origin: originOf(clusterHash, self.peerId), publicKey: self.publicKey, sign: signerOf(key) };
    d.node = await PeerNode.start({ privateKey: key, listen: info.addresses, allowed: new Set(members.map((m) => m.peerId)), clusterHash });
    d.host = new SessionHost({
      self, secretKey: key, members, clusterHash, log: d.log,
      onControl: (from, session, c) => d.onControl(from, session, c),
      onBan: (culprit, e) => d.onBan(culprit, e),
      onBlame: (culprit, e) => d.metrics?.blame(culprit.org, e.check),
      transcript: (e) => d.audit.transcript(e),
      ...(opts.faults?.tamperOut ? { tamperOut: opts.faults.tamperOut } : {}),
    });
    d.ceremonies = new CeremonyCoordinator({
      home: opts.home, passphrase: opts.passphrase, log: d.log, rng: d.rng, host: d.host, self, clusterHash, members,
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
    d.node.onPeer('up', (peer) => {
      d.log.info({ peer: d.orgOf(peer) }, 'peer connected');
      d.host.peerUp(peer);
    });
    d.node.onPeer('down', (peer) => d.log.warn({ peer: d.orgOf(peer) }, 'peer disconnected'));
    d.mesh.keepConnected(1000);
    if ((opts.poolTarget ?? 2) > 0) {
      d.refill = setInterval(() => d.refillPool(), 250);
      d.refill.unref();
    }
    const repair = setInterval(() => d.resetupBurnedPairs(), 1000);
    repair.unref();
    d.timers.push(repair);
    if (opts.refreshEveryMs) d.scheduleRefresh(opts.refreshEveryMs);
    const witness = setInterval(() => d.sendCheckpoint(), opts.checkpointIntervalMs ?? 30_000);
    witness.unref();
    d.timers.push(witness);
    d.log.info({ peerId: self.peerId, org: self.org, cluster: def.name, keys: [...d.keys.keys()], listen: d.node.addresses }, 'peer started');
    return d;
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

  private partyOrg(k: LoadedKey): (p: number) => string {
    return (p) => this.host.member(k.memberOf.get(p)!).org;
  }

  private usableParty(k: LoadedKey, burned: Set<number>, excluded: Set<number>): (p: number) => boolean {
    return (p) => {
      const m = this.host.member(k.memberOf.get(p)!);
      return !burned.has(p) && !this.isPairBusy(k, p) && !excluded.has(m.index) && this.mesh.isConnected(m.peerId);
    };
  }

  private isPairBusy(k: LoadedKey, p: number): boolean {
    const until = this.pairBusy.get(`${k.share.keyId}:${p}`);
    return until !== undefined && until > Date.now();
  }

  private partiesMap(k: LoadedKey, signers: number[]): Map<number, number> {
    return new Map(signers.map((p) => [p, k.memberOf.get(p)!]));
  }

  // ---- requester side ----

  /**
   * `verdict`: the requester's own approving verdict, written to the audit log with the first
   * attempt's request (later attempts log only their request, issue 5).
   */
  async sign(keyId: string | undefined, digest: Uint8Array, request: Uint8Array = new Uint8Array(0), verdict?: Verdict): Promise<SignResult> {
    if (digest.length !== 32) throw new SignError('bad-request', `digest must be 32 bytes, got ${digest.length}`);
    const k = this.key(keyId);
    const t0 = performance.now();
    const me = k.share.index;
    const excluded = new Set<number>();
    const maxAttempts = this.opts.maxAttempts ?? 3;
    const failures: string[] = [];
    const declines: { org: string; reason: string }[] = [];
    const quorum = this.quorum();
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      const burned = this.store.burnedPeers(k.share.keyId);
      const sets = candidateSets(k.share.parties.length, k.share.threshold, me, this.partyOrg(k), quorum, this.usableParty(k, burned, excluded));
      if (!sets.length) {
        const live = this.members.filter((m) => m === this.self || this.mesh.isConnected(m.peerId)).map((m) => m.org);
        throw new SignError('no-quorum', `no signer set of ${k.share.threshold} satisfies the org quorum (${quorum.distinctOrgs} orgs, ${quorum.otherOrgs} besides ${this.self.org}) with the peers online (${live.join(', ')})${failures.length ? `; earlier attempts: ${failures.join('; ')}` : ''}`, declines);
      }
      // Prefer the set whose pool holds the most presignatures this peer owns; ties at random,
      // so that load spreads over the orgs (the choice is public, the randomness need not be secret).
      const stock = sets.map((S) => ({ S, n: this.store.countOwned(k.share.keyId, k.share.epoch, S, me) }));
      const best = Math.max(...stock.map((x) => x.n));
      const ties = stock.filter((x) => x.n === best);
      const S = ties[this.rng(1)[0]! % ties.length]!.S;
      try {
        let row = this.store.takePresignature(k.share.keyId, k.share.epoch, S, me); // used mark fsync'd here
        const fromPool = row !== undefined;
        if (!row) {
          const sigSid = await this.presign(k, S, true); // stored already used: no other request can take it
          row = this.store.getPresignature(sigSid)!;
        }
        const sig = await this.spend(k, row.sigSid, row.blob, S, digest, request, attempt === 1 ? verdict : undefined);
        const result: SignResult = {
          keyId: k.share.keyId, digest: '0x' + hex(digest), r: '0x' + sig.r.toString(16).padStart(64, '0'), s: '0x' + sig.s.toString(16).padStart(64, '0'), yParity: sig.yParity,
          address: k.address, signers: S.map((p) => this.host.member(k.memberOf.get(p)!)).map((m) => ({ org: m.org, peerId: m.peerId })),
          session: '0x' + hex(row.sigSid), presignature: fromPool ? 'pool' : 'fresh', attempts: attempt, ms: Math.round((performance.now() - t0) * 100) / 100,
        };
        this.recent.push({ at: new Date().toISOString(), digest: result.digest, session: result.session, signers: result.signers.map((x) => x.org), ms: result.ms, presignature: result.presignature });
        if (this.recent.length > 20) this.recent.shift();
        return result;
      } catch (e) {
        if (e instanceof SessionTimeoutError) for (const m of e.waitingFor) excluded.add(m.index);
        else if (e instanceof DeclinedError) {
          excluded.add(e.member.index);
          declines.push({ org: e.member.org, reason: e.reason });
          // It lost its half of our presignatures (restored from a backup, or its database is
          // gone): every one we hold with it is dead; drop them so the pool refills fresh.
          if (e.reason === 'unknown presignature') {
            const party = k.partyOf.get(e.member.index);
            if (party !== undefined) this.log.warn({ peer: e.member.org, dropped: this.store.deletePresignatures(k.share.keyId, party) }, 'peer no longer knows our presignatures; dropped every one shared with it');
          }
        }
        else if (e instanceof ProtocolError && e.culprit !== undefined) {
          const m = k.memberOf.get(e.culprit);
          if (m !== undefined) excluded.add(m);
        } else if (!(e instanceof ProtocolError)) throw e;
        failures.push(`attempt ${attempt} with ${S.map(this.partyOrg(k)).join('+')}: ${(e as Error).message}`);
        this.log.warn({ attempt, signers: S.map(this.partyOrg(k)), err: (e as Error).message }, 'signing attempt failed; retrying with another set');
      }
    }
    throw new SignError('failed', `signing failed after ${maxAttempts} attempts: ${failures.join('; ')}`, declines);
  }

  /** Flight 4 with a presignature already marked used on disk. */
  private async spend(k: LoadedKey, sigSid: Uint8Array, blob: Uint8Array, S: number[], digest: Uint8Array, request: Uint8Array, verdict?: Verdict): Promise<Signature> {
    const presig = openPresignature(blob, k.poolKey, sigSid);
    if (request.length) {
      this.audit.request({ session: sigSid, role: 'requester', requesterOrg: this.self.org, keyId: k.share.keyId, epoch: k.share.epoch, signers: S, signerOrgs: S.map(this.partyOrg(k)), request, digest });
      if (verdict) this.audit.verdict({ session: sigSid, digest, verdict, sync: false });
    }
    const proposal: SignProposal = { keyId: k.share.keyId, epoch: k.share.epoch, signers: S, presignature: sigSid, digest, request };
    const deadline = Date.now() + (this.opts.signTimeoutMs ?? 5000);
    this.store.sessionStarted(sigSid, 'sign', k.share.keyId, S, this.self.org);
    for (const p of S) if (p !== k.share.index) this.host.sendControl(k.memberOf.get(p)!, sigSid, { case: 'signProposal', value: proposal }, deadline);
    try {
      const sig = await this.host.run({ id: sigSid, protocol: 'dkls23/online/v1', what: `signature ${hex(sigSid).slice(0, 12)}`, machine: new OnlineSession(presig, digest), parties: this.partiesMap(k, S), deadline, rng: this.rng });
      this.store.sessionEnded(sigSid, true, `r=${sig.r.toString(16)}`);
      if (request.length) this.audit.signature({ session: sigSid, signature: sig, address: k.address, request, sync: true });
      return sig;
    } catch (e) {
      this.store.sessionEnded(sigSid, false, (e as Error).message);
      throw e;
    } finally {
      this.host.forget(sigSid);
    }
  }

  /** Run one presign session for S owned by this peer; the presignature lands in the pool. */
  private async presign(k: LoadedKey, S: number[], spendNow = false): Promise<Uint8Array> {
    const nonce = this.rng(32);
    const owner = k.share.index;
    const request = presignRequest(owner, nonce);
    const burned = this.store.burnedPeers(k.share.keyId);
    const machine = new PresignSession(k.share, { signers: S, request, burned });
    const id = signInstanceId(k.share, { signers: S, request });
    const deadline = Date.now() + (this.opts.presignTimeoutMs ?? 20_000);
    const proposal: PresignProposal = { keyId: k.share.keyId, epoch: k.share.epoch, signers: S, owner, nonce };
    for (const p of S) if (p !== owner) this.host.sendControl(k.memberOf.get(p)!, id, { case: 'presignProposal', value: proposal }, deadline);
    try {
      const presig = await this.host.run({ id, protocol: 'dkls23/presign/v1', what: `presign ${S.map(this.partyOrg(k)).join('+')}`, machine, parties: this.partiesMap(k, S), deadline, rng: this.rng });
      this.store.addPresignature({ sigSid: presig.sigSid, keyId: k.share.keyId, epoch: k.share.epoch, signers: S, owner, blob: sealPresignature(presig, k.poolKey, this.rng), used: spendNow });
      return presig.sigSid;
    } finally {
      this.host.forget(id);
    }
  }

  private refillPool(): void {
    if (this.stopping) return;
    const target = this.opts.poolTarget ?? 2;
    const limit = this.opts.poolConcurrency ?? 2;
    for (const k of this.keys.values()) {
      const burned = this.store.burnedPeers(k.share.keyId);
      const sets = candidateSets(k.share.parties.length, k.share.threshold, k.share.index, this.partyOrg(k), this.definition.quorum, this.usableParty(k, burned, new Set()));
      const needy = sets
        .map((S) => ({ S, have: this.store.countOwned(k.share.keyId, k.share.epoch, S, k.share.index), key: `${k.share.keyId}:${S.join(',')}` }))
        .filter((x) => x.have < target && !this.refilling.has(x.key))
        .sort((a, b) => a.have - b.have);
      for (const x of needy) {
        if (this.refilling.size >= limit) return;
        this.refilling.add(x.key);
        this.presign(k, x.S)
          .catch((e: Error) => this.log.warn({ signers: x.S.map(this.partyOrg(k)), err: e.message }, 'pool refill failed'))
          .finally(() => this.refilling.delete(x.key));
      }
    }
  }

  // ---- co-signer side ----

  private decline(to: Member, session: Uint8Array, reason: string): void {
    this.log.warn({ peer: to.org, reason }, 'declined a proposal');
    this.host.sendControl(to.index, session, { case: 'decision', value: { session, accept: false, reason } }, Date.now() + 10_000);
  }

  private onControl(from: Member, session: Uint8Array, c: Control): void {
    if (this.stopping) return;
    if (this.ceremonies.onControl(from, session, c)) return;
    switch (c.case) {
      case 'presignProposal':
        return this.onPresignProposal(from, session, c.value);
      case 'signProposal':
        return this.onSignProposal(from, session, c.value);
      case 'pairSetupProposal':
        return this.onPairSetupProposal(from, session, c.value);
      case 'checkpoint':
        try {
          this.audit.cosign(from, c.value, this.signer);
        } catch (e) {
          if (!(e instanceof CheckpointError)) throw e;
          this.log.error({ peer: from.org, err: e.message }, 'refused to co-sign an audit checkpoint');
        }
        return;
      case 'decision':
        if (!c.value.accept && this.host.isActive(c.value.session)) this.host.fail(c.value.session, new DeclinedError('the session', from, c.value.reason));
        return;
      default:
        this.log.debug({ peer: from.org, kind: c.case }, 'ignored a control message');
    }
  }

  /** Common checks of a proposal; returns the key or a reason to decline. */
  private checkProposal(from: Member, p: { keyId: string; epoch: number; signers: number[] }): LoadedKey | string {
    const k = this.keys.get(p.keyId);
    if (!k) return `unknown key "${p.keyId}"`;
    if (p.epoch !== k.share.epoch) return `key ${p.keyId} is at epoch ${k.share.epoch}, not ${p.epoch}`;
    const proposer = k.partyOf.get(from.index);
    if (proposer === undefined) return `${from.org} holds no share of ${p.keyId}`;
    if (p.signers.length !== k.share.threshold || !p.signers.every((x, i) => i === 0 || x > p.signers[i - 1]!) || p.signers.some((x) => !k.memberOf.has(x))) return 'malformed signer set';
    if (!p.signers.includes(k.share.index)) return 'this peer is not in the signer set';
    const why = quorumViolation(p.signers, proposer, this.partyOrg(k), this.definition.quorum);
    if (why) return why;
    const burned = this.store.burnedPeers(k.share.keyId);
    const b = p.signers.find((x) => burned.has(x));
    if (b !== undefined) return `the pair with ${this.partyOrg(k)(b)} is burned until its OT setup is redone`;
    const busy = p.signers.find((x) => x !== k.share.index && this.isPairBusy(k, x));
    if (busy !== undefined) return `the OT setup with ${this.partyOrg(k)(busy)} is being redone`;
    return k;
  }

  private onPresignProposal(from: Member, session: Uint8Array, p: PresignProposal): void {
    const k = this.checkProposal(from, p);
    if (typeof k === 'string') return this.decline(from, session, k);
    if (p.owner !== k.partyOf.get(from.index)) return this.decline(from, session, 'a presignature must be owned by its proposer');
    const cap = 2 * (this.opts.poolTarget ?? 2) + 4;
    if (this.store.countOwned(k.share.keyId, k.share.epoch, p.signers, p.owner) >= cap) return this.decline(from, session, `pool for this set already holds ${cap} presignatures owned by ${from.org}`);
    const request = presignRequest(p.owner, p.nonce);
    if (hex(signInstanceId(k.share, { signers: p.signers, request })) !== hex(session)) return this.decline(from, session, 'session id does not match the proposal');
    if (this.host.isActive(session)) return;
    const machine = new PresignSession(k.share, { signers: p.signers, request, burned: this.store.burnedPeers(k.share.keyId) });
    this.host
      .run({ id: session, protocol: 'dkls23/presign/v1', what: `presign for ${from.org}`, machine, parties: this.partiesMap(k, p.signers), deadline: Date.now() + (this.opts.presignTimeoutMs ?? 20_000), rng: this.rng })
      .then((presig) => this.store.addPresignature({ sigSid: presig.sigSid, keyId: k.share.keyId, epoch: k.share.epoch, signers: p.signers, owner: p.owner, blob: sealPresignature(presig, k.poolKey, this.rng) }))
      .catch((e: Error) => this.log.warn({ peer: from.org, err: e.message }, 'presign session failed'))
      .finally(() => this.host.forget(session));
  }

  private onSignProposal(from: Member, session: Uint8Array, p: SignProposal, waited = 0): void {
    const k = this.checkProposal(from, p);
    if (typeof k === 'string') return this.decline(from, session, k);
    if (hex(session) !== hex(p.presignature)) return this.decline(from, session, 'session id must be the presignature id');
    if (this.host.isActive(session)) return;
    const row = this.store.getPresignature(p.presignature);
    if (!row) {
      // A requester that presigned on demand proposes as soon as its own flight 3 is done; ours
      // may still be finishing under load, so wait a little before calling it unknown.
      if (waited < UNKNOWN_PRESIGNATURE_WAIT_MS && this.host.activeCount > 0) {
        const t = setTimeout(() => this.onSignProposal(from, session, p, waited + 50), 50);
        t.unref();
        return;
      }
      return this.decline(from, session, 'unknown presignature');
    }
    if (row.owner !== k.partyOf.get(from.index) || !sameSet(row.signers, p.signers)) return this.decline(from, session, 'presignature belongs to another requester or signer set');
    // Issue 4: this org decides on its own, from the request itself; the verdict is recorded.
    const signerOrgs = p.signers.map(this.partyOrg(k));
    const verdict = this.policy.cosign({ request: p.request, digest: p.digest, session: p.presignature, requesterOrg: from.org, signerOrgs, keyAddress: k.address });
    if (verdict.verdict) {
      this.audit.request({ session: p.presignature, role: 'cosigner', requesterOrg: from.org, keyId: k.share.keyId, epoch: k.share.epoch, signers: p.signers, signerOrgs, request: p.request, digest: p.digest });
      this.audit.verdict({ session: p.presignature, digest: p.digest, verdict: verdict.verdict });
    }
    if (!verdict.ok) return this.decline(from, session, verdict.reason);
    // Spec §2.9: persist the used mark before the partial signature leaves the process.
    if (!this.store.markUsed(p.presignature, { kind: 'cosign', keyId: k.share.keyId, signers: p.signers, requester: from.org })) return this.decline(from, session, 'presignature already used');
    this.opts.faults?.afterUsedMark?.();
    let machine: OnlineSession;
    try {
      machine = new OnlineSession(openPresignature(row.blob, k.poolKey, p.presignature), p.digest);
    } catch (e) {
      this.store.sessionEnded(session, false, (e as Error).message);
      return this.decline(from, session, `cannot open presignature (${(e as Error).message})`);
    }
    this.host
      .run({ id: session, protocol: 'dkls23/online/v1', what: `co-signature for ${from.org}`, machine, parties: this.partiesMap(k, p.signers), deadline: Date.now() + (this.opts.signTimeoutMs ?? 5000), rng: this.rng })
      .then((sig) => {
        this.store.sessionEnded(session, true, `r=${sig.r.toString(16)}`);
        this.audit.signature({ session, signature: sig, address: k.address, request: p.request, sync: false });
      })
      .catch((e: Error) => {
        this.store.sessionEnded(session, false, e.message);
        this.log.warn({ peer: from.org, err: e.message }, 'co-signing session failed');
      })
      .finally(() => this.host.forget(session));
  }

  // ---- pair re-setup (spec §2.10 rule 2) ----

  /** The side that burned a pair proposes a fresh OT setup once the peer is connected. */
  private resetupBurnedPairs(): void {
    if (this.stopping) return;
    for (const k of this.keys.values())
      for (const p of this.store.burnedPeers(k.share.keyId)) {
        const m = this.host.member(k.memberOf.get(p)!);
        const key = `${k.share.keyId}:${p}`;
        if (this.resetting.has(key) || !this.mesh.isConnected(m.peerId)) continue;
        if (this.store.incidentCount(k.share.keyId, p) >= MAX_PAIR_INCIDENTS) continue; // reported by status
        this.resetting.add(key);
        this.pairSetup(k, p, this.rng(32), true)
          .catch((e: Error) => this.log.warn({ peer: m.org, err: e.message }, 'OT re-setup failed; will retry'))
          .finally(() => setTimeout(() => this.resetting.delete(key), 5000).unref());
      }
  }

  private onPairSetupProposal(from: Member, session: Uint8Array, p: PairSetupProposal): void {
    const k = this.keys.get(p.keyId);
    if (!k) return this.decline(from, session, `unknown key "${p.keyId}"`);
    if (p.epoch !== k.share.epoch) return this.decline(from, session, `key ${p.keyId} is at epoch ${k.share.epoch}, not ${p.epoch}`);
    const party = k.partyOf.get(from.index);
    if (party === undefined) return this.decline(from, session, `${from.org} holds no share of ${p.keyId}`);
    if (hex(pairSetupInstanceId(k.share, party, p.nonce)) !== hex(session)) return this.decline(from, session, 'session id does not match the proposal');
    if (this.host.isActive(session)) return;
    const last = this.lastPairSetup.get(from.index) ?? 0;
    if (Date.now() - last < 10_000) return this.decline(from, session, 'an OT re-setup with this peer ran less than 10 s ago');
    this.lastPairSetup.set(from.index, Date.now());
    this.pairSetup(k, party, p.nonce, false).catch((e: Error) => this.log.warn({ peer: from.org, err: e.message }, 'OT re-setup failed'));
  }

  /** Run the pair setup, persist the new share (sealed, atomic) before using it, then unburn. */
  private async pairSetup(k: LoadedKey, party: number, nonce: Uint8Array, propose: boolean): Promise<void> {
    const m = this.host.member(k.memberOf.get(party)!);
    const id = pairSetupInstanceId(k.share, party, nonce);
    const deadline = Date.now() + PAIR_SETUP_TIMEOUT_MS;
    if (propose) this.host.sendControl(m.index, id, { case: 'pairSetupProposal', value: { keyId: k.share.keyId, epoch: k.share.epoch, nonce } }, deadline);
    this.log.info({ peer: m.org }, 'OT re-setup started');
    // Both ends switch OT state at slightly different moments: no session may use the pair while
    // it is redone, nor shortly after, or old and new state would meet and look like an attack.
    const busyKey = `${k.share.keyId}:${party}`;
    this.pairBusy.set(busyKey, Number.POSITIVE_INFINITY);
    this.host.abortWith(m.index, new AbortError('burned-pair', `OT setup with ${m.org} is being redone`));
    try {
      const pair = await this.host.run({
        id, protocol: 'dkls23/pair-setup/v1', what: `OT re-setup with ${m.org}`, machine: new PairSetupSession(k.share, party, nonce),
        parties: this.partiesMap(k, [k.share.index, party].sort((a, b) => a - b)), deadline, rng: this.rng,
      }).finally(() => this.host.forget(id));
      const share = withPair(k.share, party, pair);
      writeShare(this.opts.home, share, this.opts.passphrase, this.opts.scryptLogN);
      this.audit.key(share, 'pair-setup');
      k.share = share;
      const dropped = this.store.deletePresignatures(k.share.keyId, party);
      this.store.unburnPair(k.share.keyId, party);
      this.log.info({ peer: m.org, droppedPresignatures: dropped }, 'OT re-setup done: pair usable again');
    } finally {
      this.pairBusy.set(busyKey, Date.now() + PAIR_SETTLE_MS);
    }
  }

  /** Spec §2.10: burn the pair persistently, abort every session with the culprit, report it. */
  private onBan(culprit: Member, e: ProtocolError): void {
    for (const k of this.keys.values()) {
      const p = k.partyOf.get(culprit.index);
      if (p === undefined) continue;
      this.store.burnPair(k.share.keyId, p, e.check, e instanceof AbortError ? e.evidence : undefined);
      this.audit.burn({ keyId: k.share.keyId, peer: p, peerOrg: culprit.org, session: new Uint8Array(0), check: e.check });
    }
    const n = this.host.abortWith(culprit.index, e);
    this.log.error({ peer: culprit.org, peerId: culprit.peerId, check: e.check, aborted: n }, 'BAN_PAIR: pair burned until its OT setup is redone');
    this.metrics?.pairBurned(culprit.org);
  }

  /** Send this log's checkpoint to every connected member to co-sign (C2SP tlog-witness style). */
  private sendCheckpoint(): void {
    if (this.stopping) return;
    const c = this.audit.checkpointToSend();
    if (!c) return;
    const session = sha256(new TextEncoder().encode(c.note));
    for (const m of this.members) if (m !== this.self && this.mesh.isConnected(m.peerId)) this.host.sendControl(m.index, session, { case: 'checkpoint', value: c }, Date.now() + 10_000);
    setTimeout(() => this.host.forgetControl(session), 10_000).unref();
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

  /** `/readyz` (issue 4): ready iff some key can form a signer set with the peers online now. */
  readiness(): { ready: true } | { ready: false; reason: string } {
    if (this.stopping) return { ready: false, reason: 'shutting down' };
    if (!this.keys.size) return { ready: false, reason: 'no key share (run potluck keygen)' };
    if (!this.policy.file) return { ready: false, reason: 'no policy file (write policy.json in the peer home, then SIGHUP)' };
    const q = this.quorum();
    for (const k of this.keys.values()) {
      const burned = this.store.burnedPeers(k.share.keyId);
      if (candidateSets(k.share.parties.length, k.share.threshold, k.share.index, this.partyOrg(k), q, this.usableParty(k, burned, new Set())).length) return { ready: true };
    }
    // Counts only: /readyz needs no client certificate, so it names no org (potluck status does).
    const live = this.members.filter((m) => m !== this.self && this.mesh.isConnected(m.peerId)).length;
    return { ready: false, reason: `insufficient quorum peers: ${live} of ${this.members.length - 1} other members connected; no signer set of them meets the org quorum (${q.distinctOrgs} orgs, ${q.otherOrgs} besides this one) without a burned pair` };
  }

  status(): Record<string, unknown> {
    return {
      peerId: this.self.peerId,
      org: this.self.org,
      cluster: { name: this.definition.name, hash: '0x' + hex(definitionHash(this.definition)), threshold: this.definition.threshold, quorum: this.definition.quorum },
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      peers: this.members.filter((m) => m !== this.self).map((m) => ({ org: m.org, peerId: m.peerId, connected: this.mesh.isConnected(m.peerId), queuedBytes: this.mesh.queued(m.peerId), ...this.node.peerInfo(m.peerId) })),
      keys: [...this.keys.values()].map((k) => ({
        keyId: k.share.keyId, epoch: k.share.epoch, address: k.address, threshold: k.share.threshold, parties: k.share.parties.length, index: k.share.index,
        pool: {
          unused: this.store.poolSize(k.share.keyId, k.share.epoch),
          bySet: this.store.poolBySet(k.share.keyId, k.share.epoch).map((r) => ({ signers: r.signers.split(',').map(Number).map(this.partyOrg(k)), owner: this.partyOrg(k)(r.owner), count: r.count })),
        },
        burnedPairs: [...this.store.burnedPeers(k.share.keyId)].map(this.partyOrg(k)),
        repeatOffenders: k.share.parties.map((_, j) => j + 1).filter((j) => j !== k.share.index && this.store.incidentCount(k.share.keyId, j) >= MAX_PAIR_INCIDENTS).map(this.partyOrg(k)),
      })),
      policy: this.policy.file ? { path: this.policy.path, quorum: this.policy.file.quorum, clients: this.policy.file.clients.map((c) => c.name) } : { path: this.policy.path, missing: true },
      ready: this.readiness(),
      scheduledRefresh: this.opts.refreshEveryMs ? this.scheduled : null,
      recentSignatures: this.recent,
      sessions: { active: this.host.activeCount, completed: this.host.stats.completed, aborted: Object.fromEntries(this.host.stats.aborted), dropped: this.host.stats.dropped, recorded: this.store.sessionCounts() },
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
    await this.mesh.stop();
    await this.node.stop();
    this.store.close();
    this.audit.close();
  }
}
