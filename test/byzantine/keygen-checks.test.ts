import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { hash32 } from '../../src/crypto/hash.ts';
import { G, Point, randomScalar } from '../../src/crypto/scalar-point.ts';
import { encodeSchnorr, schnorrProve } from '../../src/crypto/schnorr.ts';
import { systemRng } from '../../src/crypto/random.ts';
import { AbortError, DropError } from '../../src/protocol/errors.ts';
import { DealingSession, concatBytes, encodeOldPublic, type DealingOutput, type DealingRequest } from '../../src/protocol/dkg.ts';
import { decodeBody, encodeBody, type KeygenCommit, type KeygenShare } from '../../src/protocol/messages.ts';
import type { Incoming } from '../../src/protocol/machine.ts';
import type { BaseOtReceiverState } from '../../src/ot/endemic-ot.ts';
import type { KeyShare } from '../../src/protocol/key-share.ts';
import type { Delivery, Tamper } from '../../src/sim/run-machines.ts';
import { keygenRequest, refreshRequest } from '../../src/sim/simulator.ts';
import { dealingRun, newTranscriptCache, replayRun, type Observer, type Party } from './replay.ts';
import { GENERATOR, IDENTITY, ORDER_N, duplicate, expectAll, extend, field, flipBit, flipLastBit, replaceAt, scalarPlusOne, truncate, wholeMessage } from './tamper.ts';

// Key generation (spec §2.2) with party 2 misbehaving; party 1 is honest (2-of-2 unless a third
// observer matters). Each test names the spec §4.3 check it exercises. Runs share their honest
// prefix through the transcript cache (replay.ts): each test computes only what its tamper changes.
const cache = newTranscriptCache();
const nonce = (k: number) => new Uint8Array(32).fill(k);
const run2 = (tamper?: Tamper, n = 2, observe?: Observer<DealingOutput>) => dealingRun(cache, `keygen/2-of-${n}`, keygenRequest(2, n, 'byz', nonce(n)), new Map(), tamper, observe);

describe('§4.3.1 strict decoding and exact lengths (DKG)', () => {
  test('garbage instead of a round-1 message: ABORT decode, culprit 2', () => {
    expectAll(run2(wholeMessage(2, 'keygenCommit', () => systemRng(50))), [1], AbortError, 'decode', 2);
  });
  test('session nonce of 31 bytes: ABORT decode', () => {
    expectAll(run2(field(2, 'keygenCommit', 'sessionNonce', truncate(1))), [1], AbortError, 'decode', 2);
  });
  test('Feldman vector with t−1 points: ABORT decode', () => {
    expectAll(run2(field(2, 'keygenReveal', 'feldman', truncate(33))), [1], AbortError, 'decode', 2);
  });
  test('Feldman vector with t+1 points: ABORT decode', () => {
    expectAll(run2(field(2, 'keygenReveal', 'feldman', (b) => concatBytes([b, GENERATOR]))), [1], AbortError, 'decode', 2);
  });
  test('identity point in the Feldman vector: ABORT decode', () => {
    expectAll(run2(field(2, 'keygenReveal', 'feldman', replaceAt(33, IDENTITY))), [1], AbortError, 'decode', 2);
  });
  test('t−1 Schnorr proofs: ABORT decode', () => {
    expectAll(run2(field(2, 'keygenReveal', 'proofs', truncate(65))), [1], AbortError, 'decode', 2);
  });
  test('off-curve base-OT point: ABORT decode', () => {
    expectAll(run2(field(2, 'baseOtChoice', 'points', replaceAt(0, new Uint8Array([2, ...new Uint8Array(32).fill(0xff)])))), [1], AbortError, 'decode', 2);
  });
  test('identity in the base-OT reply: ABORT decode', () => {
    expectAll(run2(field(2, 'keygenShare', 'otReply', replaceAt(33, IDENTITY))), [1], AbortError, 'decode', 2);
  });
  test('share ≥ n: ABORT decode', () => {
    expectAll(run2(field(2, 'keygenShare', 'share', () => ORDER_N)), [1], AbortError, 'decode', 2);
  });
  test('PPRF message one byte short: ABORT decode', () => {
    expectAll(run2(field(2, 'keygenShare', 'pprf', truncate(1))), [1], AbortError, 'decode', 2);
  });
  test('public share in round 4 with extra bytes: ABORT decode', () => {
    expectAll(run2(field(2, 'keygenConfirm', 'publicShare', extend(1))), [1], AbortError, 'decode', 2);
  });
});

