import { existsSync, renameSync } from 'node:fs';
import type { Logger } from 'pino';
import { hash32 } from '../crypto/hash.ts';
import type { Rng } from '../crypto/random.ts';
import type { Member } from '../cluster/members.ts';
import { DealingSession, dealingInstanceId, type DealingRequest } from '../protocol/dkg.ts';
import type { KeyShare } from '../protocol/key-share.ts';
import { sealKeyShare, DEFAULT_SCRYPT } from '../store/key-share-vault.ts';
import { pointFromBytes } from '../crypto/scalar-point.ts';
import { ethAddress } from '../protocol/sign.ts';
import { fsyncDir, shareFile, writeDurable } from '../store/share-file.ts';
import type { Point } from '../crypto/scalar-point.ts';
import { MAX_FRAME_LIFETIME_MS } from '../net/replay-guard.ts';
import { KEY_ID, decodeParams, encodeParams, paramsProblem, type CeremonyParams } from './ceremony-params.ts';
import type { CeremonyAck, Control } from './control.ts';
import { SessionHost, SessionTimeoutError } from './session-host.ts';

/**
 * Refresh (spec §2.11) and reshare (§2.12) run by the daemons while they keep signing with the
 * current epoch. Every participating operator asks for the same ceremony (`potluck refresh` /
 * `potluck reshare`); joins carry a fresh nonce and a digest of the parameters, so everyone
 * provably agreed on them. The new share is written next to the old one; only when every
 * participant has acknowledged holding its new share does anyone replace (delete) the old one.
 */
export class CeremonyError extends Error {
  override readonly name = 'CeremonyError';
}

export interface DealingPlan {
  kind: 'refresh' | 'reshare';
  keyId: string;
  /** New threshold (refresh: unchanged). */
  threshold: number;
  /** Orgs whose members stop holding the key (reshare only). */
  remove: string[];
  /**
   * Orgs that receive a share without dealing (reshare only): members of the cluster definition
   * that are new, or that lost their share (recovery). They run the same command without a key.
   */
  add: string[];
  /** A newcomer's check on what it joins: the key's address (0x…, any case). */
  address?: string;
  /** Part of the agreed parameters: a scheduled refresh names its time slot, so a join left over from the last slot never matches. */
  tag?: string;
}

export interface CeremonyContext {
  home: string;
  passphrase: string;
  scryptLogN?: number;
  log: Logger;
  rng: Rng;
  host: SessionHost;
  self: Member;
  clusterHash: Uint8Array;
  /** Every member of the cluster definition (newcomers are found here). */
  members: readonly Member[];
  isConnected: (m: Member) => boolean;
  /** A join or ack from `from` was refused, and why (metrics, tests). */
  onRefuse?: (from: Member, why: CeremonyRefusal, detail: string) => void;
  /** Clock in ms for the join and ack bounds (default Date.now; tests). */
  now?: () => number;
}

export interface CeremonyResult {
  kind: string;
  keyId: string;
  epoch: number;
  threshold: number;
  holders: string[];
  publicKey: string;
  ms: number;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/**
 * Bounds on what peers can make a coordinator hold (issue 11). A member runs one ceremony at a
 * time, so it has one live join and one pending ack here; 4 of each leave room for a retry and
 * a ceremony of each kind. Joins are kept 10 minutes (operators start the command within
 * minutes of each other), acks as long as any frame may live. Every join and ack beyond these is
 * refused by name (`CeremonyRefusal`) or evicts the same member's oldest.
 */
export const MAX_JOINS_PER_MEMBER = 4;
export const MAX_ACKS_PER_MEMBER = 4;
export const JOIN_TTL_MS = 10 * 60_000;
export const ACK_TTL_MS = MAX_FRAME_LIFETIME_MS;
/** Acks are awaited this long after the ceremony's deadline. */
const ACK_WINDOW_MS = 60_000;
/** The longest --timeout a ceremony accepts: its frames (joins, DKG, acks) must not outlive the replay window. */
export const MAX_CEREMONY_TIMEOUT_MS = MAX_FRAME_LIFETIME_MS - ACK_WINDOW_MS;

/** Why a join or ack from a peer was not kept. */
export type CeremonyRefusal = 'join-key' | 'join-session' | 'join-params' | 'ack-kind';

/** H(S′): the digest of a ceremony's new public shares, in key-party order, that its acks name. */
export const publicSharesHash = (shares: readonly Point[]): Uint8Array => hash32('ceremony/public-shares', shares.length, ...shares.map((p) => p.toBytes(true)));

/** The join session of a ceremony: every join for (kind, key) travels on it. */
export const joinSessionOf = (clusterHash: Uint8Array, kind: string, keyId: string): Uint8Array =>
  hash32('ceremony/join', clusterHash, new TextEncoder().encode(kind), new TextEncoder().encode(keyId));

interface Join { nonce: Uint8Array; params: Uint8Array; at: number }
interface HeldAck { ack: CeremonyAck; at: number }

/** An ack names the outcome it acknowledges: every field must equal ours. */
export const sameOutcome = (a: CeremonyAck, b: CeremonyAck): boolean =>
  a.kind === b.kind && a.keyId === b.keyId && a.epoch === b.epoch && hex(a.dkgSessionId) === hex(b.dkgSessionId) && hex(a.publicKey) === hex(b.publicKey) &&
  hex(a.publicSharesHash) === hex(b.publicSharesHash) && hex(a.echo) === hex(b.echo);

export class CeremonyCoordinator {
  private readonly ctx: CeremonyContext;
  /** Joins seen per join session (they may arrive before our operator asks). */
  private readonly joins = new Map<string, Map<number, Join>>();
  /** Acks per member, by new dkgSid (oldest first). */
  private readonly acks = new Map<number, Map<string, HeldAck>>();
  private readonly refused = new Map<CeremonyRefusal, number>();
  private readonly wake = new Set<() => void>();
  private running = false;

