import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { systemRng } from '../../src/crypto/random.ts';
import { AbortError, BanPairError } from '../../src/protocol/errors.ts';
import { OnlineSession, PresignSession, combinePartials, createPartial, nonceX, type Presignature } from '../../src/protocol/sign.ts';
import { Fn, N, Point, bytesToBigInt, scalarToBytes } from '../../src/crypto/scalar-point.ts';
import { decodeBody, encodeBody, type SignPartial } from '../../src/protocol/messages.ts';
import type { KeyShare } from '../../src/protocol/key-share.ts';
import type { Tamper } from '../../src/sim/run-machines.ts';
import { keygenRequest, runOnline } from '../../src/sim/simulator.ts';
import { dealingRun, newTranscriptCache, presignRun } from './replay.ts';
import { GENERATOR, IDENTITY, ORDER_N, expectAll, field, flipBit, flipLastBit, replaceAt, scalarPlusOne, truncate, wholeMessage } from './tamper.ts';

// Signing (spec §2.7) with party 2 misbehaving towards honest party 1, signer set {1, 2} of a
// 2-of-3 key. Each test names the spec §4.3 check it exercises and asserts that no signature
// (and, for flights 1–3, no presignature) is produced. Presign runs share their honest prefix
// through the transcript cache (replay.ts).
const cache = newTranscriptCache();
const keygen = (t: number, n: number): Map<number, KeyShare> => {
  const res = dealingRun(cache, `keygen/${t}-of-${n}`, keygenRequest(t, n, 'byz-sign'), new Map());
  assert.equal(res.outputs.size, n);
  assert.equal(res.errors.size, 0);
  return new Map([...res.outputs].map(([i, o]) => [i, o.share!]));
};
let shares: Map<number, KeyShare>;
let shares3: Map<number, KeyShare>;
before(() => {
  shares = keygen(2, 3);
});
const T = [1, 2];
const scopes = new Map<Map<number, KeyShare>, string>();
const scopeOf = (s: Map<number, KeyShare>) => {
  if (!scopes.has(s)) scopes.set(s, `presign/shares-${scopes.size}`);
  return scopes.get(s)!;
};
const presign = (tamper?: Tamper, s = shares, signers = T, request = new Uint8Array([7])) =>
  presignRun(cache, `${scopeOf(s)}/${signers.join(',')}/${Buffer.from(request).toString('hex')}`, s, signers, request, tamper);
/** Flight 4 with the tamper; parties start in index order (so the highest index speaks last). */
const runOnlineInOrder = (presigs: Map<number, Presignature>, tamper?: Tamper) =>
  runOnline(new Map([...presigs].sort(([a], [b]) => a - b)), systemRng(32), tamper ? { tamper } : {});
/** Presign honestly, then run flight 4 with the tamper. */
function online(tamper?: Tamper) {
  const pre = presign();
  assert.equal(pre.errors.size, 0);
  return runOnlineInOrder(pre.outputs, tamper);
}

describe('§4.3.1 strict decoding (signing)', () => {
  test('garbage instead of flight 1: ABORT decode', () => {
    expectAll(presign(wholeMessage(2, 'signCommit', () => systemRng(40))), [1], AbortError, 'decode', 2);
  });
  test('commitment of 31 bytes: ABORT decode', () => {
    expectAll(presign(field(2, 'signCommit', 'commitment', truncate(1))), [1], AbortError, 'decode', 2);
  });
  test('OT-extension u one byte short: ABORT decode', () => {
    expectAll(presign(field(2, 'signExtension', 'u', truncate(1))), [1], AbortError, 'decode', 2);
  });
  test('R_j is the identity: ABORT decode', () => {
    expectAll(presign(field(2, 'signMultiply', 'bigR', () => IDENTITY)), [1], AbortError, 'decode', 2);
  });
  test('pk_j is the identity: ABORT decode', () => {
    expectAll(presign(field(2, 'signMultiply', 'pk', () => IDENTITY)), [1], AbortError, 'decode', 2);
  });
  test('ψ ≥ n: ABORT decode', () => {
    expectAll(presign(field(2, 'signMultiply', 'psi', () => ORDER_N)), [1], AbortError, 'decode', 2);
  });
  test('an ã entry ≥ n: ABORT decode', () => {
    expectAll(presign(field(2, 'signMultiply', 'aTilde', replaceAt(0, ORDER_N))), [1], AbortError, 'decode', 2);
  });
  test('ã with one scalar missing: ABORT decode', () => {
    expectAll(presign(field(2, 'signMultiply', 'aTilde', truncate(32))), [1], AbortError, 'decode', 2);
  });
  test('u_i ≥ n in flight 4: ABORT decode', () => {
    expectAll(online(field(2, 'signPartial', 'u', () => ORDER_N)), [1], AbortError, 'decode', 2);
  });
});