describe('§4.3.2/§4.3.7 indices, addressing, authenticity', () => {
  test('a p2p share sent as a broadcast: ABORT unexpected-message', () => {
    expectAll(run2(wholeMessage(2, 'keygenShare', (b) => b, true)), [1], AbortError, 'unexpected-message', 2);
  });
  test('a duplicated message is dropped and the ceremony still succeeds', () => {
    const res = run2(duplicate(2, 'keygenCommit'));
    assert.equal(res.errors.size, 0);
    assert.equal(res.outputs.size, 2);
    assert.ok(res.drops.some((d) => d.at === 1 && d.error instanceof DropError && d.error.culprit === 2));
  });
  test('a message of another protocol (a signing commitment) in a DKG: ABORT unexpected-message', () => {
    const m = new DealingSession(keygenRequest(2, 2, 'byz', nonce(9)), 1);
    m.start(systemRng);
    const res = m.receive({ from: 2, to: null, bytes: encodeBody({ case: 'signCommit', value: { instanceId: new Uint8Array(32), sessionNonce: new Uint8Array(32), commitment: new Uint8Array(32) } }) }, systemRng);
    assert.ok(res.error instanceof AbortError, res.error?.message);
    assert.equal(res.error.check, 'unexpected-message');
    assert.equal(res.error.culprit, 2);
    assert.ok(res.error.message.includes('signCommit is not part of this protocol'));
  });
  test('two different round-1 messages from the same party: ABORT echo naming it', () => {
    const twice: Tamper = (from, msg, recipients) => {
      const d = recipients.map((to) => ({ to, bytes: msg.bytes, broadcast: msg.to === null }));
      if (from !== 2 || decodeBody(msg.bytes).case !== 'keygenCommit') return d;
      const other = field(2, 'keygenCommit', 'commitment', flipBit(0))(from, msg, recipients);
      return [...d, ...other];
    };
    expectAll(run2(twice), [1], AbortError, 'echo', 2, 'two different keygenCommit messages from the same party');
  });
  test('a message from a party outside the ceremony is dropped, not aborted on', () => {
    const req = keygenRequest(2, 2, 'byz', nonce(9));
    const m = new DealingSession(req, 1);
    m.start(systemRng);
    const res = m.receive({ from: 7, to: null, bytes: encodeBody({ case: 'keygenCommit', value: { instanceId: new Uint8Array(32), sessionNonce: new Uint8Array(32), commitment: new Uint8Array(32) } }) }, systemRng);
    assert.ok(res.error instanceof DropError);
    assert.equal(res.error.check, 'unexpected-message');
    assert.equal(m.failed, undefined);
  });
  test('a request with an index outside 1..n is refused before anything is sent', () => {
    assert.throws(() => new DealingSession(keygenRequest(2, 3), 4), (e: unknown) => e instanceof AbortError && e.check === 'bad-input');
    assert.throws(() => new DealingSession({ ...keygenRequest(2, 3), threshold: 4 }, 1), (e: unknown) => e instanceof AbortError && e.check === 'bad-input');
  });
});

