import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { seededRng, type Rng } from '../../src/crypto/random.ts';
import { GROUPS, LEAVES, SEED_BYTES } from '../../src/ot/params.ts';
import { PPRF_BYTES, PPRF_GROUP_BYTES } from '../../src/ot/pprf.ts';
import { AbortError, BanPairError, type ProtocolError } from '../../src/protocol/errors.ts';
import type { KeyShare, PairState } from '../../src/protocol/key-share.ts';
import type { StepResult } from '../../src/protocol/machine.ts';
import { decodeBody } from '../../src/protocol/messages.ts';
import { PairSetupSession, pairSetupInstanceId, withPair } from '../../src/protocol/pair-setup.ts';
import type { Signature } from '../../src/protocol/sign.ts';
import { runMachines, type RunResult, type Tamper } from '../../src/sim/run-machines.ts';
import { keygen, runPresign, sign } from '../../src/sim/simulator.ts';
import { expectAll, field, flipBit, truncate } from '../byzantine/tamper.ts';

/**
 * Pair re-setup after BAN_PAIR (spec §2.10 rule 2): fresh §2.3 OT setup in both directions and a
 * fresh §2.6 zero seed for one pair. A run costs ~4 s of CPU (768 constant-time multiplications
 * per direction), so the round-2/3 byzantine tests replay tampered messages into snapshots of
 * party 1 taken during the one honest run instead of re-running the whole setup each time.
 */

const NONCE = new Uint8Array(32).fill(7);
const OTHER_NONCE = new Uint8Array(32).fill(8);
const DIGEST = new Uint8Array(32).fill(0x5a);

/** Fixed per-party randomness, so a run can be repeated with one input changed. */
const fixedRngs = (): Map<number, Rng> => new Map([[1, seededRng('pair-setup/1')], [2, seededRng('pair-setup/2')]]);

let shares: Map<number, KeyShare>;

function runPair(opts: { nonces?: [Uint8Array, Uint8Array]; tamper?: Tamper } = {}): RunResult<PairState> {
  const [n1, n2] = opts.nonces ?? [NONCE, NONCE];
  const machines = new Map([
    [1, new PairSetupSession(shares.get(1)!, 2, n1)],
    [2, new PairSetupSession(shares.get(2)!, 1, n2)],
  ]);
  return runMachines(machines, fixedRngs(), opts.tamper);
}

/** Deep copy of a machine mid-session (test only; its state is plain data). */
function snapshot(m: PairSetupSession): PairSetupSession {
  return Object.assign(Object.create(Object.getPrototypeOf(m) as object), structuredClone({ ...m })) as PairSetupSession;
}

/** The honest run of {1,2}, with party 1 snapshotted after rounds 1 and 2 and party 2's messages to it recorded. */
interface Recorded {
  res: RunResult<PairState>;
  afterRound1: PairSetupSession; // waits for BaseOtChoice
  afterRound2: PairSetupSession; // waits for PairSetupReply
  choice: Uint8Array; // party 2 → 1, round 2
  reply: Uint8Array; // party 2 → 1, round 3
}
function recordHonestRun(): Recorded {
  const p1 = new PairSetupSession(shares.get(1)!, 2, NONCE);
  const machines = new Map([[1, p1], [2, new PairSetupSession(shares.get(2)!, 1, NONCE)]]);
  const rec: Partial<Recorded> = {};
  // The tamper hook runs right after a party's step, before anything else is delivered.
  const observe: Tamper = (from, msg, recipients) => {
    const kind = decodeBody(msg.bytes).case;
    if (from === 1 && kind === 'baseOtChoice') rec.afterRound1 = snapshot(p1);
    if (from === 1 && kind === 'pairSetupReply') rec.afterRound2 = snapshot(p1);
    if (from === 2 && kind === 'baseOtChoice') rec.choice = msg.bytes;
    if (from === 2 && kind === 'pairSetupReply') rec.reply = msg.bytes;
    return recipients.map((to) => ({ to, bytes: msg.bytes, broadcast: msg.to === null }));
  };
  rec.res = runMachines(machines, fixedRngs(), observe);
  return rec as Recorded;
}

/** Deliver party 2's `bytes`, rewritten by `tamper`, to a snapshot of party 1. */
function replay(at: PairSetupSession, bytes: Uint8Array, tamper: Tamper): StepResult<PairState> {
  const [d] = tamper(2, { to: 1, bytes }, [1]);
  return snapshot(at).receive({ from: 2, to: 1, bytes: d!.bytes }, seededRng('replay'));
}

function expectError(res: StepResult<PairState>, cls: abstract new (...a: never[]) => ProtocolError, check: string, culprit: number | undefined) {
  assert.ok(res.error instanceof cls, `expected ${cls.name}, got ${res.error ? res.error.message : 'no error'}`);
  assert.equal(res.error.check, check, res.error.message);
  assert.equal(res.error.culprit, culprit, res.error.message);
  assert.equal(res.output, undefined);
  assert.deepEqual(res.out, []);
}