describe('§4.3.2 signer set checks, before anything is sent', () => {
  const refused = (signers: number[], check: string, reason: string, burned?: Set<number>) =>
    assert.throws(() => new PresignSession(shares.get(1)!, { signers, request: new Uint8Array(0), ...(burned ? { burned } : {}) }),
      (e: unknown) => e instanceof AbortError && e.check === check && e.message.includes(reason));
  test('|T| ≠ t: signer-set', () => refused([1, 2, 3], 'signer-set', 'signer set has 3 parties, the key needs exactly 2'));
  test('index outside 1..n: party-index', () => refused([1, 4], 'party-index', 'signer indices must be in 1..3'));
  test('duplicate signer: signer-set', () => refused([1, 1], 'signer-set', 'signer set must be ascending without duplicates'));
  test('this party not in T: signer-set', () => refused([2, 3], 'signer-set', 'this party is not in the signer set'));
  test('a burned pair: burned-pair', () => refused([1, 2], 'burned-pair', 'the pair with party 2 is burned', new Set([2])));
});

describe('§4.3.3 commit-then-reveal of R_j', () => {
  test('R_j replaced by another valid point: ABORT commitment', () => {
    expectAll(presign(field(2, 'signMultiply', 'bigR', () => GENERATOR)), [1], AbortError, 'commitment', 2);
  });
  test('blind flipped: ABORT commitment', () => {
    expectAll(presign(field(2, 'signMultiply', 'blind', flipBit(3))), [1], AbortError, 'commitment', 2);
  });
});

describe('§4.3.5 Σ pk_j = PK', () => {
  test('a signer with a corrupted share (consistent RVOLE input): ABORT pk-sum, unattributable', () => {
    const bad = new Map(shares);
    const s2 = shares.get(2)!;
    bad.set(2, { ...s2, secretShare: (s2.secretShare + 1n) % (2n ** 256n) });
    expectAll(presign(undefined, bad), [1], AbortError, 'pk-sum', undefined);
  });
});

describe('§4.3.6/§4.3.7/§4.3.8 session binding, replay, echo', () => {
  test('wrong instance id in flight 1: ABORT session-id', () => {
    expectAll(presign(field(2, 'signCommit', 'instanceId', flipBit(0))), [1], AbortError, 'session-id', 2);
  });
  test('wrong sigSid in flight 2: ABORT session-id (before any OT check)', () => {
    expectAll(presign(field(2, 'signExtension', 'sessionId', flipBit(0))), [1], AbortError, 'session-id', 2);
  });
  test('wrong sigSid in flight 3: ABORT session-id', () => {
    expectAll(presign(field(2, 'signMultiply', 'sessionId', flipBit(0))), [1], AbortError, 'session-id', 2);
  });
  test('wrong sigSid in flight 4: ABORT session-id', () => {
    expectAll(online(field(2, 'signPartial', 'sessionId', flipBit(0))), [1], AbortError, 'session-id', 2);
  });
  test('flight 4 for another digest: ABORT session-id', () => {
    expectAll(online(field(2, 'signPartial', 'digest', flipBit(0))), [1], AbortError, 'session-id', 2);
  });
  test('replay of a flight-1 message from another signing session: ABORT session-id', () => {
    let old: Uint8Array | undefined;
    presign((from, msg, rs) => { if (from === 2 && msg.to === null) old = msg.bytes; return rs.map((to) => ({ to, bytes: msg.bytes, broadcast: msg.to === null })); }, shares, T, new Uint8Array([1]));
    const res = presign(wholeMessage(2, 'signCommit', () => old!), shares, T, new Uint8Array([2]));
    expectAll(res, [1], AbortError, 'session-id', 2);
  });
  test('wrong flight-1 echo in flight 2: ABORT echo', () => {
    expectAll(presign(field(2, 'signExtension', 'echo', flipBit(0))), [1], AbortError, 'echo', undefined);
  });
  test('wrong dig1 echo in flight 3: ABORT echo', () => {
    expectAll(presign(field(2, 'signMultiply', 'echo', flipBit(0))), [1], AbortError, 'echo', undefined);
  });
  test('equivocation on flight 1 (3-of-3): ABORT echo at both honest parties, nobody wrongly blamed', () => {
    // The 2-of-3 shares lie on a line, so all three of them are also a valid sharing with
    // threshold 3: the same key signs with T = {1, 2, 3} without a second DKG.
    shares3 ??= new Map([...shares].map(([i, s]) => [i, { ...s, threshold: 3 }]));
    const res = presign(field(3, 'signCommit', 'sessionNonce', flipBit(0), 1), shares3, [1, 2, 3]);
    expectAll(res, [1, 2], AbortError, 'echo', undefined);
  });
});