  constructor(ctx: CeremonyContext) {
    this.ctx = ctx;
  }

  /** Sizes, for tests and status. */
  stats(): { joinSessions: number; joins: number; acks: number; refused: Partial<Record<CeremonyRefusal, number>> } {
    let joins = 0, acks = 0;
    for (const m of this.joins.values()) joins += m.size;
    for (const m of this.acks.values()) acks += m.size;
    return { joinSessions: this.joins.size, joins, acks, refused: Object.fromEntries(this.refused) };
  }

  private refuse(from: Member, why: CeremonyRefusal, detail: string): true {
    this.refused.set(why, (this.refused.get(why) ?? 0) + 1);
    this.ctx.log.debug({ peer: from.org, refusal: why, detail }, 'ceremony: refused a message');
    this.ctx.onRefuse?.(from, why, detail);
    return true;
  }

  /** Route a join or ack; returns false for other control messages. */
  onControl(from: Member, session: Uint8Array, c: Control): boolean {
    const now = (this.ctx.now ?? Date.now)();
    if (c.case === 'join') {
      if (c.value.kind !== 'refresh' && c.value.kind !== 'reshare') return true; // keygen joins are the keygen process's
      if (!KEY_ID.test(c.value.keyId)) return this.refuse(from, 'join-key', 'not a key name');
      if (hex(joinSessionOf(this.ctx.clusterHash, c.value.kind, c.value.keyId)) !== hex(session)) return this.refuse(from, 'join-session', 'not the join session of its kind and key');
      const problem = paramsProblem(c.value.params);
      if (problem) return this.refuse(from, 'join-params', problem);
      this.pruneJoins(now);
      const key = hex(session);
      const m = this.joins.get(key) ?? new Map<number, Join>();
      if (!m.has(from.index)) this.makeRoomForJoin(from.index);
      m.set(from.index, { nonce: c.value.nonce, params: c.value.params, at: now });
      this.joins.set(key, m);
    } else if (c.case === 'ack') {
      if (c.value.kind !== 'refresh' && c.value.kind !== 'reshare') return this.refuse(from, 'ack-kind', `kind "${c.value.kind.slice(0, 32)}"`);
      const mine = this.acks.get(from.index) ?? new Map<string, HeldAck>();
      for (const [k, a] of mine) if (now - a.at > ACK_TTL_MS) mine.delete(k);
      const key = hex(c.value.dkgSessionId);
      mine.delete(key); // re-inserted as the newest
      mine.set(key, { ack: c.value, at: now });
      while (mine.size > MAX_ACKS_PER_MEMBER) mine.delete(mine.keys().next().value!);
      this.acks.set(from.index, mine);
    } else return false;
    for (const w of this.wake) w();
    return true;
  }

  private pruneJoins(now: number): void {
    for (const [k, v] of this.joins) {
      for (const [i, j] of v) if (now - j.at > JOIN_TTL_MS) v.delete(i);
      if (!v.size) this.joins.delete(k);
    }
  }

