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
import type { Control } from './control.ts';
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

/**
 * What every participant of a ceremony agreed to, sent in its join (canonical JSON, compared
 * byte for byte). A newcomer without the key learns the old epoch, key and holders from it.
 */
interface CeremonyParams {
  v: 1;
  kind: 'refresh' | 'reshare';
  keyId: string;
  epoch: number;
  oldThreshold: number;
  threshold: number;
  publicKey: string;
  /** Peer ids of the old key's parties, in key-party order. */
  holders: string[];
  remove: string[];
  add: string[];
  tag: string;
}

function encodeParams(p: CeremonyParams): Uint8Array {
  const canonical: CeremonyParams = { v: 1, kind: p.kind, keyId: p.keyId, epoch: p.epoch, oldThreshold: p.oldThreshold, threshold: p.threshold, publicKey: p.publicKey, holders: p.holders, remove: [...p.remove].sort(), add: [...p.add].sort(), tag: p.tag };
  return new TextEncoder().encode(JSON.stringify(canonical));
}

/** Strict: anything but exactly the canonical form of a valid CeremonyParams is undefined. */
function decodeParams(bytes: Uint8Array): CeremonyParams | undefined {
  try {
    const p = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) as CeremonyParams;
    const strs = (x: unknown) => Array.isArray(x) && x.every((y) => typeof y === 'string');
    if (p?.v !== 1 || (p.kind !== 'refresh' && p.kind !== 'reshare') || typeof p.keyId !== 'string' || typeof p.publicKey !== 'string') return undefined;
    if (![p.epoch, p.oldThreshold, p.threshold].every((n) => Number.isSafeInteger(n) && n >= 0) || !strs(p.holders) || !strs(p.remove) || !strs(p.add) || typeof p.tag !== 'string') return undefined;
    return Buffer.compare(encodeParams(p), bytes) === 0 ? p : undefined;
  } catch {
    return undefined;
  }
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
const JOIN_TTL_MS = 10 * 60_000;

export class CeremonyCoordinator {
  private readonly ctx: CeremonyContext;
  /** Joins seen per join session (they may arrive before our operator asks). */
  private readonly joins = new Map<string, Map<number, { nonce: Uint8Array; params: Uint8Array; at: number }>>();
  /** Acks per new dkgSid. */
  private readonly acks = new Map<string, Map<number, string>>();
  private readonly wake = new Set<() => void>();
  private running = false;

  constructor(ctx: CeremonyContext) {
    this.ctx = ctx;
  }

  /** Route a join or ack; returns false for other control messages. */
  onControl(from: Member, session: Uint8Array, c: Control): boolean {
    if (c.case === 'join') {
      if (c.value.kind !== 'refresh' && c.value.kind !== 'reshare') return true;
      const key = hex(session);
      const m = this.joins.get(key) ?? new Map();
      m.set(from.index, { nonce: c.value.nonce, params: c.value.params, at: Date.now() });
      this.joins.set(key, m);
      for (const [k, v] of this.joins) for (const [i, j] of v) if (Date.now() - j.at > JOIN_TTL_MS) { v.delete(i); if (!v.size) this.joins.delete(k); }
    } else if (c.case === 'ack') {
      const key = hex(c.value.dkgSessionId);
      const m = this.acks.get(key) ?? new Map();
      m.set(from.index, `${c.value.kind}:${c.value.keyId}:${c.value.epoch}:${hex(c.value.publicKey)}`);
      this.acks.set(key, m);
    } else return false;
    for (const w of this.wake) w();
    return true;
  }

  private waitFor(what: string, deadline: number, ready: () => Member[] | undefined, describe: (missing: Member[]) => string): Promise<void> {
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const check = () => {
        const missing = ready();
        if (missing === undefined) {
          this.wake.delete(check);
          clearTimeout(timer);
          resolve();
        }
      };
      this.wake.add(check);
      timer = setTimeout(() => {
        this.wake.delete(check);
        reject(new CeremonyError(`${what} timed out waiting for: ${describe(ready() ?? [])}`));
      }, Math.max(0, deadline - Date.now()));
      check();
    });
  }

  /**
   * Run the ceremony for `share` (the current epoch), with `holders` the members of the old key
   * in key-party order (party k = holders[k-1]). A newcomer (reshare `add`) passes neither and
   * learns both from the holders' joins. Resolves with the new share, already the only one on disk.
   */
  async run(share: KeyShare | undefined, holders: Member[] | undefined, plan: DealingPlan, timeoutMs: number): Promise<{ share: KeyShare; result: CeremonyResult }> {
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
    const joinSession = hash32('ceremony/join', ctx.clusterHash, new TextEncoder().encode(plan.kind), new TextEncoder().encode(plan.keyId));
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
    const joined = () => this.joins.get(joinKey) ?? new Map<number, { nonce: Uint8Array; params: Uint8Array }>();
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
    const ack = { kind: plan.kind, keyId: plan.keyId, epoch: next.epoch, dkgSessionId: next.dkgSid, publicKey: next.publicKey.toBytes(true) };
    const expect = `${ack.kind}:${ack.keyId}:${ack.epoch}:${hex(ack.publicKey)}`;
    for (const m of others) ctx.host.sendControl(m.index, next.dkgSid, { case: 'ack', value: ack }, deadline + 60_000);
    const ackKey = hex(next.dkgSid);
    await this.waitFor(`acknowledgements of the new ${plan.keyId} shares`, deadline + 60_000, () => {
      const got = this.acks.get(ackKey) ?? new Map<number, string>();
      const missing = others.filter((m) => got.get(m.index) !== expect);
      return missing.length ? missing : undefined;
    }, (missing) => `${missing.map((m) => m.org).join(', ')}; the new share is kept at ${path}.next and the old one stays active`);
    ctx.host.forgetControl(next.dkgSid);
    this.acks.delete(ackKey);
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