describe('§4.3.9 OT / RVOLE consistency: BAN_PAIR naming the culprit', () => {
  for (const name of ['u', 'vTilde', 'xTilde'] as const)
    test(`extension ${name} bit flipped: BAN_PAIR softspoken-check`, () => {
      expectAll(presign(field(2, 'signExtension', name, flipBit(9))), [1], BanPairError, 'softspoken-check', 2);
    });
  test('ã entry changed (still < n): BAN_PAIR rvole-mu', () => {
    expectAll(presign(field(2, 'signMultiply', 'aTilde', flipLastBit)), [1], BanPairError, 'rvole-mu', 2);
  });
  test('μ changed: BAN_PAIR rvole-mu', () => {
    expectAll(presign(field(2, 'signMultiply', 'mu', flipBit(0))), [1], BanPairError, 'rvole-mu', 2);
  });
  test("η' changed: BAN_PAIR rvole-mu", () => {
    expectAll(presign(field(2, 'signMultiply', 'etaPrime', scalarPlusOne)), [1], BanPairError, 'rvole-mu', 2);
  });
  test('wrong Γ^u: BAN_PAIR gamma-u', () => {
    expectAll(presign(field(2, 'signMultiply', 'gammaU', () => GENERATOR)), [1], BanPairError, 'gamma-u', 2);
  });
  test('wrong Γ^v: BAN_PAIR gamma-v', () => {
    expectAll(presign(field(2, 'signMultiply', 'gammaV', () => GENERATOR)), [1], BanPairError, 'gamma-v', 2);
  });
  test('pk_j replaced by another valid point: BAN_PAIR gamma-v (χ·pk_j no longer matches)', () => {
    expectAll(presign(field(2, 'signMultiply', 'pk', () => GENERATOR)), [1], BanPairError, 'gamma-v', 2);
  });
});

describe('§4.3.10 final verification before release', () => {
  test('ψ + 1 passes presigning but the combined signature fails: ABORT final-signature, no signature', () => {
    const pre = presign(field(2, 'signMultiply', 'psi', scalarPlusOne));
    assert.equal(pre.errors.size, 0);
    const res = runOnline(pre.outputs, systemRng(32));
    expectAll(res, [1, 2], AbortError, 'final-signature', undefined, 'combined signature does not verify');
  });
  test('u_i + 1 in flight 4: ABORT final-signature', () => {
    expectAll(online(field(2, 'signPartial', 'u', scalarPlusOne)), [1], AbortError, 'final-signature', undefined, 'combined signature does not verify');
  });
  test('w_i + 1 in flight 4: ABORT final-signature', () => {
    expectAll(online(field(2, 'signPartial', 'w', scalarPlusOne)), [1], AbortError, 'final-signature', undefined, 'combined signature does not verify');
  });
});

describe('§4.3.10 Σu = 0 and s = 0: a co-signer that waits for the others\' flight-4 values', () => {
  /** Party `cheater` (started last) rewrites its partial to minus the sum of the others'. */
  const lastWord = (cheater: number, name: 'u' | 'w'): Tamper => {
    const seen = new Map<number, bigint>();
    return (from, msg, recipients) => {
      const body = decodeBody(msg.bytes);
      if (body.case !== 'signPartial') return recipients.map((to) => ({ to, bytes: msg.bytes, broadcast: msg.to === null }));
      const value = body.value as SignPartial;
      if (from !== cheater) {
        seen.set(from, bytesToBigInt(value[name]));
        return recipients.map((to) => ({ to, bytes: msg.bytes, broadcast: true }));
      }
      const minusSum = Fn.neg([...seen.values()].reduce((a, b) => Fn.add(a, b), 0n));
      return recipients.map((to) => ({ to, bytes: encodeBody({ case: 'signPartial', value: { ...value, [name]: scalarToBytes(minusSum) } }), broadcast: true }));
    };
  };
  test('two signers, u_2 = −u_1: ABORT final-signature "Σu = 0" naming party 2', () => {
    expectAll(online(lastWord(2, 'u')), [1], AbortError, 'final-signature', 2, 'Σu = 0');
  });
  test('two signers, w_2 = −w_1: ABORT final-signature "s = 0" naming party 2', () => {
    expectAll(online(lastWord(2, 'w')), [1], AbortError, 'final-signature', 2, 's = 0');
  });
  test('three signers, u_3 = −(u_1 + u_2): ABORT final-signature "Σu = 0", not attributable (any of the others could be last)', () => {
    shares3 ??= new Map([...shares].map(([i, s]) => [i, { ...s, threshold: 3 }]));
    const pre = presign(undefined, shares3, [1, 2, 3]);
    assert.equal(pre.errors.size, 0);
    expectAll(runOnlineInOrder(pre.outputs, lastWord(3, 'u')), [1, 2], AbortError, 'final-signature', undefined, 'Σu = 0');
  });
});

