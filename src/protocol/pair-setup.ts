import { hash32 } from '../crypto/hash.ts';
import { exactBytes } from '../crypto/scalar-point.ts';
import type { Rng } from '../crypto/random.ts';
import { BASE_OT_CHOICE_BYTES, BASE_OT_REPLY_BYTES, baseOtReceiverStart, baseOtSenderRespond, type BaseOtReceiverState } from '../ot/endemic-ot.ts';
import { PPRF_BYTES, pprfBuild } from '../ot/pprf.ts';
import { pairSeed } from '../mul/zero-sharing.ts';
import { AbortError } from './errors.ts';
import { RoundMachine, attributed, bodiesOf, bytesEqual, type Outgoing, type RoundMessages, type RoundSpec } from './machine.ts';
import { finishOtSetup, wipeBaseOt } from './ot-setup.ts';
import { encodeBody } from './messages.ts';
import type { KeyShare, PairState } from './key-share.ts';

/**
 * Fresh pairwise OT setup for one pair {i, j} of an existing key, after BAN_PAIR burned it
 * (spec §2.10 rule 2): new base OTs and all-but-one OTs in both directions (§2.3) and a new
 * zero-sharing seed (§2.6). The other pairs, the key share and the epoch are unchanged.
 *
 * Round 1 (p2p)  PairSetupNonce  instanceId, sessionNonce
 * Round 2 (p2p)  BaseOtChoice    pairSid, base-OT receiver message (me as E towards j)
 * Round 3 (p2p)  PairSetupReply  pairSid, base-OT sender reply + PPRF (me as R), zero seed
 */

/** Binds the re-setup to the key (dkgSid, epoch), the pair and the proposer's nonce. */
export function pairSetupInstanceId(share: KeyShare, peer: number, nonce: Uint8Array): Uint8Array {
  const lo = Math.min(share.index, peer), hi = Math.max(share.index, peer);
  return hash32('pair/instance', share.dkgSid, share.epoch, lo, hi, nonce);
}

/** The share with the pair entry for `peer` replaced (the input share is not modified). */
export function withPair(share: KeyShare, peer: number, pair: PairState): KeyShare {
  if (!Number.isInteger(peer) || peer < 1 || peer > share.parties.length || peer === share.index)
    throw new AbortError('bad-input', `peer ${peer} is not another party of this key`);
  return { ...share, pairs: new Map(share.pairs).set(peer, pair) };
}

export class PairSetupSession extends RoundMachine<PairState> {
  readonly peer: number;
  readonly instanceId: Uint8Array;
  protected readonly rounds: RoundSpec[];

  private sessionNonce: Uint8Array = new Uint8Array(0);
  private pairSid: Uint8Array = new Uint8Array(0);
  private baseOt: BaseOtReceiverState | undefined; // me as E (base-OT receiver) towards the peer
  private receiverSeeds: Uint8Array = new Uint8Array(0); // me as R towards the peer
  private zMine: Uint8Array = new Uint8Array(0);

  constructor(share: KeyShare, peer: number, nonce: Uint8Array) {
    super(share.index);
    const n = share.parties.length;
    if (!Number.isInteger(peer) || peer < 1 || peer > n) throw new AbortError('bad-input', `peer ${peer} not in 1..${n}`);
    if (peer === share.index) throw new AbortError('bad-input', 'peer must be another party');
    if (!(nonce instanceof Uint8Array) || nonce.length !== 32) throw new AbortError('bad-input', 'nonce must be 32 bytes');
    this.peer = peer;
    this.instanceId = pairSetupInstanceId(share, peer, nonce);
    this.rounds = [
      { bodies: { pairSetupNonce: 'p2p' }, from: { pairSetupNonce: [peer] } },
      { bodies: { baseOtChoice: 'p2p' }, from: { baseOtChoice: [peer] } },
      { bodies: { pairSetupReply: 'p2p' }, from: { pairSetupReply: [peer] } },
    ];
  }

  // Same structure as the DKG's sidOT / sidABO (spec §2.3), bound to the pair session id.
  private sidOT(E: number, R: number) {
    return hash32('pair/ot/base', this.pairSid, E, R);
  }
  private sidABO(E: number, R: number) {
    return hash32('pair/ot/abo', this.pairSid, E, R);
  }

