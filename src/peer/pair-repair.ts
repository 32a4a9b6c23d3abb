/**
 * Burned pairs and their repair (spec §2.10): on BAN_PAIR the pair is burned persistently, every
 * session with the culprit is aborted and reported; the side that burned it proposes a fresh OT
 * setup for the pair once the peer is connected; both sides persist the new state before using it
 * and keep the pair quiet meanwhile, so old and new OT state never meet. No automatic re-setup
 * after MAX_PAIR_INCIDENTS burns of the same pair (a repeat offender is reshared out).
 */
import type { Member } from '../cluster/members.ts';
import { AbortError, type ProtocolError } from '../protocol/errors.ts';
import { PairSetupSession, pairSetupInstanceId, withPair } from '../protocol/pair-setup.ts';
import { writeShare } from '../store/share-file.ts';
import type { PairSetupProposal } from './control.ts';
import { decline, hex, partiesMap, type LoadedKey, type PeerCore } from './peer-core.ts';

/** Spec §2.10 rule 3: after this many burns of the same pair, no automatic re-setup; reshare the org out. */
export const MAX_PAIR_INCIDENTS = 3;
const PAIR_SETUP_TIMEOUT_MS = 60_000;
const PAIR_SETTLE_MS = 3000;
/** A member may ask for a re-setup of its pair with us at most this often. */
const PAIR_SETUP_EVERY_MS = 10_000;

export class PairRepair {
  private readonly core: PeerCore;
  private readonly resetting = new Set<string>();
  private readonly lastPairSetup = new Map<number, number>();
  /** Pairs (`keyId:party`) under OT re-setup, until the given time: no session may use them. */
  private readonly busy = new Map<string, number>();

  constructor(core: PeerCore) {
    this.core = core;
  }

  isBusy(k: LoadedKey, p: number): boolean {
    const until = this.busy.get(`${k.share.keyId}:${p}`);
    return until !== undefined && until > Date.now();
  }

  /** Can party `p` join a session now: not burned, not being re-set up, not excluded, connected. */
  usableParty(k: LoadedKey, burned: ReadonlySet<number>, excluded: ReadonlySet<number>): (p: number) => boolean {
    return (p) => {
      const m = this.core.host.member(k.memberOf.get(p)!);
      return !burned.has(p) && !this.isBusy(k, p) && !excluded.has(m.index) && this.core.mesh.isConnected(m.peerId);
    };
  }

  /** The side that burned a pair proposes a fresh OT setup once the peer is connected. */
  resetupBurnedPairs(): void {
    const core = this.core;
    if (core.stopping) return;
    for (const k of core.keys.values())
      for (const p of core.store.burnedPeers(k.share.keyId)) {
        const m = core.host.member(k.memberOf.get(p)!);
        const key = `${k.share.keyId}:${p}`;
        if (this.resetting.has(key) || !core.mesh.isConnected(m.peerId)) continue;
        if (core.store.incidentCount(k.share.keyId, p) >= MAX_PAIR_INCIDENTS) continue; // reported by status
        this.resetting.add(key);
        this.pairSetup(k, p, core.rng(32), true)
          .catch((e: Error) => core.log.warn({ peer: m.org, err: e.message }, 'OT re-setup failed; will retry'))
          .finally(() => setTimeout(() => this.resetting.delete(key), 5000).unref());
      }
  }

  onPairSetupProposal(from: Member, session: Uint8Array, p: PairSetupProposal): void {
    const core = this.core;
    const k = core.keys.get(p.keyId);
    if (!k) return decline(core, from, session, `unknown key "${p.keyId}"`);
    if (p.epoch !== k.share.epoch) return decline(core, from, session, `key ${p.keyId} is at epoch ${k.share.epoch}, not ${p.epoch}`);
    const party = k.partyOf.get(from.index);
    if (party === undefined) return decline(core, from, session, `${from.org} holds no share of ${p.keyId}`);
    if (hex(pairSetupInstanceId(k.share, party, p.nonce)) !== hex(session)) return decline(core, from, session, 'session id does not match the proposal');
    if (core.host.isActive(session)) return;
    const last = this.lastPairSetup.get(from.index) ?? 0;
    if (Date.now() - last < PAIR_SETUP_EVERY_MS) return decline(core, from, session, 'an OT re-setup with this peer ran less than 10 s ago', 'rate-limit');
    this.lastPairSetup.set(from.index, Date.now());
    this.pairSetup(k, party, p.nonce, false).catch((e: Error) => core.log.warn({ peer: from.org, err: e.message }, 'OT re-setup failed'));
  }

  /** Run the pair setup, persist the new share (sealed, atomic) before using it, then unburn. */
  private async pairSetup(k: LoadedKey, party: number, nonce: Uint8Array, propose: boolean): Promise<void> {
    const core = this.core;
    const m = core.host.member(k.memberOf.get(party)!);
    const id = pairSetupInstanceId(k.share, party, nonce);
    const deadline = Date.now() + PAIR_SETUP_TIMEOUT_MS;
    if (propose) core.host.sendControl(m.index, id, { case: 'pairSetupProposal', value: { keyId: k.share.keyId, epoch: k.share.epoch, nonce } }, deadline);
    core.log.info({ peer: m.org }, 'OT re-setup started');
    // Both ends switch OT state at slightly different moments: no session may use the pair while
    // it is redone, nor shortly after, or old and new state would meet and look like an attack.
    const busyKey = `${k.share.keyId}:${party}`;
    this.busy.set(busyKey, Number.POSITIVE_INFINITY);
    core.host.abortWith(m.index, new AbortError('burned-pair', `OT setup with ${m.org} is being redone`));
    try {
      const pair = await core.host.run({
        id, protocol: 'dkls23/pair-setup/v1', what: `OT re-setup with ${m.org}`, machine: new PairSetupSession(k.share, party, nonce),
        parties: partiesMap(k, [k.share.index, party].sort((a, b) => a - b)), deadline, rng: core.rng,
      }).finally(() => core.host.forget(id));
      const share = withPair(k.share, party, pair);
      writeShare(core.opts.home, share, core.opts.passphrase, core.opts.scryptLogN);
      core.audit.key(share, 'pair-setup');
      k.share = share;
      const dropped = core.store.deletePresignatures(k.share.keyId, party);
      core.store.unburnPair(k.share.keyId, party);
      core.log.info({ peer: m.org, droppedPresignatures: dropped }, 'OT re-setup done: pair usable again');
    } finally {
      this.busy.set(busyKey, Date.now() + PAIR_SETTLE_MS);
    }
  }

  /** Spec §2.10: burn the pair persistently, abort every session with the culprit, report it. */
  onBan(culprit: Member, e: ProtocolError): void {
    const core = this.core;
    for (const k of core.keys.values()) {
      const p = k.partyOf.get(culprit.index);
      if (p === undefined) continue;
      core.store.burnPair(k.share.keyId, p, e.check, e instanceof AbortError ? e.evidence : undefined);
      core.audit.burn({ keyId: k.share.keyId, peer: p, peerOrg: culprit.org, session: new Uint8Array(0), check: e.check });
    }
    const n = core.host.abortWith(culprit.index, e);
    core.log.error({ peer: culprit.org, peerId: culprit.peerId, check: e.check, aborted: n }, 'BAN_PAIR: pair burned until its OT setup is redone');
    core.metrics?.pairBurned(culprit.org);
  }
}