describe('§4.3.3/§4.3.4/§4.3.5 commitments, proofs, Feldman, public data', () => {
  test('Feldman point replaced by another valid point: ABORT commitment', () => {
    expectAll(run2(field(2, 'keygenReveal', 'feldman', replaceAt(33, G.double().double().toBytes(true)))), [1], AbortError, 'commitment', 2);
  });
  test('decommitment bit flipped: ABORT commitment', () => {
    expectAll(run2(field(2, 'keygenReveal', 'decommitment', flipBit(5))), [1], AbortError, 'commitment', 2);
  });
  test('bad Schnorr proof of a coefficient: ABORT schnorr-proof', () => {
    expectAll(run2(field(2, 'keygenReveal', 'proofs', flipLastBit)), [1], AbortError, 'schnorr-proof', 2);
  });
  test('share + 1 (fails the Feldman check): ABORT feldman-share', () => {
    expectAll(run2(field(2, 'keygenShare', 'share', scalarPlusOne)), [1], AbortError, 'feldman-share', 2);
  });
  test('tampered PPRF proof t̃: ABORT pprf-proof', () => {
    expectAll(run2(field(2, 'keygenShare', 'pprf', flipBit((3 * 64 + 5) * 8))), [1], AbortError, 'pprf-proof', 2);
  });
  test('round-4 public key differs: ABORT public-key', () => {
    expectAll(run2(field(2, 'keygenConfirm', 'publicKey', () => GENERATOR)), [1], AbortError, 'public-key', 2);
  });
  test('round-4 public share differs from the Feldman data: ABORT public-shares', () => {
    expectAll(run2(field(2, 'keygenConfirm', 'publicShare', () => GENERATOR)), [1], AbortError, 'public-shares', 2);
  });
  test('bad proof of the final share: ABORT schnorr-proof', () => {
    expectAll(run2(field(2, 'keygenConfirm', 'proof', flipLastBit)), [1], AbortError, 'schnorr-proof', 2);
  });
});

describe('§4.3.6/§4.3.8 session binding and broadcast consistency', () => {
  test('wrong ceremony instance id in round 1: ABORT session-id', () => {
    expectAll(run2(field(2, 'keygenCommit', 'instanceId', flipBit(0))), [1], AbortError, 'session-id', 2);
  });
  for (const kind of ['keygenReveal', 'keygenShare', 'keygenConfirm'] as const)
    test(`wrong dkgSid in ${kind}: ABORT session-id`, () => {
      expectAll(run2(field(2, kind, 'sessionId', flipBit(0))), [1], AbortError, 'session-id', 2);
    });
  test('wrong dkgSid in the base-OT message: ABORT session-id', () => {
    expectAll(run2(field(2, 'baseOtChoice', 'sessionId', flipBit(0))), [1], AbortError, 'session-id', 2);
  });
  test('replay of a round-1 message from another ceremony: ABORT session-id', () => {
    let old: Uint8Array | undefined;
    run2((from, msg, recipients) => {
      if (from === 2 && decodeBody(msg.bytes).case === 'keygenCommit') old = msg.bytes;
      return recipients.map((to) => ({ to, bytes: msg.bytes, broadcast: msg.to === null }));
    });
    const res = dealingRun(cache, 'keygen/2-of-2/other-nonce', keygenRequest(2, 2, 'byz', nonce(77)), new Map(), wholeMessage(2, 'keygenCommit', () => old!));
    expectAll(res, [1], AbortError, 'session-id', 2);
  });
  test('equivocation on the round-1 broadcast (2-of-3): ABORT echo at both honest parties', () => {
    const res = run2(field(3, 'keygenCommit', 'sessionNonce', flipBit(0), 1), 3);
    expectAll(res, [1, 2], AbortError, 'echo', undefined);
  });
  test('wrong echo of round 1: ABORT echo', () => {
    expectAll(run2(field(2, 'keygenReveal', 'echo', flipBit(0))), [1], AbortError, 'echo', undefined, 'round-1 broadcasts differ');
  });
  test('wrong echo of round 2: ABORT echo', () => {
    expectAll(run2(field(2, 'keygenShare', 'echo', flipBit(0))), [1], AbortError, 'echo', undefined, 'round-2 broadcasts differ');
  });
  test('wrong echo of rounds 1 and 2 in round 4: ABORT echo', () => {
    expectAll(run2(field(2, 'keygenConfirm', 'echo', flipBit(0))), [1], AbortError, 'echo', undefined, 'earlier broadcasts differ');
  });
  test('equivocation on a round-2 broadcast (2-of-3): the recipient of the forged copy names the dealer', () => {
    const res = run2(field(3, 'keygenReveal', 'decommitment', flipBit(1), 1), 3);
    expectAll(res, [1], AbortError, 'commitment', 3);
    assert.equal(res.outputs.size, 0);
  });
});