  protected begin(rng: Rng): Outgoing[] {
    this.sessionNonce = rng(32);
    return [{ to: this.peer, bytes: encodeBody({ case: 'pairSetupNonce', value: { instanceId: this.instanceId, sessionNonce: this.sessionNonce } }) }];
  }

  protected onRound(round: number, msgs: RoundMessages, rng: Rng): { out: Outgoing[]; output?: PairState } {
    if (round === 1) return { out: this.round1(msgs, rng) };
    if (round === 2) return { out: this.round2(msgs, rng) };
    return { out: [], output: this.round3(msgs) };
  }

  private round1(msgs: RoundMessages, rng: Rng): Outgoing[] {
    const j = this.peer;
    const { value, bytes } = bodiesOf(msgs, 'pairSetupNonce').get(j)!;
    if (!bytesEqual(value.instanceId, this.instanceId)) throw new AbortError('session-id', 'pair re-setup request differs', j, bytes);
    attributed(j, bytes, () => exactBytes(value.sessionNonce, 32, 'pairSetupNonce.sessionNonce'));
    const [nLo, nHi] = this.self < j ? [this.sessionNonce, value.sessionNonce] : [value.sessionNonce, this.sessionNonce];
    this.pairSid = hash32('pair/session', this.instanceId, nLo, nHi);
    const { state, message } = baseOtReceiverStart(this.sidOT(this.self, j), rng);
    this.baseOt = state;
    return [{ to: j, bytes: encodeBody({ case: 'baseOtChoice', value: { sessionId: this.pairSid, points: message } }) }];
  }

  private round2(msgs: RoundMessages, rng: Rng): Outgoing[] {
    const j = this.peer;
    const { value, bytes } = bodiesOf(msgs, 'baseOtChoice').get(j)!;
    if (!bytesEqual(value.sessionId, this.pairSid)) throw new AbortError('session-id', 'wrong pair session id', j, bytes);
    const resp = attributed(j, bytes, () => {
      exactBytes(value.points, BASE_OT_CHOICE_BYTES, 'baseOtChoice.points');
      return baseOtSenderRespond(this.sidOT(j, this.self), value.points, rng);
    });
    const built = pprfBuild(this.sidABO(j, this.self), resp.keys0, resp.keys1);
    this.receiverSeeds = built.seeds;
    this.zMine = rng(32);
    return [{ to: j, bytes: encodeBody({ case: 'pairSetupReply', value: { sessionId: this.pairSid, otReply: resp.reply, pprf: built.message, zeroSeed: this.zMine } }) }];
  }

  private round3(msgs: RoundMessages): PairState {
    const j = this.peer;
    const { value, bytes } = bodiesOf(msgs, 'pairSetupReply').get(j)!;
    if (!bytesEqual(value.sessionId, this.pairSid)) throw new AbortError('session-id', 'wrong pair session id', j, bytes);
    const st = this.baseOt!;
    try {
      attributed(j, bytes, () => {
        exactBytes(value.otReply, BASE_OT_REPLY_BYTES, 'pairSetupReply.otReply');
        exactBytes(value.pprf, PPRF_BYTES, 'pairSetupReply.pprf');
        exactBytes(value.zeroSeed, 32, 'pairSetupReply.zeroSeed');
      });
      // As in the DKG round 3 (spec §2.2, §2.3): a bad all-but-one proof aborts, naming the sender.
      const ev = finishOtSetup(j, bytes, { ot: this.sidOT(this.self, j), abo: this.sidABO(this.self, j) }, st, value.otReply, value.pprf);
      return {
        delta: ev.delta,
        senderSeeds: ev.seeds,
        receiverSeeds: this.receiverSeeds,
        zeroSeed: pairSeed(this.pairSid, this.self, j, this.zMine, value.zeroSeed),
      };
    } finally {
      // Choice bits and t_ι are secret and no longer needed, whatever the outcome (also when the
      // lengths above are wrong and finishOtSetup never ran).
      wipeBaseOt(st);
      this.baseOt = undefined;
      this.zMine.fill(0);
    }
  }
}
