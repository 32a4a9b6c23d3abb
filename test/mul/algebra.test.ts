import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { hash32 } from '../../src/crypto/hash.ts';
import { Fn, G, N } from '../../src/crypto/scalar-point.ts';
import { seededRng } from '../../src/crypto/random.ts';
import { DecodeError } from '../../src/crypto/errors.ts';
import { baseOtReceiverFinish, baseOtReceiverStart, baseOtSenderRespond } from '../../src/ot/endemic-ot.ts';
import { PPRF_BYTES, PPRF_GROUP_BYTES, PprfProofError, pprfBuild, pprfEval } from '../../src/ot/pprf.ts';
import { SoftSpokenCheckError, extensionSend, type ExtensionMessage } from '../../src/ot/softspoken.ts';
import { GROUPS, K, LEAVES, SEED_BYTES, SEEDS_BYTES } from '../../src/ot/params.ts';
import { RvoleCheckError, rvoleReceiverFinish, rvoleReceiverStart, rvoleSenderRespond, type RvoleSenderMessage } from '../../src/mul/rvole.ts';
import { pairSeed, zeroShare } from '../../src/mul/zero-sharing.ts';
import { keygen, runPresign } from '../../src/sim/simulator.ts';
import type { KeyShare } from '../../src/protocol/key-share.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const bit = (b: Uint8Array, i: number) => (b[i >>> 3]! >>> (i & 7)) & 1;

describe('zero-sharing (spec §2.6)', () => {
  test('property: Σ_{i∈T} ζ_i = 0 for random signer sets, pair seeds and session ids', () => {
    const arb = fc
      .integer({ min: 2, max: 10 })
      .chain((n) => fc.tuple(fc.shuffledSubarray(Array.from({ length: n }, (_, k) => k + 1), { minLength: 2 }), fc.string(), fc.uint8Array({ minLength: 32, maxLength: 32 })));
    fc.assert(
      fc.property(arb, ([T, seed, sigSid]) => {
        const rng = seededRng(`zero/${seed}`);
        const dkgSid = rng(32);
        const z = new Map(T.map((i) => [i, new Map(T.filter((j) => j !== i).map((j) => [j, rng(32)]))])); // z_{i→j}
        const seeds = new Map(T.map((i) => [i, new Map(T.filter((j) => j !== i).map((j) => [j, pairSeed(dkgSid, i, j, z.get(i)!.get(j)!, z.get(j)!.get(i)!)]))]));
        // symmetric seeds
        for (const i of T) for (const j of T) if (i !== j) assert.equal(hex(seeds.get(i)!.get(j)!), hex(seeds.get(j)!.get(i)!));
        const signers = [...T].sort((a, b) => a - b);
        const zetas = signers.map((i) => zeroShare(i, seeds.get(i)!, signers, sigSid));
        assert.equal(zetas.reduce((s, x) => Fn.add(s, x), 0n), 0n);
        zetas.forEach((x) => assert.ok(x >= 0n && x < N));
        // a different session gives different shares (but still a sharing of zero)
        const other = signers.map((i) => zeroShare(i, seeds.get(i)!, signers, hash32('other', sigSid)));
        assert.notEqual(other[0], zetas[0]);
        assert.equal(other.reduce((s, x) => Fn.add(s, x), 0n), 0n);
      }),
      { numRuns: 100 },
    );
  });

  test('pairSeed is order-independent and binds the session; missing seed throws RangeError', () => {
    const sid = new Uint8Array(32), a = new Uint8Array(32).fill(1), b = new Uint8Array(32).fill(2);
    assert.equal(hex(pairSeed(sid, 1, 2, a, b)), hex(pairSeed(sid, 2, 1, b, a)));
    assert.notEqual(hex(pairSeed(sid, 1, 2, a, b)), hex(pairSeed(sid, 1, 2, b, a)));
    assert.notEqual(hex(pairSeed(sid, 1, 2, a, b)), hex(pairSeed(new Uint8Array(32).fill(9), 1, 2, a, b)));
    assert.throws(() => zeroShare(1, new Map([[2, a]]), [1, 2, 3], sid), RangeError);
    assert.equal(zeroShare(1, new Map(), [1], sid), 0n);
  });
});