/**
 * A malicious dealer in refresh/reshare that commits to a wrong constant term consistently: it
 * holds its round-1 commitment until its round-2 reveal exists, then sends a commitment, echo
 * and proofs that match a forged F_0 = p·G, so only the constant-term check can catch it.
 */
function wrongConstant(cheater: number, reshareMode: boolean): Tamper {
  const r1 = new Map<number, Uint8Array>();
  let held: { msg: { to: number | null; bytes: Uint8Array }; value: KeygenCommit } | undefined;
  const p = randomScalar(systemRng);
  const P = G.multiply(p).toBytes(true);
  const pass = (msg: { to: number | null; bytes: Uint8Array }, recipients: number[]): Delivery[] => recipients.map((to) => ({ to, bytes: msg.bytes, broadcast: msg.to === null }));
  return (from, msg, recipients) => {
    const body = decodeBody(msg.bytes);
    if (body.case === 'keygenCommit') {
      if (from === cheater) {
        held = { msg, value: body.value };
        return [];
      }
      r1.set(from, msg.bytes);
      return pass(msg, recipients);
    }
    if (from !== cheater || body.case !== 'keygenReveal') return pass(msg, recipients);
    const v = body.value;
    const feldman = new Uint8Array(v.feldman);
    feldman.set(P, 0);
    const commitment = hash32('dkg/commit', held!.value.sessionNonce, cheater, feldman, v.decommitment);
    const newR1 = encodeBody({ case: 'keygenCommit', value: { ...held!.value, commitment } });
    r1.set(cheater, newR1);
    const ids = [...r1.keys()].sort((a, b) => a - b);
    const echo = hash32('dkg/echo1', held!.value.instanceId, ...ids.map((k) => r1.get(k)!));
    let proofs = v.proofs;
    if (reshareMode) {
      const nonces = ids.map((k) => (decodeBody(r1.get(k)!).value as KeygenCommit).sessionNonce);
      const dkgSid = hash32('dkg/sid', held!.value.instanceId, ...nonces);
      proofs = concatBytes([encodeSchnorr(schnorrProve('dkg/dlog', [dkgSid, cheater, 0], p, G.multiply(p), systemRng)), v.proofs.subarray(65)]);
    }
    const newR2 = encodeBody({ case: 'keygenReveal', value: { ...v, feldman, echo, proofs } });
    return recipients.flatMap((to) => [{ to, bytes: newR1, broadcast: true }, { to, bytes: newR2, broadcast: true }]);
  };
}

/** Reshare of a 2-of-2 key by both holders to themselves plus `newcomers` (0 or 1), as the simulator builds it. */
function reshareRequest(shares: Map<number, KeyShare>, newcomers: number, receivers?: number[]): DealingRequest {
  const any = shares.get(1)!;
  const fresh = Array.from({ length: newcomers }, (_, k) => new Uint8Array(32).fill(0, 0, 30).fill(1, 30, 31).fill(k + 1 + any.epoch * 16, 31));
  const participants = [...any.parties, ...fresh].sort(Buffer.compare);
  return {
    kind: 'reshare', keyId: any.keyId, epoch: any.epoch + 1, threshold: 2, participants,
    dealers: [1, 2], receivers: receivers ?? participants.map((_, k) => k + 1), dealerOldIndices: [1, 2], nonce: new Uint8Array(32).fill(0xaa),
  };
}

