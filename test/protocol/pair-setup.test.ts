import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { seededRng, type Rng } from '../../src/crypto/random.ts';
import { GROUPS, LEAVES, SEED_BYTES } from '../../src/ot/params.ts';
import { PPRF_BYTES, PPRF_GROUP_BYTES } from '../../src/ot/pprf.ts';
import { AbortError, BanPairError } from '../../src/protocol/errors.ts';
import type { KeyShare, PairState } from '../../src/protocol/key-share.ts';
import { PairSetupSession, pairSetupInstanceId, withPair } from '../../src/protocol/pair-setup.ts';
import type { Signature } from '../../src/protocol/sign.ts';
import { runMachines, type RunResult, type Tamper } from '../../src/sim/run-machines.ts';
import { keygen, partyRngs, runPresign, sign } from '../../src/sim/simulator.ts';
import { expectAll, field, flipBit, truncate } from '../byzantine/tamper.ts';

/** Pair re-setup after BAN_PAIR (spec §2.10 rule 2): fresh §2.3 OT setup both ways + §2.6 seed. */

const NONCE = new Uint8Array(32).fill(7);
const DIGEST = new Uint8Array(32).fill(0x5a);

let shares: Map<number, KeyShare>;
before(() => {
  shares = keygen(2, 3, { seed: 'pair-setup' });
});