function assertVerifies(sig: Signature, pk: KeyShare['publicKey']) {
  const compact = new secp256k1.Signature(sig.r, sig.s).toBytes('compact');
  assert.equal(secp256k1.verify(compact, sig.digest, pk.toBytes(true), { prehash: false, lowS: true }), true);
}

const seedOf = (seeds: Uint8Array, g: number, y: number) => seeds.subarray((g * LEAVES + y) * SEED_BYTES, (g * LEAVES + y + 1) * SEED_BYTES);

/** E's 15 seeds per group equal R's, the punctured one (index Δ_g) is zero (spec §2.3). */
function assertCorrelated(E: PairState, R: PairState) {
  for (let g = 0; g < GROUPS; g++) {
    const d = E.delta[g]!;
    assert.ok(d < LEAVES);
    for (let y = 0; y < LEAVES; y++) {
      if (y === d) assert.deepEqual(seedOf(E.senderSeeds, g, y), new Uint8Array(SEED_BYTES));
      else assert.deepEqual(seedOf(E.senderSeeds, g, y), seedOf(R.receiverSeeds, g, y));
    }
  }
}

let rec: Recorded;
let updated: Map<number, KeyShare>;
before(() => {
  shares = keygen(2, 3, { seed: 'pair-setup' });
  rec = recordHonestRun();
  updated = new Map(shares);
  updated.set(1, withPair(shares.get(1)!, 2, rec.res.outputs.get(1)!));
  updated.set(2, withPair(shares.get(2)!, 1, rec.res.outputs.get(2)!));
});

describe('pair re-setup (spec §2.10)', () => {
  test('both parties finish with correlated OT state and the same zero seed, all of it new', () => {
    assert.equal(rec.res.errors.size, 0);
    assert.equal(rec.res.drops.length, 0);
    const p1 = rec.res.outputs.get(1)!, p2 = rec.res.outputs.get(2)!;
    assert.equal(p1.delta.length, GROUPS);
    assert.equal(p1.senderSeeds.length, GROUPS * LEAVES * SEED_BYTES);
    assert.equal(p1.receiverSeeds.length, GROUPS * LEAVES * SEED_BYTES);
    assert.equal(p1.zeroSeed.length, 32);
    assertCorrelated(p1, p2); // 1 as E towards 2
    assertCorrelated(p2, p1); // 2 as E towards 1
    assert.deepEqual(p1.zeroSeed, p2.zeroSeed);
    for (const [i, j, p] of [[1, 2, p1], [2, 1, p2]] as const) {
      const old = shares.get(i)!.pairs.get(j)!;
      assert.notDeepEqual(p.delta, old.delta);
      assert.notDeepEqual(p.senderSeeds, old.senderSeeds);
      assert.notDeepEqual(p.receiverSeeds, old.receiverSeeds);
      assert.notDeepEqual(p.zeroSeed, old.zeroSeed);
    }
  });

  test('withPair replaces one entry and leaves the input share untouched', () => {
    const s1 = updated.get(1)!;
    assert.equal(s1.pairs.get(2), rec.res.outputs.get(1));
    assert.equal(s1.pairs.get(3), shares.get(1)!.pairs.get(3));
    assert.notEqual(shares.get(1)!.pairs.get(2), rec.res.outputs.get(1));
    assert.equal(s1.secretShare, shares.get(1)!.secretShare);
    assert.equal(s1.epoch, shares.get(1)!.epoch);
    assert.deepEqual(s1.dkgSid, shares.get(1)!.dkgSid);
    assert.throws(() => withPair(s1, 1, rec.res.outputs.get(1)!), (e: unknown) => e instanceof AbortError && e.check === 'bad-input');
  });

  test('T = {1,2} signs with the new pair state', () => {
    const sig = sign(updated, [1, 2], DIGEST, { seed: 'pair-setup-sign12' });
    assertVerifies(sig, shares.get(1)!.publicKey);
    assert.deepEqual(sig.digest, DIGEST);
  });

  test('T = {1,3} still signs with the untouched pairs', () => {
    const sig = sign(updated, [1, 3], DIGEST, { seed: 'pair-setup-sign13' });
    assertVerifies(sig, shares.get(1)!.publicKey);
  });

  test('only one side updated: the OT correlation breaks and presigning raises BAN_PAIR', () => {
    const mixed = new Map(shares);
    mixed.set(1, updated.get(1)!);
    const res = runPresign(mixed, [1, 2], new Uint8Array(0), { seed: 'pair-setup-mixed' });
    assert.equal(res.outputs.size, 0);
    for (const [i, j] of [[1, 2], [2, 1]] as const) {
      const e = res.errors.get(i);
      assert.ok(e instanceof BanPairError, `party ${i}: ${e?.message}`);
      assert.equal(e.check, 'softspoken-check');
      assert.equal(e.culprit, j);
    }
  });

  test('a snapshot of party 1 fed the honest reply gives the honest output (the replay harness is faithful)', () => {
    const res = snapshot(rec.afterRound2).receive({ from: 2, to: 1, bytes: rec.reply }, seededRng('replay'));
    assert.equal(res.error, undefined);
    assert.deepEqual(res.output, rec.res.outputs.get(1));
  });
});