/** One ordered pair's OT setup, run in-process once: E = base-OT receiver / RVOLE sender, R = base-OT sender / RVOLE receiver. */
interface Setup {
  sidOT: Uint8Array; sidABO: Uint8Array;
  choices: Uint8Array; keysE: Uint8Array[]; keys0: Uint8Array[]; keys1: Uint8Array[];
  pprfMsg: Uint8Array; seedsR: Uint8Array; delta: Uint8Array; seedsE: Uint8Array;
}
let S: Setup;
const rng = seededRng('algebra-ot');

describe('OT chain and RVOLE (spec §2.3–2.5)', () => {
  before(() => {
    const dkgSid = hash32('test/dkg', 7);
    const sidOT = hash32('ot/base', dkgSid, 1, 2), sidABO = hash32('ot/abo', dkgSid, 1, 2);
    const { state, message } = baseOtReceiverStart(sidOT, rng);
    const { keys0, keys1, reply } = baseOtSenderRespond(sidOT, message, rng);
    const keysE = baseOtReceiverFinish(sidOT, state, reply);
    const { seeds: seedsR, message: pprfMsg } = pprfBuild(sidABO, keys0, keys1);
    const { delta, seeds: seedsE } = pprfEval(sidABO, state.choices, keysE, pprfMsg);
    S = { sidOT, sidABO, choices: state.choices, keysE, keys0, keys1, pprfMsg, seedsR, delta, seedsE };
  });

  test('base OT: E holds k_{ι,c_ι}, never k_{ι,1−c_ι}', () => {
    assert.equal(S.keysE.length, 256);
    for (let i = 0; i < 256; i++) {
      const c = bit(S.choices, i);
      assert.equal(hex(S.keysE[i]!), hex((c ? S.keys1 : S.keys0)[i]!));
      assert.notEqual(hex(S.keysE[i]!), hex((c ? S.keys0 : S.keys1)[i]!));
    }
  });

  test('PPRF: Δ_g = Σ (1 ⊕ c_{4g+i})·2^{3−i}; E holds every seed except Δ_g (left zero)', () => {
    assert.equal(S.pprfMsg.length, PPRF_BYTES);
    assert.equal(S.seedsR.length, SEEDS_BYTES);
    for (let g = 0; g < GROUPS; g++) {
      let want = 0;
      for (let i = 0; i < K; i++) want += (1 ^ bit(S.choices, K * g + i)) << (3 - i);
      assert.equal(S.delta[g], want, `group ${g}`);
      for (let y = 0; y < LEAVES; y++) {
        const o = (g * LEAVES + y) * SEED_BYTES;
        const e = hex(S.seedsE.subarray(o, o + SEED_BYTES)), r = hex(S.seedsR.subarray(o, o + SEED_BYTES));
        if (y === want) {
          assert.equal(e, '00'.repeat(32));
          assert.notEqual(r, '00'.repeat(32));
        } else assert.equal(e, r);
      }
    }
    // all 16 seeds of a group are distinct
    assert.equal(new Set(Array.from({ length: LEAVES }, (_, y) => hex(S.seedsR.subarray(y * 32, y * 32 + 32)))).size, LEAVES);
  });

  test('PPRF: flipped bytes in the used sums, t̃ or s̃ make pprfEval throw PprfProofError naming the group', () => {
    const g = 5, gOff = g * PPRF_GROUP_BYTES;
    const positions: number[] = [];
    for (let l = 2; l <= K; l++) positions.push(gOff + (l - 2) * 64 + bit(S.choices, K * g + l - 1) * 32 + 3); // the side E unmasks
    positions.push(gOff + (K - 1) * 64 + 10); // t̃
    positions.push(gOff + (K - 1) * 64 + 64 + 63); // s̃
    for (const pos of positions) {
      const bad = S.pprfMsg.slice();
      bad[pos]! ^= 0x01;
      assert.throws(() => pprfEval(S.sidABO, S.choices, S.keysE, bad), (e: unknown) => e instanceof PprfProofError && e.group === g, `byte ${pos}`);
    }
    // a wrong session id fails in group 0
    assert.throws(() => pprfEval(hash32('x'), S.choices, S.keysE, S.pprfMsg), (e: unknown) => e instanceof PprfProofError && e.group === 0);
    // wrong length is a DecodeError
    assert.throws(() => pprfEval(S.sidABO, S.choices, S.keysE, S.pprfMsg.subarray(1)), DecodeError);
    assert.throws(() => pprfEval(S.sidABO, S.choices, S.keysE, new Uint8Array(PPRF_BYTES + 1)), DecodeError);
  });

  test('PPRF: the sum E cannot unmask does not influence its output', () => {
    const g = 9, l = 3;
    const bad = S.pprfMsg.slice();
    bad[g * PPRF_GROUP_BYTES + (l - 2) * 64 + (1 - bit(S.choices, K * g + l - 1)) * 32]! ^= 0xff;
    const out = pprfEval(S.sidABO, S.choices, S.keysE, bad);
    assert.equal(hex(out.delta), hex(S.delta));
    assert.equal(hex(out.seeds), hex(S.seedsE));
  });

  test('RVOLE: c_i + d_i = a_i·χ for several sessions and random a (i = 1, 2)', () => {
    const as: bigint[][] = [[1n, 2n], [0n, 0n], [N - 1n, 1n], ...fc.sample(fc.tuple(fc.bigInt({ min: 0n, max: N - 1n }), fc.bigInt({ min: 0n, max: N - 1n })), { numRuns: 2, seed: 7 })];
    const chis = new Set<bigint>();
    as.forEach((a, k) => {
      const sidMul = hash32('dsg/mul', hash32('test/sig', k), 1, 2);
      const r = rvoleReceiverStart(sidMul, S.seedsR, rng);
      const e = rvoleSenderRespond(sidMul, S.delta, S.seedsE, a, r.message, rng);
      const d = rvoleReceiverFinish(r.state, e.message);
      assert.equal(e.c.length, 2);
      assert.equal(d.length, 2);
      for (let i = 0; i < 2; i++) {
        assert.ok(e.c[i]! < N && d[i]! < N);
        assert.equal(Fn.add(e.c[i]!, d[i]!), Fn.mul(a[i]!, r.state.chi), `session ${k}, i = ${i + 1}`);
      }
      chis.add(r.state.chi);
    });
    assert.equal(chis.size, as.length, 'χ is fresh per session');
  });

  describe('tampering', () => {
    let sidMul: Uint8Array;
    let rs: ReturnType<typeof rvoleReceiverStart>;
    let es: ReturnType<typeof rvoleSenderRespond>;
    before(() => {
      sidMul = hash32('dsg/mul', hash32('test/tamper'), 1, 2);
      rs = rvoleReceiverStart(sidMul, S.seedsR, rng);
      es = rvoleSenderRespond(sidMul, S.delta, S.seedsE, [3n, 4n], rs.message, rng);
    });
    const flipExt = (field: keyof ExtensionMessage, byte: number, mask = 1): ExtensionMessage => {
      const m = { u: rs.message.u.slice(), xTilde: rs.message.xTilde.slice(), vTilde: rs.message.vTilde.slice() };
      m[field][byte]! ^= mask;
      return m;
    };

    test('an untampered extension message passes extensionSend', () => {
      const { pads0, pads1 } = extensionSend(sidMul, S.delta, S.seedsE, rs.message);
      assert.equal(pads0.length, 512);
      assert.equal(pads1.length, 512);
      // R's pad is V^{β_c}_c
      for (const c of [0, 1, 100, 511]) assert.deepEqual(rs.state.pads[c], (bit(rs.state.beta, c) ? pads1 : pads0)[c]);
    });

    for (const [field, bytes] of [['u', [0, 2500, 5119]], ['xTilde', [0, 15]], ['vTilde', [0, 2048, 4095]]] as const) {
      test(`a flipped bit in ${field} makes extensionSend throw SoftSpokenCheckError`, () => {
        for (const b of bytes) for (const mask of [0x01, 0x80]) assert.throws(() => extensionSend(sidMul, S.delta, S.seedsE, flipExt(field, b, mask)), SoftSpokenCheckError, `${field}[${b}] ^= ${mask}`);
      });
    }

    test('extension under another sidMul fails the check; wrong lengths are DecodeError', () => {
      assert.throws(() => extensionSend(hash32('other'), S.delta, S.seedsE, rs.message), SoftSpokenCheckError);
      assert.throws(() => extensionSend(sidMul, S.delta, S.seedsE, { ...rs.message, u: rs.message.u.subarray(1) }), DecodeError);
      assert.throws(() => extensionSend(sidMul, S.delta, S.seedsE, { ...rs.message, xTilde: new Uint8Array(17) }), DecodeError);
      assert.throws(() => extensionSend(sidMul, S.delta, S.seedsE, { ...rs.message, vTilde: new Uint8Array(0) }), DecodeError);
    });

    const flipMul = (field: keyof RvoleSenderMessage, byte: number): RvoleSenderMessage => {
      const m = { aTilde: es.message.aTilde.slice(), etaPrime: es.message.etaPrime.slice(), mu: es.message.mu.slice() };
      m[field][byte]! ^= 1;
      return m;
    };

    test('the untampered reply is accepted (finish is repeatable)', () => {
      const d = rvoleReceiverFinish(rs.state, es.message);
      assert.equal(Fn.add(es.c[0]!, d[0]!), Fn.mul(3n, rs.state.chi));
      assert.deepEqual(rvoleReceiverFinish(rs.state, es.message), d);
    });

    test('a flipped low bit in aTilde, etaPrime or mu makes rvoleReceiverFinish throw RvoleCheckError', () => {
      // Flipping bit 0 of the last byte of a scalar keeps it < n unless it was n − 1 (probability 2^-256).
      for (const k of [0, 1, 2, 700, 1535]) assert.throws(() => rvoleReceiverFinish(rs.state, flipMul('aTilde', 32 * k + 31)), RvoleCheckError, `aTilde scalar ${k}`);
      assert.throws(() => rvoleReceiverFinish(rs.state, flipMul('etaPrime', 31)), RvoleCheckError);
      for (const b of [0, 63]) assert.throws(() => rvoleReceiverFinish(rs.state, flipMul('mu', b)), RvoleCheckError);
    });

    test('scalars ≥ n and wrong lengths in the reply are DecodeError', () => {
      const big = { ...es.message, aTilde: es.message.aTilde.slice() };
      big.aTilde.fill(0xff, 32 * 10, 32 * 11);
      assert.throws(() => rvoleReceiverFinish(rs.state, big), DecodeError);
      assert.throws(() => rvoleReceiverFinish(rs.state, { ...es.message, etaPrime: new Uint8Array(32).fill(0xff) }), DecodeError);
      assert.throws(() => rvoleReceiverFinish(rs.state, { ...es.message, aTilde: es.message.aTilde.subarray(32) }), DecodeError);
      assert.throws(() => rvoleReceiverFinish(rs.state, { ...es.message, etaPrime: new Uint8Array(31) }), DecodeError);
      assert.throws(() => rvoleReceiverFinish(rs.state, { ...es.message, mu: es.message.mu.subarray(1) }), DecodeError);
    });
  });
});