describe('refresh (§2.11) and reshare (§2.12) checks', () => {
  let shares: Map<number, KeyShare>;
  before(() => {
    const res = run2(); // the honest 2-of-2 keygen the tests above tamper with
    shares = new Map([...res.outputs].map(([i, o]) => [i, o.share!]));
  });
  test('refresh: a dealer whose constant term is not zero: ABORT refresh-constant', () => {
    expectAll(dealingRun(cache, 'refresh/2-of-2', refreshRequest(shares), shares, wrongConstant(2, false)), [1], AbortError, 'refresh-constant', 2);
  });
  test('reshare: a dealer whose constant term is not λ·S: ABORT reshare-constant', () => {
    expectAll(dealingRun(cache, 'reshare/2-of-2', reshareRequest(shares, 0), shares, wrongConstant(2, true)), [1], AbortError, 'reshare-constant', 2);
  });
  test('refresh: own constant term corrupted after the per-dealer checks, so the dealings no longer preserve PK: ABORT public-key', () => {
    // Unreachable through messages: every other dealer's F_{j,0} = O is checked on its own first.
    // The run stops after round 1: party 2's reveal reaches party 1 (whose state just before it is
    // kept), its base-OT message is kept aside, nothing else is delivered.
    let before: { msg: Incoming; state: () => DealingSession } | undefined;
    let choice: Incoming | undefined;
    const stop: Tamper = (from, msg, recipients) => {
      const kind = decodeBody(msg.bytes).case;
      if (kind === 'keygenCommit' || (from === 2 && kind === 'keygenReveal')) return recipients.map((to) => ({ to, bytes: msg.bytes, broadcast: msg.to === null }));
      if (from === 2 && kind === 'baseOtChoice') choice = { from, to: 1, bytes: msg.bytes };
      return [];
    };
    dealingRun(cache, 'refresh/2-of-2', refreshRequest(shares), shares, stop, (party, msg, state) => {
      if (party === 1 && msg.from === 2 && decodeBody(msg.bytes).case === 'keygenReveal') before = { msg, state: state as () => DealingSession };
    });
    const m = before!.state();
    (m as unknown as { dealing: { F: Point[] } }).dealing.F[0] = G;
    m.receive(before!.msg, systemRng);
    const res = m.receive(choice!, systemRng);
    assert.ok(res.error instanceof AbortError && res.error.check === 'public-key' && res.error.message.includes('dealings do not preserve the public key'), res.error?.message);
  });
  test('reshare: a dealer sends newcomers different old public data: ABORT old-public-data', () => {
    const res = dealingRun(cache, 'reshare/2-of-3', reshareRequest(shares, 1), shares, field(2, 'keygenReveal', 'oldPublic', flipLastBit));
    expectAll(res, [1], AbortError, 'old-public-data', 2, 'copies of the old public key data differ');
    expectAll(res, [3], AbortError, 'old-public-data', undefined, 'copies of the old public key data differ');
  });
  /** Both dealers send the same forged old public data: only the newcomer (no copy of its own) can judge it. */
  const sameForgedOldPublic = (data: Uint8Array): Tamper => (from, msg, recipients) => {
    const body = decodeBody(msg.bytes);
    const value = body.case === 'keygenReveal' && from !== 3 ? { ...body.value, oldPublic: data } : undefined;
    return recipients.map((to) => ({ to, bytes: value ? encodeBody({ case: 'keygenReveal', value }) : msg.bytes, broadcast: msg.to === null }));
  };
  test('reshare: both dealers send the same wrong old public data: the newcomer ABORTs old-public-data, unattributable', () => {
    const s1 = shares.get(1)!;
    const cases: [Partial<KeyShare>, string][] = [
      [{ keyId: 'other' }, 'old public data is for another key, epoch or threshold'],
      [{ publicShares: [s1.publicShares[0]!, G] }, 'old public shares do not interpolate to the public key'],
      [{ publicShares: [...s1.publicShares, G] }, 'old public share 3 is inconsistent'],
      [{ threshold: 3 }, 'bad old public data shape'],
    ];
    for (const [over, reason] of cases)
      expectAll(dealingRun(cache, 'reshare/2-of-3', reshareRequest(shares, 1), shares, sameForgedOldPublic(encodeOldPublic({ ...s1, ...over }))), [3], AbortError, 'old-public-data', undefined, reason);
  });
  test('reshare: the newcomer (not a dealer) sends a dealing or old public data: ABORT decode naming it', () => {
    for (const [name, reason] of [['feldman', 'a non-dealer sent a dealing'], ['oldPublic', 'a non-dealer sent old public data']] as const) {
      // Party 3 is the cheater: after round 1 nothing is delivered to it (it would only do OT work).
      const tamper: Tamper = (from, msg, recipients) => field(3, 'keygenReveal', name, () => GENERATOR)(from, msg, recipients).filter((d) => d.to !== 3 || decodeBody(d.bytes).case === 'keygenCommit');
      expectAll(dealingRun(cache, 'reshare/2-of-3', reshareRequest(shares, 1), shares, tamper), [1, 2], AbortError, 'decode', 3, reason);
    }
  });
  test('reshare: a dealer that leaves (receives nothing) sends a public share in round 4: ABORT decode naming it', () => {
    const req = reshareRequest(shares, 1, [2, 3]);
    expectAll(dealingRun(cache, 'reshare/leave', req, shares, field(1, 'keygenConfirm', 'publicShare', () => GENERATOR)), [2, 3], AbortError, 'decode', 1, 'a non-receiver sent a public share');
  });
});

