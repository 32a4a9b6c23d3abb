/**
 * Presignatures (spec §2.7 flights 1–3, §2.9), both sides: as owner, this peer keeps
 * `poolTarget` presignatures it owns per likely signer set and refills them in the background;
 * as partner, it joins presign sessions other members propose, within limits per member (at most
 * `MAX_PRESIGN_PER_MEMBER` at once, at most `2·poolTarget + 4` stored per owner and set). Every
 * presignature has one owner, bound into its session id: only the owner may spend it.
 */
import type { Member } from '../cluster/members.ts';
import { PresignSession, signInstanceId } from '../protocol/sign.ts';
import { sealPresignature } from '../store/presignature-seal.ts';
import { candidateSets } from './signer-set.ts';
import { checkProposal } from './proposal-check.ts';
import type { PresignProposal } from './control.ts';
import type { PairRepair } from './pair-repair.ts';
import { decline, hex, partiesMap, partyOrg, type LoadedKey, type PeerCore } from './peer-core.ts';

/** Presign sessions one member may have running with us at once (partner side). */
export const MAX_PRESIGN_PER_MEMBER = 8;
/**
 * Presign sessions this peer runs as owner at once. Half the partners' limit: a partner counts a
 * session until its own side ends, which can be a little after ours, so the next one must fit too.
 */
export const MAX_OWN_PRESIGN = MAX_PRESIGN_PER_MEMBER / 2;

const u32 = (x: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, x);
  return b;
};
/** The presign session's request: owner ‖ nonce, bound into its instance id. */
export const presignRequest = (owner: number, nonce: Uint8Array): Uint8Array => {
  const out = new Uint8Array(36);
  out.set(u32(owner), 0);
  out.set(nonce, 4);
  return out;
};

export class PresignaturePool {
  private readonly core: PeerCore;
  private readonly pairs: PairRepair;
  private readonly refilling = new Set<string>();
  /** Presign sessions running per proposing member (partner side). */
  private readonly partnerSessions = new Map<number, number>();

  constructor(core: PeerCore, pairs: PairRepair) {
    this.core = core;
    this.pairs = pairs;
  }

  private get target(): number {
    return this.core.opts.poolTarget ?? 2;
  }

  /** Presign sessions this peer runs as owner, and the calls waiting for one (at most MAX_OWN_PRESIGN run). */
  private owned = 0;
  private readonly waiting: (() => void)[] = [];