describe('presignatures (2-of-3): Σu = r·φ, Σv = sk·φ', () => {
  let shares: Map<number, KeyShare>;
  before(() => {
    shares = keygen(2, 3, { seed: 'algebra-presign' });
  });
  for (const T of [[1, 2], [1, 3], [2, 3]]) {
    test(`T = {${T.join(', ')}}: (Σv / Σu)·R = PK and Σu ≠ 0`, () => {
      const res = runPresign(shares, T);
      assert.equal(res.errors.size, 0);
      assert.equal(res.outputs.size, T.length);
      const pres = T.map((i) => res.outputs.get(i)!);
      const R = pres[0]!.R, PK = pres[0]!.publicKey;
      for (const p of pres) {
        assert.ok(p.R.equals(R));
        assert.ok(p.publicKey.equals(PK));
        assert.equal(hex(p.sigSid), hex(pres[0]!.sigSid));
        assert.deepEqual(p.signers, T);
        assert.equal(p.used, false);
      }
      assert.ok(PK.equals(shares.get(1)!.publicKey));
      const u = pres.reduce((s, p) => Fn.add(s, p.u), 0n);
      const v = pres.reduce((s, p) => Fn.add(s, p.v), 0n);
      assert.notEqual(u, 0n);
      assert.ok(R.multiply(Fn.div(v, u)).equals(PK));
      // and not trivially: the relation fails for a perturbed v
      assert.ok(!R.multiply(Fn.div(Fn.add(v, 1n), u)).equals(PK));
      assert.equal(pres[0]!.rx, Fn.create(R.toAffine().x));
      assert.ok(!R.equals(G));
    });
  }
});