describe('pair re-setup: nonce binding and inputs', () => {
  test('same randomness, different nonce: a different pair state', () => {
    const other = runPair({ nonces: [OTHER_NONCE, OTHER_NONCE] });
    assert.equal(other.errors.size, 0);
    assert.equal(other.outputs.size, 2);
    const a = rec.res.outputs.get(1)!, b = other.outputs.get(1)!;
    // Δ comes from the rng's choice bits; every hash-derived value depends on the session id.
    assert.deepEqual(a.delta, b.delta);
    assert.notDeepEqual(a.senderSeeds, b.senderSeeds);
    assert.notDeepEqual(a.receiverSeeds, b.receiverSeeds);
    assert.notDeepEqual(a.zeroSeed, b.zeroSeed);
    assert.deepEqual(other.outputs.get(2)!.zeroSeed, b.zeroSeed);
    assert.notDeepEqual(pairSetupInstanceId(shares.get(1)!, 2, NONCE), pairSetupInstanceId(shares.get(1)!, 2, OTHER_NONCE));
    assert.deepEqual(pairSetupInstanceId(shares.get(1)!, 2, NONCE), pairSetupInstanceId(shares.get(2)!, 1, NONCE));
  });

  test('the two sides were given different nonces: both ABORT session-id, naming the other', () => {
    const res = runPair({ nonces: [NONCE, OTHER_NONCE] });
    expectAll(res, [1], AbortError, 'session-id', 2);
    expectAll(res, [2], AbortError, 'session-id', 1);
  });

  test('bad local input: ABORT bad-input', () => {
    const s1 = shares.get(1)!;
    const bad = (f: () => unknown) => assert.throws(f, (e: unknown) => e instanceof AbortError && e.check === 'bad-input' && e.culprit === undefined);
    bad(() => new PairSetupSession(s1, 2, new Uint8Array(31)));
    bad(() => new PairSetupSession(s1, 2, new Uint8Array(33)));
    bad(() => new PairSetupSession(s1, 1, NONCE));
    bad(() => new PairSetupSession(s1, 0, NONCE));
    bad(() => new PairSetupSession(s1, 4, NONCE));
    bad(() => new PairSetupSession(s1, 1.5, NONCE));
  });
});

describe('pair re-setup: byzantine peer (party 2), honest party 1', () => {
  test('round 1: wrong instance id → ABORT session-id', () => {
    expectAll(runPair({ tamper: field(2, 'pairSetupNonce', 'instanceId', flipBit(0)) }), [1], AbortError, 'session-id', 2);
  });
  test('round 1: session nonce one byte short → ABORT decode', () => {
    expectAll(runPair({ tamper: field(2, 'pairSetupNonce', 'sessionNonce', truncate(1)) }), [1], AbortError, 'decode', 2);
  });
  test('round 2: wrong session id → ABORT session-id', () => {
    expectError(replay(rec.afterRound1, rec.choice, field(2, 'baseOtChoice', 'sessionId', flipBit(3))), AbortError, 'session-id', 2);
  });
  test('round 2: base-OT points one byte short → ABORT decode', () => {
    expectError(replay(rec.afterRound1, rec.choice, field(2, 'baseOtChoice', 'points', truncate(1))), AbortError, 'decode', 2);
  });
  test('round 3: wrong session id → ABORT session-id', () => {
    expectError(replay(rec.afterRound2, rec.reply, field(2, 'pairSetupReply', 'sessionId', flipBit(255))), AbortError, 'session-id', 2);
  });
  test('round 3: otReply one byte short → ABORT decode', () => {
    expectError(replay(rec.afterRound2, rec.reply, field(2, 'pairSetupReply', 'otReply', truncate(1))), AbortError, 'decode', 2);
  });
  test('round 3: pprf one byte short → ABORT decode', () => {
    expectError(replay(rec.afterRound2, rec.reply, field(2, 'pairSetupReply', 'pprf', truncate(1))), AbortError, 'decode', 2);
  });
  test('round 3: zeroSeed one byte short → ABORT decode, with the message as evidence', () => {
    const res = replay(rec.afterRound2, rec.reply, field(2, 'pairSetupReply', 'zeroSeed', truncate(1)));
    expectError(res, AbortError, 'decode', 2);
    const evidence = (res.error as AbortError).evidence;
    assert.ok(evidence instanceof Uint8Array && evidence.length > PPRF_BYTES);
  });
  test('round 3: flipped byte in the PPRF proof → ABORT pprf-proof (as in the DKG, not BAN_PAIR)', () => {
    // Per group: 3 levels × 64 B, then t̃ (64 B), then s̃ (64 B) (spec §2.3).
    expectError(replay(rec.afterRound2, rec.reply, field(2, 'pairSetupReply', 'pprf', flipBit((3 * 64 + 5) * 8))), AbortError, 'pprf-proof', 2);
    expectError(replay(rec.afterRound2, rec.reply, field(2, 'pairSetupReply', 'pprf', flipBit((5 * PPRF_GROUP_BYTES + 4 * 64 + 1) * 8))), AbortError, 'pprf-proof', 2);
  });
});
