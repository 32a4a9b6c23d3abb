import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import protobuf from 'protobufjs/light.js';
import { DecodeError } from '../../src/crypto/errors.ts';
import { seededRng, type Rng } from '../../src/crypto/random.ts';
import { pointFromBytes, pointOrIdentityFromBytes, scalarFromBytes, N, bytesToBigInt } from '../../src/crypto/scalar-point.ts';
import { decodeSchnorr, encodeSchnorr } from '../../src/crypto/schnorr.ts';
import { ProtocolMessageType, decodeBody, encodeBody, type Body, type BodyCase } from '../../src/protocol/messages.ts';
import { decodeKeyShare, encodeKeyShare, type KeyShare } from '../../src/protocol/key-share.ts';
import { keygen } from '../../src/sim/simulator.ts';
import { decodeControl, encodeControl, type CeremonyAck, type Control, type SignProposal } from '../../src/peer/control.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** Small deterministic integer source on top of the seeded ChaCha RNG (fast: one 4 KiB refill at a time). */
function prng(seed: string) {
  const rng: Rng = seededRng(seed);
  let buf = rng(4096), pos = 0;
  const byte = () => {
    if (pos === buf.length) { buf = rng(4096); pos = 0; }
    return buf[pos++]!;
  };
  const int = (max: number) => { // uniform-ish in [0, max)
    const x = (byte() << 24 | byte() << 16 | byte() << 8 | byte()) >>> 0;
    return x % max;
  };
  const bytes = (len: number) => { const b = new Uint8Array(len); for (let i = 0; i < len; i++) b[i] = byte(); return b; };
  return { byte, int, bytes };
}
type P = ReturnType<typeof prng>;

/** Concatenation without spreading (the key share is ~70 KB). */
function cat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, q) => n + q.length, 0));
  let at = 0;
  for (const q of parts) { out.set(q, at); at += q.length; }
  return out;
}

/** Apply 1..3 random edits: flip, overwrite run, insert, delete, truncate, extend. */
function mutate(p: P, src: Uint8Array, focus?: () => number): Uint8Array {
  let b = src.slice();
  const edits = 1 + p.int(3);
  const pos = (len: number) => (focus && len > 0 ? Math.min(len - 1, focus()) : p.int(Math.max(1, len)));
  for (let e = 0; e < edits; e++) {
    switch (p.int(7)) {
      case 0: if (b.length) b[pos(b.length)]! ^= 1 << p.int(8); break;
      case 1: if (b.length) b[pos(b.length)] = p.byte(); break;
      case 2: { const at = pos(b.length), run = 1 + p.int(8); for (let k = 0; k < run && at + k < b.length; k++) b[at + k] = p.byte(); break; }
      case 3: { const at = pos(b.length + 1); b = cat(b.subarray(0, at), p.bytes(1 + p.int(4)), b.subarray(at)); break; }
      case 4: if (b.length) { const at = pos(b.length), n = 1 + p.int(4); b = cat(b.subarray(0, at), b.subarray(at + n)); } break;
      case 5: b = b.slice(0, p.int(b.length + 1)); break;
      default: b = cat(b, p.bytes(1 + p.int(6))); break;
    }
  }
  return b;
}

/** Only DecodeError may escape; a successful decode must re-encode to exactly the input (strict decoding). */
function expectDecodeErrorOrCanonical(bytes: Uint8Array, decode: (b: Uint8Array) => unknown, reencode?: (v: never) => Uint8Array): 'ok' | 'rejected' {
  let v: unknown;
  try {
    v = decode(bytes);
  } catch (e) {
    if (!(e instanceof DecodeError)) assert.fail(`non-DecodeError ${(e as Error)?.name}: ${(e as Error)?.message} on input ${hex(bytes.subarray(0, 120))}`);
    return 'rejected';
  }
  if (reencode) assert.equal(hex(reencode(v as never)), hex(bytes), 'accepted bytes do not re-encode to themselves');
  return 'ok';
}

const cases = ProtocolMessageType.oneofs['body']!.fieldsArray.map((f) => f.name as BodyCase);
function randomBody(p: P): Body {
  const which = cases[p.int(cases.length)]!;
  const type = ProtocolMessageType.fields[which]!.resolvedType as protobuf.Type;
  const value: Record<string, Uint8Array> = {};
  for (const f of type.fieldsArray) {
    assert.equal(f.type, 'bytes');
    value[f.name] = p.bytes([0, 1, 32, 33, 64, 65, 130][p.int(7)]! + (p.int(4) === 0 ? p.int(200) : 0));
  }
  return { case: which, value } as unknown as Body;
}