describe('checks that no message can reach: party 1\'s own state corrupted just before the round', () => {
  /** Party 1's state just before each message party 2 sends it in the honest 2-of-2 run. */
  const at = new Map<string, { msg: Incoming; state: () => DealingSession }>();
  before(() => {
    run2(undefined, 2, (party, msg, state) => {
      if (party === 1 && msg.from === 2) at.set(decodeBody(msg.bytes).case, { msg, state: state as () => DealingSession });
    });
  });
  type Internals = { dealing: { F: Point[] }; aggregate: Point[]; publicShares: Point[]; baseOt: Map<number, BaseOtReceiverState> };
  const internals = (m: DealingSession) => m as unknown as Internals;
  /** Deliver party 2's messages of `kinds`, in order, to `m`; the last step's result. */
  const deliver = (m: DealingSession, kinds: string[], edit: (b: Uint8Array) => Uint8Array = (b) => b) => {
    let res: ReturnType<DealingSession['receive']> = { out: [] };
    for (const k of kinds) res = m.receive({ ...at.get(k)!.msg, bytes: edit(at.get(k)!.msg.bytes) }, systemRng);
    return res;
  };
  const expectAbort = (res: ReturnType<DealingSession['receive']>, check: string, reason: string) => {
    assert.ok(res.error instanceof AbortError, res.error?.message ?? 'no error');
    assert.equal(res.error.check, check);
    assert.equal(res.error.culprit, undefined);
    assert.ok(res.error.message.includes(reason), res.error.message);
    assert.equal(res.output, undefined);
  };

  const assertWiped = (m: DealingSession, st: BaseOtReceiverState) => {
    assert.ok(st.choices.every((b) => b === 0), 'choice bits wiped');
    assert.ok(st.t.every((t) => t === 0n), 't_ι wiped');
    assert.equal(internals(m).baseOt.size, 0);
  };

  test('the snapshots are faithful: party 1 fed the honest messages from its state before round 2 gets the honest key; round 3 wiped the base-OT secrets', () => {
    const m = at.get('keygenReveal')!.state();
    const st = internals(m).baseOt.get(2)!;
    assert.ok(st.choices.some((b) => b !== 0) && st.t.every((t) => t !== 0n));
    deliver(m, ['keygenReveal', 'baseOtChoice', 'keygenShare']);
    assertWiped(m, st);
    const res = deliver(m, ['keygenConfirm']);
    assert.equal(res.error, undefined);
    assert.ok(res.output!.publicKey.equals(run2().outputs.get(1)!.publicKey));
  });
  test('round 2: own F_0 = −F_{2,0}, so the aggregate public key is O: ABORT public-key (dkg.ts, keygen)', () => {
    const m = at.get('keygenReveal')!.state();
    const reveal = decodeBody(at.get('keygenReveal')!.msg.bytes).value as { feldman: Uint8Array };
    internals(m).dealing.F[0] = Point.fromBytes(reveal.feldman.subarray(0, 33)).negate();
    expectAbort(deliver(m, ['keygenReveal', 'baseOtChoice']), 'public-key', 'aggregate public key is the identity');
  });
  test('round 3: aggregate polynomial changed after the Feldman checks: ABORT public-shares (my share)', () => {
    const m = at.get('keygenShare')!.state();
    internals(m).aggregate[1] = internals(m).aggregate[1]!.add(G);
    expectAbort(deliver(m, ['keygenShare']), 'public-shares', 'my share does not match the public data');
  });
  test('round 4: own public share changed: ABORT public-shares (they no longer interpolate to PK)', () => {
    const m = at.get('keygenConfirm')!.state();
    internals(m).publicShares[0] = G;
    expectAbort(deliver(m, ['keygenConfirm']), 'public-shares', 'public shares do not interpolate to the public key');
  });
  test('a round 3 that aborts (bad PPRF proof) wipes the base-OT secrets too', () => {
    const m = at.get('keygenShare')!.state();
    const st = internals(m).baseOt.get(2)!;
    const res = deliver(m, ['keygenShare'], (b) => {
      const v = decodeBody(b).value as KeygenShare;
      return encodeBody({ case: 'keygenShare', value: { ...v, pprf: flipBit((3 * 64 + 5) * 8)(v.pprf) } });
    });
    assert.equal(res.error?.check, 'pprf-proof');
    assertWiped(m, st);
  });
});