  /** Before a member's new join: evict its oldest while it holds MAX_JOINS_PER_MEMBER. */
  private makeRoomForJoin(member: number): void {
    for (;;) {
      const held = [...this.joins].filter(([, v]) => v.has(member)).sort(([, a], [, b]) => a.get(member)!.at - b.get(member)!.at);
      if (held.length < MAX_JOINS_PER_MEMBER) return;
      const [k, v] = held[0]!;
      v.delete(member);
      if (!v.size) this.joins.delete(k);
    }
  }

  private ackOf(member: number, dkgSid: string): CeremonyAck | undefined {
    return this.acks.get(member)?.get(dkgSid)?.ack;
  }

  /**
   * Wait until each of `others` has acknowledged exactly the outcome `ack` names. An ack of the
   * same DKG session naming another outcome (new public shares, round-4 echo, key or epoch)
   * rejects at once, naming its sender: `kept` says what stays on disk. The acks are then dropped.
   */
  async awaitAcks(ack: CeremonyAck, others: readonly Member[], deadline: number, kept: string): Promise<void> {
    const key = hex(ack.dkgSessionId);
    try {
      await this.waitFor(`acknowledgements of the new ${ack.keyId} shares`, deadline, () => {
        const missing = others.filter((m) => !this.ackOf(m.index, key));
        return missing.length ? missing : undefined;
      }, (missing) => `${missing.map((m) => m.org).join(', ')}; ${kept}`, () => {
        const other = others.find((m) => { const a = this.ackOf(m.index, key); return a !== undefined && !sameOutcome(a, ack); });
        return other && `${other.org} acknowledged another outcome of this ${ack.kind} (its new public shares, round-4 echo, key or epoch differ from ours); ${kept}`;
      });
    } finally {
      for (const m of others) this.acks.get(m.index)?.delete(key);
    }
  }