describe('decodeBody (protocol messages)', () => {
  test('every body kind round-trips through encodeBody / decodeBody', () => {
    assert.deepEqual(cases, ['keygenCommit', 'keygenReveal', 'baseOtChoice', 'keygenShare', 'keygenConfirm', 'signCommit', 'signExtension', 'signMultiply', 'signPartial', 'pairSetupNonce', 'pairSetupReply']);
    const p = prng('fuzz/roundtrip');
    for (let k = 0; k < 500; k++) {
      const body = randomBody(p);
      const bytes = encodeBody(body);
      const back = decodeBody(bytes);
      assert.equal(back.case, body.case);
      const type = ProtocolMessageType.fields[body.case]!.resolvedType as protobuf.Type;
      for (const f of type.fieldsArray) {
        const got = (back.value as unknown as Record<string, Uint8Array>)[f.name]!;
        assert.ok(got instanceof Uint8Array);
        assert.equal(hex(got), hex((body.value as unknown as Record<string, Uint8Array>)[f.name]!), `${body.case}.${f.name}`);
      }
      assert.equal(hex(encodeBody(back)), hex(bytes));
    }
  });

  test('fixed malformed inputs are DecodeError', () => {
    for (const b of [[], [0x0a, 0x00], [0xff], [0x0a], [0x0a, 0x05, 0x0a], [0x08, 0x01], [0x0a, 0x80, 0x00], [0x7a, 0x00]]) {
      expectDecodeErrorOrCanonical(Uint8Array.from(b), decodeBody, encodeBody);
    }
    assert.throws(() => decodeBody(new Uint8Array(0)), DecodeError); // no body
    assert.throws(() => decodeBody(Uint8Array.of(0x0a, 0x80, 0x00)), DecodeError); // non-minimal varint length
    assert.throws(() => decodeBody(Uint8Array.of(0x0a, 0x02, 0x0a)), DecodeError); // truncated
    // two bodies (oneof set twice) is not canonical
    const one = encodeBody({ case: 'signPartial', value: { sessionId: new Uint8Array(1), digest: new Uint8Array(0), u: new Uint8Array(0), w: new Uint8Array(0) } });
    const two = encodeBody({ case: 'signCommit', value: { instanceId: new Uint8Array(1), sessionNonce: new Uint8Array(0), commitment: new Uint8Array(0) } });
    assert.throws(() => decodeBody(Uint8Array.from([...one, ...two])), DecodeError);
    assert.throws(() => decodeBody(Uint8Array.from([...one, ...one])), DecodeError);
  });

  test('10,000 random byte strings (length 0..300): only DecodeError, accepted ones are canonical', () => {
    const p = prng('fuzz/random-body');
    let ok = 0;
    for (let k = 0; k < 10_000; k++) if (expectDecodeErrorOrCanonical(p.bytes(p.int(301)), decodeBody, encodeBody) === 'ok') ok++;
    assert.ok(ok < 10_000);
  });

  test('10,000 mutations of valid messages of every kind: only DecodeError, accepted ones are canonical', () => {
    const p = prng('fuzz/mutate-body');
    const valid = Array.from({ length: 90 }, (_, k) => encodeBody(randomBody(p)));
    let rejected = 0;
    for (let k = 0; k < 10_000; k++) if (expectDecodeErrorOrCanonical(mutate(p, valid[k % valid.length]!), decodeBody, encodeBody) === 'rejected') rejected++;
    assert.ok(rejected > 1000, `only ${rejected} rejected`);
  });
});