describe('§4.3.10 checks that no message can reach: values injected directly', () => {
  const nonceError = (R: Point, reason: string) =>
    assert.throws(() => nonceX(R), (e: unknown) => e instanceof AbortError && e.check === 'nonce-point' && e.culprit === undefined && e.message.includes(reason));
  test('R = O: ABORT nonce-point', () => nonceError(Point.ZERO, 'R is the identity'));
  test('R.x = n (on the curve; r_x would be 0) and R.x = n + 2: ABORT nonce-point "R.x ≥ n"', () => {
    for (const k of [0n, 2n]) nonceError(Point.fromBytes(new Uint8Array([2, ...scalarToBytes(N + k)])), 'R.x ≥ n');
  });
  test('r_x = 0 cannot be built: x = 0 is not on secp256k1 (7 is not a square mod p), x = n is refused first', () => {
    assert.throws(() => Point.fromBytes(new Uint8Array([2, ...new Uint8Array(32)])));
    assert.throws(() => Point.fromBytes(new Uint8Array([3, ...new Uint8Array(32)])));
    const Fp = Point.Fp;
    assert.notEqual(Fp.pow(7n, (Fp.ORDER - 1n) / 2n), 1n);
  });
  test('an honest R passes: r_x = R.x', () => {
    const p = presign().outputs.get(1)!;
    assert.equal(nonceX(p.R), p.R.toAffine().x);
  });
  test('a presignature whose R is replaced by −R (wrong y-parity): the signature verifies but recovers another key: ABORT final-signature', () => {
    const pre = presign();
    const digest = new Uint8Array(32).fill(9);
    const partials = new Map([...pre.outputs].map(([i, p]) => {
      const v = decodeBody(createPartial(p, digest).bytes).value as SignPartial;
      return [i, { u: bytesToBigInt(v.u), w: bytesToBigInt(v.w) }];
    }));
    const p1 = pre.outputs.get(1)!;
    assert.equal(combinePartials(p1, digest, partials).r, p1.rx); // the honest presignature signs
    assert.throws(() => combinePartials({ ...p1, R: p1.R.negate() }, digest, partials),
      (e: unknown) => e instanceof AbortError && e.check === 'final-signature' && e.message.includes('recovered key differs'));
  });
  test('local input: a digest of 31 bytes, a missing partial: ABORT bad-input', () => {
    const pre = presign();
    const p1 = pre.outputs.get(1)!;
    assert.throws(() => createPartial(p1, new Uint8Array(31)), (e: unknown) => e instanceof AbortError && e.check === 'bad-input' && e.message.includes('digest must be 32 bytes'));
    assert.equal(p1.used, false);
    assert.throws(() => combinePartials(p1, new Uint8Array(32), new Map([[1, { u: 1n, w: 1n }]])),
      (e: unknown) => e instanceof AbortError && e.check === 'bad-input' && e.message.includes('missing partial signature of party 2'));
  });
});

describe('§4.3.12 presignature single use', () => {
  test('a presignature signs once; a second digest is refused and nothing is produced', () => {
    const pre = presign();
    const p1 = pre.outputs.get(1)! as Presignature;
    assert.equal(p1.used, false);
    const first = createPartial(p1, systemRng(32));
    assert.ok(first.bytes.length > 0);
    assert.equal(p1.used, true);
    assert.throws(() => createPartial(p1, systemRng(32)), (e: unknown) => e instanceof AbortError && e.check === 'presignature-used');
    assert.throws(() => new OnlineSession(p1, systemRng(32)), (e: unknown) => e instanceof AbortError && e.check === 'presignature-used');
  });
});