function runPair(a: number, b: number, opts: { nonce?: Uint8Array; nonces?: Map<number, Uint8Array>; tamper?: Tamper; rngs?: Map<number, Rng>; from?: Map<number, KeyShare> } = {}): RunResult<PairState> {
  const src = opts.from ?? shares;
  const nonceOf = (i: number) => opts.nonces?.get(i) ?? opts.nonce ?? NONCE;
  const machines = new Map([
    [a, new PairSetupSession(src.get(a)!, b, nonceOf(a))],
    [b, new PairSetupSession(src.get(b)!, a, nonceOf(b))],
  ]);
  return runMachines(machines, opts.rngs ?? partyRngs([a, b], 'pair-setup-run'), opts.tamper);
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

/** Fixed per-party randomness, so a run can be repeated with one input changed. */
const fixedRngs = () => new Map<number, Rng>([[1, seededRng('pair-setup/1')], [2, seededRng('pair-setup/2')]]);

/** The honest run of pair {1,2} with NONCE and fixedRngs (memoised: several tests read it). */
let honest: RunResult<PairState> | undefined;
const honestRun = () => (honest ??= runPair(1, 2, { rngs: fixedRngs() }));

describe('pair re-setup (spec §2.10)', () => {
  let fresh: RunResult<PairState>;
  let updated: Map<number, KeyShare>;
  before(() => {
    fresh = honestRun();
    updated = new Map(shares);
    updated.set(1, withPair(shares.get(1)!, 2, fresh.outputs.get(1)!));
    updated.set(2, withPair(shares.get(2)!, 1, fresh.outputs.get(2)!));
  });

  test('both parties finish with correlated OT state and the same zero seed, all of it new', () => {
    assert.equal(fresh.errors.size, 0);
    assert.equal(fresh.drops.length, 0);
    const p1 = fresh.outputs.get(1)!, p2 = fresh.outputs.get(2)!;
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
    assert.equal(s1.pairs.get(2), fresh.outputs.get(1));
    assert.equal(s1.pairs.get(3), shares.get(1)!.pairs.get(3));
    assert.notEqual(shares.get(1)!.pairs.get(2), fresh.outputs.get(1));
    assert.equal(s1.secretShare, shares.get(1)!.secretShare);
    assert.equal(s1.epoch, shares.get(1)!.epoch);
    assert.deepEqual(s1.dkgSid, shares.get(1)!.dkgSid);
    assert.throws(() => withPair(s1, 1, fresh.outputs.get(1)!), (e: unknown) => e instanceof AbortError && e.check === 'bad-input');
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
});

describe('pair re-setup: nonce binding and inputs', () => {
  test('same randomness, different nonce: a different pair state', () => {
    const a = honestRun();
    const b = runPair(1, 2, { nonce: new Uint8Array(32).fill(8), rngs: fixedRngs() });
    assert.equal(b.outputs.size, 2);
    const [pa, pb] = [a, b].map((r) => r.outputs.get(1)!);
    // Δ comes from the rng's choice bits; everything hash-derived depends on the session id.
    assert.deepEqual(pa!.delta, pb!.delta);
    assert.notDeepEqual(pa!.senderSeeds, pb!.senderSeeds);
    assert.notDeepEqual(pa!.receiverSeeds, pb!.receiverSeeds);
    assert.notDeepEqual(pa!.zeroSeed, pb!.zeroSeed);
    assert.notDeepEqual(pairSetupInstanceId(shares.get(1)!, 2, NONCE), pairSetupInstanceId(shares.get(1)!, 2, new Uint8Array(32).fill(8)));
    assert.deepEqual(pairSetupInstanceId(shares.get(1)!, 2, NONCE), pairSetupInstanceId(shares.get(2)!, 1, NONCE));
  });

  test('the two sides were given different nonces: both ABORT session-id, naming the other', () => {
    const res = runPair(1, 2, { nonces: new Map([[1, NONCE], [2, new Uint8Array(32).fill(9)]]) });
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
  const run = (tamper: Tamper) => runPair(1, 2, { tamper });

  test('round 1: wrong instance id → ABORT session-id', () => {
    expectAll(run(field(2, 'pairSetupNonce', 'instanceId', flipBit(0))), [1], AbortError, 'session-id', 2);
  });
  test('round 1: session nonce one byte short → ABORT decode', () => {
    expectAll(run(field(2, 'pairSetupNonce', 'sessionNonce', truncate(1))), [1], AbortError, 'decode', 2);
  });
  test('round 2: wrong session id → ABORT session-id', () => {
    expectAll(run(field(2, 'baseOtChoice', 'sessionId', flipBit(3))), [1], AbortError, 'session-id', 2);
  });
  test('round 2: base-OT points one byte short → ABORT decode', () => {
    expectAll(run(field(2, 'baseOtChoice', 'points', truncate(1))), [1], AbortError, 'decode', 2);
  });
  test('round 3: wrong session id → ABORT session-id', () => {
    expectAll(run(field(2, 'pairSetupReply', 'sessionId', flipBit(255))), [1], AbortError, 'session-id', 2);
  });
  test('round 3: otReply one byte short → ABORT decode', () => {
    expectAll(run(field(2, 'pairSetupReply', 'otReply', truncate(1))), [1], AbortError, 'decode', 2);
  });
  test('round 3: pprf one byte short → ABORT decode', () => {
    expectAll(run(field(2, 'pairSetupReply', 'pprf', truncate(1))), [1], AbortError, 'decode', 2);
  });
  test('round 3: zeroSeed one byte short → ABORT decode, with the message as evidence', () => {
    const res = run(field(2, 'pairSetupReply', 'zeroSeed', truncate(1)));
    expectAll(res, [1], AbortError, 'decode', 2);
    const evidence = (res.errors.get(1) as AbortError).evidence;
    assert.ok(evidence instanceof Uint8Array && evidence.length > PPRF_BYTES);
  });
  test('round 3: flipped byte in the PPRF proof → ABORT pprf-proof (as in the DKG, not BAN_PAIR)', () => {
    // Group 5's s̃: bytes 5·320 + 4·64 ..+64 (spec §2.3 layout: 3 levels × 64, t̃, s̃).
    expectAll(run(field(2, 'pairSetupReply', 'pprf', flipBit((5 * PPRF_GROUP_BYTES + 4 * 64 + 1) * 8))), [1], AbortError, 'pprf-proof', 2);
  });
});