describe('decodeKeyShare', () => {
  let bytes: Uint8Array, share: KeyShare;
  before(() => {
    share = keygen(2, 2, { seed: 'fuzz-key-share' }).get(1)!;
    bytes = encodeKeyShare(share);
  });

  test('the real share decodes and re-encodes to itself', () => {
    assert.equal(hex(encodeKeyShare(decodeKeyShare(bytes))), hex(bytes));
  });

  test('every truncation length in the header and near the end, and 200 random ones, is DecodeError', () => {
    const p = prng('fuzz/ks-trunc');
    const lens = [...Array.from({ length: 400 }, (_, k) => k), ...Array.from({ length: 200 }, (_, k) => bytes.length - 1 - k), ...Array.from({ length: 200 }, () => p.int(bytes.length))];
    for (const len of lens) assert.throws(() => decodeKeyShare(bytes.subarray(0, len)), DecodeError, `length ${len}`);
  });

  test('8,000 mutations (biased to the header, field boundaries and the tail): only DecodeError, accepted ones re-encode exactly', () => {
    const p = prng('fuzz/ks-mutate');
    const header = encodeKeyShare({ ...share, pairs: new Map() }).length;
    const seedsStart = header + 4 + 2 + 66; // pairs tag+len, peer, delta
    const focus = () => {
      switch (p.int(5)) {
        case 0: case 1: return p.int(header + 8);
        case 2: return seedsStart - 16 + p.int(32) + (p.int(2) ? 32768 + 4 : 0); // around the two 32 KiB seed fields
        case 3: return Math.max(0, bytes.length - 1 - p.int(120));
        default: return p.int(bytes.length);
      }
    };
    let rejected = 0;
    for (let k = 0; k < 8_000; k++) if (expectDecodeErrorOrCanonical(mutate(p, bytes, focus), decodeKeyShare, encodeKeyShare) === 'rejected') rejected++;
    assert.ok(rejected > 500, `only ${rejected} rejected`);
  });

  test('decodeKeyShare checks the public data\'s internal consistency', () => {
    assert.throws(() => decodeKeyShare(encodeKeyShare({ ...share, secretShare: share.secretShare === N - 1n ? 1n : share.secretShare + 1n })), DecodeError);
    assert.throws(() => decodeKeyShare(encodeKeyShare({ ...share, publicShares: [share.publicShares[1]!, share.publicShares[0]!] })), DecodeError);
    assert.throws(() => decodeKeyShare(encodeKeyShare({ ...share, parties: [share.parties[0]!, share.parties[0]!] })), DecodeError);
    assert.throws(() => decodeKeyShare(encodeKeyShare({ ...share, parties: [new Uint8Array(0), new Uint8Array(0)] })), DecodeError);
  });

  test('2,000 random byte strings are DecodeError (with the 8,000 mutations: 10,000 cases)', () => {
    const p = prng('fuzz/ks-random');
    for (let k = 0; k < 2_000; k++) assert.throws(() => decodeKeyShare(p.bytes(p.int(400))), DecodeError);
  });
});

describe('point / scalar / Schnorr decoders on 10,000 random inputs each', () => {
  test('pointFromBytes and pointOrIdentityFromBytes', () => {
    const p = prng('fuzz/points');
    let ok = 0;
    for (let k = 0; k < 10_000; k++) {
      const len = p.int(4) === 0 ? p.int(70) : 33;
      const b = p.bytes(len);
      if (p.int(2)) b[0] = 2 + p.int(2);
      for (const dec of [pointFromBytes, pointOrIdentityFromBytes]) {
        try {
          const Q = dec(b, 'fuzz');
          assert.equal(len, 33);
          assert.equal(hex(Q.toBytes(true)), hex(b));
          ok++;
        } catch (e) {
          assert.ok(e instanceof DecodeError, String(e));
        }
      }
    }
    assert.ok(ok > 1000);
  });

  test('scalarFromBytes', () => {
    const p = prng('fuzz/scalars');
    for (let k = 0; k < 10_000; k++) {
      const len = p.int(4) === 0 ? p.int(70) : 32;
      const b = p.bytes(len);
      if (p.int(2) && len) b[0] = 0xff; // many ≥ n
      try {
        const x = scalarFromBytes(b, 'fuzz', { nonZero: p.int(2) === 1 });
        assert.equal(len, 32);
        assert.ok(x < N && x === bytesToBigInt(b));
      } catch (e) {
        assert.ok(e instanceof DecodeError, String(e));
        if (len === 32) assert.ok(bytesToBigInt(b) >= N || bytesToBigInt(b) === 0n);
      }
    }
  });

  test('decodeSchnorr: only DecodeError; an accepted 65-byte input re-encodes to itself', () => {
    const p = prng('fuzz/schnorr');
    for (let k = 0; k < 10_000; k++) {
      const len = p.int(4) === 0 ? p.int(80) : 65;
      const b = p.bytes(len);
      if (p.int(2) && len) b[0] = 2 + p.int(2);
      if (p.int(2) && len > 33) b[33] = 0;
      try {
        const proof = decodeSchnorr(b, 'fuzz');
        assert.ok(len >= 65);
        assert.equal(hex(encodeSchnorr(proof)), hex(b.subarray(0, 65)));
      } catch (e) {
        assert.ok(e instanceof DecodeError, String(e));
      }
    }
  });

  test('decodeSchnorr rejects trailing bytes', () => {
    const valid = new Uint8Array(65);
    valid.set(Buffer.from('0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798', 'hex'));
    valid[64] = 1;
    assert.doesNotThrow(() => decodeSchnorr(valid, 'p'));
    assert.throws(() => decodeSchnorr(Uint8Array.of(...valid, 0), 'p'), DecodeError);
  });
});