  /** Wait until `ready()` names nobody missing; reject at the deadline, or at once if `broken()` names a reason. */
  private waitFor(what: string, deadline: number, ready: () => Member[] | undefined, describe: (missing: Member[]) => string, broken?: () => string | undefined): Promise<void> {
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (e?: Error) => {
        this.wake.delete(check);
        clearTimeout(timer);
        if (e) reject(e);
        else resolve();
      };
      const check = () => {
        const why = broken?.();
        if (why) return done(new CeremonyError(why));
        if (ready() === undefined) done();
      };
      this.wake.add(check);
      timer = setTimeout(() => done(new CeremonyError(`${what} timed out waiting for: ${describe(ready() ?? [])}`)), Math.max(0, deadline - Date.now()));
      check();
    });
  }

  /**
   * Run the ceremony for `share` (the current epoch), with `holders` the members of the old key
   * in key-party order (party k = holders[k-1]). A newcomer (reshare `add`) passes neither and
   * learns both from the holders' joins. Resolves with the new share, already the only one on disk.
   */
  async run(share: KeyShare | undefined, holders: Member[] | undefined, plan: DealingPlan, timeoutMs: number): Promise<{ share: KeyShare; result: CeremonyResult }> {
    if (!(timeoutMs > 0 && timeoutMs <= MAX_CEREMONY_TIMEOUT_MS)) throw new CeremonyError(`the timeout must be between 1 and ${MAX_CEREMONY_TIMEOUT_MS / 1000} seconds (the replay window outlasts every frame of a ceremony)`);
    if (!KEY_ID.test(plan.keyId)) throw new CeremonyError(`key name "${plan.keyId}" must be 1–64 of a-z, 0-9, "_" or "-", starting with a letter or digit`);
    if (this.running) throw new CeremonyError('another refresh or reshare is running on this peer');
    this.running = true;
    try {
      return await this.runInner(share, holders, plan, timeoutMs);
    } finally {
      this.running = false;
    }
  }

  private memberByOrg(org: string, flag: string): Member {
    const m = this.ctx.members.find((x) => x.org === org);
    if (!m) throw new CeremonyError(`${flag} ${org}: no such org in the cluster definition (${this.ctx.members.map((x) => x.org).join(', ')}); add it to cluster.json first`);
    return m;
  }

  /** The agreed parameters: ours from the share, or (newcomer) the holders' as they arrive. */
  private async agree(share: KeyShare | undefined, holders: Member[] | undefined, plan: DealingPlan, joinKey: string, deadline: number): Promise<CeremonyParams> {
    const { ctx } = this;
    if (share && holders) {
      return {
        v: 1, kind: plan.kind, keyId: plan.keyId, epoch: share.epoch, oldThreshold: share.threshold, threshold: plan.threshold,
        publicKey: hex(share.publicKey.toBytes(true)), holders: holders.map((m) => m.peerId), remove: plan.remove, add: plan.add, tag: plan.tag ?? '',
      };
    }
    if (plan.kind !== 'reshare' || !plan.add.includes(ctx.self.org)) throw new CeremonyError(`this peer holds no share of ${plan.keyId}; it can only join a reshare that adds it (--add ${ctx.self.org})`);
    ctx.log.info({ keyId: plan.keyId }, 'ceremony: no share here; waiting for a holder\'s join to learn the key');
    let found: CeremonyParams | undefined;
    const fits = (p: CeremonyParams) =>
      p.kind === 'reshare' && p.keyId === plan.keyId && p.threshold === plan.threshold && hex(encodeParams({ ...p, remove: plan.remove, add: plan.add, tag: plan.tag ?? '' })) === hex(encodeParams(p)) &&
      (!plan.address || ethAddress(pointFromBytes(Buffer.from(p.publicKey, 'hex'), 'publicKey')).toLowerCase() === plan.address.toLowerCase());
    await this.waitFor(`reshare of ${plan.keyId}`, deadline, () => {
      for (const [from, j] of this.joins.get(joinKey) ?? []) {
        const p = decodeParams(j.params);
        if (p && p.holders.includes(ctx.members.find((m) => m.index === from)?.peerId ?? '') && fits(p)) found = p;
      }
      return found ? undefined : [];
    }, () => 'a holder asking for this reshare (same --threshold, --remove and --add, and the expected --address) – has any holder run it?');
    return found!;
  }

  private async runInner(share: KeyShare | undefined, holders: Member[] | undefined, plan: DealingPlan, timeoutMs: number): Promise<{ share: KeyShare; result: CeremonyResult }> {
    const t0 = performance.now();
    const { ctx } = this;
    const deadline = Date.now() + timeoutMs;
    if (plan.kind === 'refresh' && (plan.remove.length || plan.add.length || (share && plan.threshold !== share.threshold))) throw new CeremonyError('a refresh keeps the holders and the threshold; use reshare to change them');
    if (plan.remove.includes(ctx.self.org) && !plan.add.includes(ctx.self.org)) throw new CeremonyError(`this org (${ctx.self.org}) is being removed; it does not take part in the reshare`);
    if (holders) {
      const unknown = plan.remove.filter((o) => !holders.some((m) => m.org === o));
      if (unknown.length) throw new CeremonyError(`--remove ${unknown.join(', ')}: no such org holds key ${plan.keyId}`);
    }
    for (const o of plan.add) this.memberByOrg(o, '--add');
    const joinSession = joinSessionOf(ctx.clusterHash, plan.kind, plan.keyId);
    const joinKey = hex(joinSession);
    const agreed = await this.agree(share, holders, plan, joinKey, deadline);
    const params = encodeParams(agreed);
    const byPeer = (id: string) => ctx.members.find((m) => m.peerId === id);
    const oldHolders = agreed.holders.map((id) => byPeer(id));
    if (oldHolders.some((m) => !m)) throw new CeremonyError(`key ${plan.keyId}: a holder of the old key is not in this cluster definition; keep every old holder in cluster.json until the reshare is done`);
    const old = oldHolders as Member[];
    const added = plan.add.map((o) => this.memberByOrg(o, '--add'));
    // New holders: the old ones minus the removed, plus the added (a recovered org is both).
    const stay = old.filter((m) => !plan.remove.includes(m.org) && !plan.add.includes(m.org));
    const remaining = [...stay, ...added].sort((a, b) => Buffer.compare(a.publicKey, b.publicKey));
    if (stay.length < agreed.oldThreshold) throw new CeremonyError(`only ${stay.length} holders with a share would deal; the old key needs ${agreed.oldThreshold} of them`);
    if (plan.threshold < 2 || plan.threshold > remaining.length) throw new CeremonyError(`--threshold ${plan.threshold} must be in 2..${remaining.length}`);
    const oldIndex = (m: Member) => old.indexOf(m) + 1;
    const myNonce = ctx.rng(32);
    const others = remaining.filter((m) => m !== ctx.self);
    // Drop stale joins of ours from an earlier attempt; keep the others' (they may be waiting).
    this.joins.get(joinKey)?.delete(ctx.self.index);
    for (const m of others) ctx.host.sendControl(m.index, joinSession, { case: 'join', value: { kind: plan.kind, keyId: plan.keyId, nonce: myNonce, params } }, deadline);
    ctx.log.info({ kind: plan.kind, keyId: plan.keyId, threshold: plan.threshold, holders: remaining.map((m) => m.org) }, 'ceremony: waiting for every holder to join');
    const joined = () => this.joins.get(joinKey) ?? new Map<number, Join>();
    await this.waitFor(`${plan.kind} of ${plan.keyId}`, deadline, () => {
      const j = joined();
      const missing = others.filter((m) => !j.has(m.index) || hex(j.get(m.index)!.params) !== hex(params));
      return missing.length ? missing : undefined;
    }, (missing) => missing.map((m) => `${m.org} (${joined().has(m.index) ? 'asked for different parameters: same --threshold, --remove and --add everywhere?' : ctx.isConnected(m) ? 'connected, has not run the command' : 'not connected'})`).join(', '));
    ctx.host.forgetControl(joinSession);
    const nonces = remaining.map((m) => (m === ctx.self ? myNonce : joined().get(m.index)!.nonce));
    this.joins.delete(joinKey);
    const nonce = hash32('ceremony/nonce', joinSession, params, ...nonces);

    const all = remaining.map((_, k) => k + 1);
    const canDeal = all.filter((k) => stay.includes(remaining[k - 1]!));
    const dealerSessions = plan.kind === 'refresh' ? all : canDeal.slice(0, agreed.oldThreshold);
    const req: DealingRequest = {
      kind: plan.kind, keyId: plan.keyId, epoch: agreed.epoch + 1, threshold: plan.threshold,
      participants: remaining.map((m) => m.publicKey), dealers: dealerSessions, receivers: all,
      dealerOldIndices: dealerSessions.map((s) => oldIndex(remaining[s - 1]!)), nonce,
    };
    const selfSession = remaining.indexOf(ctx.self) + 1;
    ctx.log.info({ kind: plan.kind, keyId: plan.keyId }, 'ceremony: everyone joined, dealing');
    const output = await ctx.host
      .run({
        id: dealingInstanceId(req), protocol: 'dkls23/dkg/v1', what: `${plan.kind} of ${plan.keyId}`,
        machine: new DealingSession(req, selfSession, share),
        parties: new Map(remaining.map((m, k) => [k + 1, m.index])), deadline, rng: ctx.rng,
      })
      .catch((e: Error) => {
        throw new CeremonyError(e instanceof SessionTimeoutError ? e.message : `${plan.kind} failed: ${e.message}`);
      });
    const next = output.share!;
    if (hex(next.publicKey.toBytes(true)) !== agreed.publicKey) throw new CeremonyError(`${plan.kind} changed the public key; keeping the old share`);
    // The new share is durable before we acknowledge it.
    const path = shareFile(ctx.home, plan.keyId);
    writeDurable(`${path}.next`, sealKeyShare(next, ctx.passphrase, ctx.rng, { ...DEFAULT_SCRYPT, logN: ctx.scryptLogN ?? DEFAULT_SCRYPT.logN }));
    // The ack names this outcome: the new public shares and the round-4 echo (issue 12), so an
    // ack from a holder that saw anything else is refused rather than counted.
    const ack: CeremonyAck = {
      kind: plan.kind, keyId: plan.keyId, epoch: next.epoch, dkgSessionId: next.dkgSid, publicKey: next.publicKey.toBytes(true),
      publicSharesHash: publicSharesHash(output.publicShares), echo: output.echo,
    };
    for (const m of others) ctx.host.sendControl(m.index, next.dkgSid, { case: 'ack', value: ack }, deadline + ACK_WINDOW_MS);
    await this.awaitAcks(ack, others, deadline + ACK_WINDOW_MS, `the new share is kept at ${path}.next and the old one stays active`);
    ctx.host.forgetControl(next.dkgSid);
    // Everyone holds the new epoch durably: now, and only now, the old share goes.
    if (!existsSync(`${path}.next`)) throw new CeremonyError(`${path}.next vanished`);
    renameSync(`${path}.next`, path);
    fsyncDir(path);
    ctx.log.info({ kind: plan.kind, keyId: plan.keyId, epoch: next.epoch }, 'ceremony: acknowledged by every holder; old share deleted');
    return {
      share: next,
      result: { kind: plan.kind, keyId: plan.keyId, epoch: next.epoch, threshold: next.threshold, holders: remaining.map((m) => m.org), publicKey: '0x' + hex(next.publicKey.toBytes(false)), ms: Math.round(performance.now() - t0) },
    };
  }
}