  /**
   * Every partner allows us MAX_PRESIGN_PER_MEMBER sessions at once, so we run at most half that: a burst
   * of on-demand presigns (many API calls with an empty pool) queues here instead of being
   * declined as busy by the partners. The wait is bounded by the session's deadline.
   */
  private async ownerSlot(deadline: number): Promise<() => void> {
    const release = () => {
      const next = this.waiting.shift();
      if (next) next(); // hand the slot over: `owned` stays
      else this.owned--;
    };
    if (this.owned < MAX_OWN_PRESIGN) {
      this.owned++;
      return release;
    }
    await new Promise<void>((resolve, reject) => {
      const go = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiting.splice(this.waiting.indexOf(go), 1);
        reject(new Error(`no presign slot within the deadline (${MAX_OWN_PRESIGN} presign sessions running)`));
      }, Math.max(0, deadline - Date.now()));
      this.waiting.push(go);
    });
    return release;
  }

  /** Run one presign session for S owned by this peer; the presignature lands in the pool (already spent with `spendNow`). */
  async presign(k: LoadedKey, S: number[], spendNow = false): Promise<Uint8Array> {
    const core = this.core;
    const release = await this.ownerSlot(Date.now() + (core.opts.presignTimeoutMs ?? 20_000));
    try {
      return await this.presignNow(k, S, spendNow);
    } finally {
      release();
    }
  }

  private async presignNow(k: LoadedKey, S: number[], spendNow: boolean): Promise<Uint8Array> {
    const core = this.core;
    const nonce = core.rng(32);
    const owner = k.share.index;
    const request = presignRequest(owner, nonce);
    const burned = core.store.burnedPeers(k.share.keyId);
    const machine = new PresignSession(k.share, { signers: S, request, burned });
    const id = signInstanceId(k.share, { signers: S, request });
    const deadline = Date.now() + (core.opts.presignTimeoutMs ?? 20_000);
    const proposal: PresignProposal = { keyId: k.share.keyId, epoch: k.share.epoch, signers: S, owner, nonce };
    for (const p of S) if (p !== owner) core.host.sendControl(k.memberOf.get(p)!, id, { case: 'presignProposal', value: proposal }, deadline);
    try {
      const presig = await core.host.run({ id, protocol: 'dkls23/presign/v1', what: `presign ${S.map(partyOrg(core, k)).join('+')}`, machine, parties: partiesMap(k, S), deadline, rng: core.rng });
      core.store.addPresignature({ sigSid: presig.sigSid, keyId: k.share.keyId, epoch: k.share.epoch, signers: S, owner, blob: sealPresignature(presig, k.poolKey, core.rng), used: spendNow });
      return presig.sigSid;
    } finally {
      core.host.forget(id);
    }
  }

  /** Top up every likely signer set this peer can spend for, `poolConcurrency` sessions at a time. */
  refill(): void {
    const core = this.core;
    if (core.stopping) return;
    const limit = core.opts.poolConcurrency ?? 2;
    for (const k of core.keys.values()) {
      const burned = core.store.burnedPeers(k.share.keyId);
      const sets = candidateSets(k.share.parties.length, k.share.threshold, k.share.index, partyOrg(core, k), core.definition.quorum, this.pairs.usableParty(k, burned, new Set()));
      const needy = sets
        .map((S) => ({ S, have: core.store.countOwned(k.share.keyId, k.share.epoch, S, k.share.index), key: `${k.share.keyId}:${S.join(',')}` }))
        .filter((x) => x.have < this.target && !this.refilling.has(x.key))
        .sort((a, b) => a.have - b.have);
      for (const x of needy) {
        if (this.refilling.size >= limit) return;
        this.refilling.add(x.key);
        this.presign(k, x.S)
          .catch((e: Error) => core.log.warn({ signers: x.S.map(partyOrg(core, k)), err: e.message }, 'pool refill failed'))
          .finally(() => this.refilling.delete(x.key));
      }
    }
  }

  /** Partner side: join a presign session another member proposed, if it may and we have room. */
  onPresignProposal(from: Member, session: Uint8Array, p: PresignProposal): void {
    const core = this.core;
    const k = checkProposal(core, this.pairs, from, p);
    if (typeof k === 'string') return decline(core, from, session, k);
    if (p.owner !== k.partyOf.get(from.index)) return decline(core, from, session, 'a presignature must be owned by its proposer');
    if (core.host.isActive(session)) return;
    const running = this.partnerSessions.get(from.index) ?? 0;
    if (running >= MAX_PRESIGN_PER_MEMBER) return decline(core, from, session, `${running} presign sessions with ${from.org} are running already`, 'busy');
    const cap = 2 * this.target + 4;
    if (core.store.countOwned(k.share.keyId, k.share.epoch, p.signers, p.owner) >= cap) return decline(core, from, session, `pool for this set already holds ${cap} presignatures owned by ${from.org}`, 'busy');
    const request = presignRequest(p.owner, p.nonce);
    if (hex(signInstanceId(k.share, { signers: p.signers, request })) !== hex(session)) return decline(core, from, session, 'session id does not match the proposal');
    const machine = new PresignSession(k.share, { signers: p.signers, request, burned: core.store.burnedPeers(k.share.keyId) });
    this.partnerSessions.set(from.index, running + 1);
    core.host
      .run({ id: session, protocol: 'dkls23/presign/v1', what: `presign for ${from.org}`, machine, parties: partiesMap(k, p.signers), deadline: Date.now() + (core.opts.presignTimeoutMs ?? 20_000), rng: core.rng, proposer: from.index })
      .then((presig) => core.store.addPresignature({ sigSid: presig.sigSid, keyId: k.share.keyId, epoch: k.share.epoch, signers: p.signers, owner: p.owner, blob: sealPresignature(presig, k.poolKey, core.rng) }))
      .catch((e: Error) => core.log.warn({ peer: from.org, err: e.message }, 'presign session failed'))
      .finally(() => {
        core.host.forget(session);
        const n = (this.partnerSessions.get(from.index) ?? 1) - 1;
        if (n > 0) this.partnerSessions.set(from.index, n);
        else this.partnerSessions.delete(from.index);
      });
  }
}