describe('decodeControl (peer control messages)', () => {
  const valid: Control[] = [
    { case: 'join', value: { kind: 'refresh', keyId: 'batcher', nonce: new Uint8Array(32).fill(1), params: new Uint8Array(32).fill(2) } },
    { case: 'presignProposal', value: { keyId: 'batcher', epoch: 3, signers: [1, 2, 4], owner: 2, nonce: new Uint8Array(32).fill(3) } },
    { case: 'signProposal', value: { keyId: 'batcher', epoch: 0, signers: [2, 3, 5], presignature: new Uint8Array(32).fill(4), digest: new Uint8Array(32).fill(5), request: new Uint8Array(7), certificate: new Uint8Array(9).fill(1) } },
    { case: 'decision', value: { session: new Uint8Array(32).fill(6), accept: false, reason: 'presignature already used', code: '' } },
    { case: 'decision', value: { session: new Uint8Array(32).fill(6), accept: false, reason: 'unknown presignature', code: 'unknown-presignature' } },
    { case: 'approvalRequest', value: { keyId: 'batcher', requestId: new Uint8Array(32).fill(10), request: new Uint8Array(11).fill(3) } },
    { case: 'approval', value: new Uint8Array(200).fill(4) },
    { case: 'checkpoint', value: { note: 'x', previousSize: 3, consistency: [new Uint8Array(32).fill(1)], resetSize: 2, resetRoot: new Uint8Array(32).fill(2) } },
    { case: 'checkpointReply', value: { origin: 'potluck/ab/12D3', size: 5, root: new Uint8Array(32).fill(7), authorSignature: new Uint8Array(64).fill(8), cosignature: new Uint8Array(0), conflict: true } },
    { case: 'checkpointReply', value: { origin: 'potluck/ab/12D3', size: 5, root: new Uint8Array(32).fill(7), authorSignature: new Uint8Array(0), cosignature: new Uint8Array(64).fill(9), conflict: false } },
    { case: 'pairSetupProposal', value: { keyId: 'k', epoch: 1, nonce: new Uint8Array(32).fill(7) } },
    { case: 'ack', value: { kind: 'keygen', keyId: 'k', epoch: 0, dkgSessionId: new Uint8Array(32).fill(8), publicKey: new Uint8Array(33).fill(2), publicSharesHash: new Uint8Array(32).fill(9), echo: new Uint8Array(32).fill(10) } },
  ];
  test('every control kind round-trips exactly', () => {
    for (const c of valid) {
      const back = decodeControl(encodeControl(c));
      assert.equal(back.case, c.case);
      assert.equal(hex(encodeControl(back)), hex(encodeControl(c)));
    }
  });
  test('wrong fixed lengths are DecodeError naming the field', () => {
    assert.throws(() => decodeControl(encodeControl({ case: 'signProposal', value: { ...(valid.find((c) => c.case === 'signProposal')!.value as SignProposal), digest: new Uint8Array(31) } })), (e: unknown) => e instanceof DecodeError && /signProposal\.digest/.test(e.message));
    assert.throws(() => decodeControl(encodeControl({ case: 'ack', value: { ...(valid.find((c) => c.case === 'ack')!.value as CeremonyAck), publicKey: new Uint8Array(32) } })), (e: unknown) => e instanceof DecodeError && /ack\.publicKey/.test(e.message));
    assert.throws(() => decodeControl(encodeControl({ case: 'ack', value: { ...(valid.find((c) => c.case === 'ack')!.value as CeremonyAck), publicSharesHash: new Uint8Array(0) } })), (e: unknown) => e instanceof DecodeError && /ack\.publicSharesHash/.test(e.message));
    assert.throws(() => decodeControl(encodeControl({ case: 'ack', value: { ...(valid.find((c) => c.case === 'ack')!.value as CeremonyAck), echo: new Uint8Array(31) } })), (e: unknown) => e instanceof DecodeError && /ack\.echo/.test(e.message));
    assert.throws(() => decodeControl(new Uint8Array(0)), DecodeError);
  });
  test('10,000 random and mutated byte strings: only DecodeError, accepted ones re-encode exactly', () => {
    const p = prng('fuzz/control');
    const bases = valid.map(encodeControl);
    for (let k = 0; k < 10_000; k++) {
      const bytes = k % 2 ? p.bytes(p.int(200)) : mutate(p, bases[k % bases.length]!);
      try {
        const c = decodeControl(bytes);
        assert.equal(hex(encodeControl(c)), hex(bytes));
      } catch (e) {
        assert.ok(e instanceof DecodeError, `${(e as Error).name}: ${(e as Error).message}`);
      }
    }
  });
});