describe('dealerOldIndices are bounded by the old key\'s n', () => {
  let shares: Map<number, KeyShare>;
  before(() => {
    shares = new Map([...run2().outputs].map(([i, o]) => [i, o.share!]));
  });
  test('a holder of an old share refuses an index above the old n when the request is built', () => {
    assert.throws(() => new DealingSession({ ...reshareRequest(shares, 0), dealerOldIndices: [1, 3] }, 1, shares.get(1)),
      (e: unknown) => e instanceof AbortError && e.check === 'bad-input' && e.message.includes('dealerOldIndices must be in 1..2'));
  });
  test('a newcomer learns the old n from the old public data: ABORT party-index, not an internal error', () => {
    // Every holder refuses such a request (above), so only dealers that all lie could run it. The
    // newcomer (session 3) is handed the bad list after construction, under the honest instance id.
    const req = reshareRequest(shares, 1);
    const newcomer = () => {
      const m = new DealingSession(req, 3);
      (m as unknown as { req: DealingRequest }).req = { ...req, dealerOldIndices: [1, 3] };
      return m;
    };
    // Parties 1 and 2 are the honest ones of the reshare test above (same scope: their steps are
    // reused). Only the newcomer is under test, so their round-2 inputs are not delivered.
    const onlyTo3: Tamper = (from, msg, recipients) => recipients.filter((to) => to === 3 || decodeBody(msg.bytes).case === 'keygenCommit').map((to) => ({ to, bytes: msg.bytes, broadcast: msg.to === null }));
    const res = replayRun<DealingOutput>(cache, 'reshare/2-of-3', new Map<number, Party<DealingOutput>>([
      [1, () => new DealingSession(req, 1, shares.get(1))], [2, () => new DealingSession(req, 2, shares.get(2))],
      [3, { make: newcomer, scope: 'reshare/2-of-3/newcomer-old-index-3' }],
    ]), onlyTo3);
    expectAll(res, [3], AbortError, 'party-index', undefined, 'dealerOldIndices must be in 1..2');
  });
});
