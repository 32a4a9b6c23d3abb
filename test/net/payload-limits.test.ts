import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ed25519 } from '@noble/curves/ed25519.js';
import { seededRng } from '../../src/crypto/random.ts';
import { ReplayGuard, openEnvelope, sealEnvelope } from '../../src/net/envelope.ts';
import { PROTOCOL_KINDS, maxBodyBytes, peekOneofCase, protocolPayloadLimit, type SessionShape } from '../../src/net/payload-limits.ts';
import { DropError } from '../../src/protocol/errors.ts';
import { ProtocolMessageType, encodeBody, type BodyCase } from '../../src/protocol/messages.ts';

/**
 * One test per payload limit (issue 11): each kind's limit equals its field lengths as
 * proto/potluck.proto documents them, counted here independently with protobuf's framing, and
 * an envelope one byte over is dropped before its signature with the exact reason.
 */
const varint = (n: number) => (n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x20_0000 ? 3 : 4);
/** Bytes of a length-delimited field (tag < 16 takes 1 byte, < 2048 two). */
const field = (no: number, len: number) => (len === 0 ? 0 : (no < 16 ? 1 : 2) + varint(len) + len);
/** A ProtocolMessage whose body (oneof field `no`) holds fields of these lengths (field k+1 = lens[k]). */
const message = (no: number, lens: number[]) => field(no, lens.reduce((a, l, k) => a + field(k + 1, l), 0));

const S = 65; // Schnorr proof: 33-byte point + 32-byte scalar
/** OldPublicData at its longest: key id 64 B, epoch and threshold 5-byte varints, PK 33 B, n_old × 33 B. */
const oldPublic = (nOld: number) => field(1, 64) + 2 * (1 + 5) + field(4, 33) + field(5, 33 * nOld);

const expected = (s: SessionShape): Record<BodyCase, number> => ({
  keygenCommit: message(1, [32, 32, 32]),
  keygenReveal: message(2, [32, 32, 33 * s.threshold, 32, S * s.threshold, oldPublic(s.oldParties)]),
  baseOtChoice: message(3, [32, 256 * 2 * 33]),
  keygenShare: message(4, [32, 32, 32, 256 * 2 * 33, 64 * 320, 32]),
  keygenConfirm: message(5, [32, 32, 33, 33, S]),
  signCommit: message(10, [32, 32, 32]),
  signExtension: message(11, [32, 64 * 80, 16, 256 * 16, 32]),
  signMultiply: message(12, [32, 32, 512 * 3 * 32, 32, 64, 33, 33, 32, 33, 33, 32]),
  signPartial: message(13, [32, 32, 32, 32]),
  pairSetupNonce: message(20, [32, 32]),
  pairSetupReply: message(21, [32, 256 * 2 * 33, 64 * 320, 32]),
});

const shapes: SessionShape[] = [{ parties: 2, threshold: 2, oldParties: 2 }, { parties: 3, threshold: 2, oldParties: 3 }, { parties: 16, threshold: 11, oldParties: 16 }];
const kinds = [...new Set(Object.values(PROTOCOL_KINDS).flat())];

for (const kind of kinds)
  test(`${kind}: the limit is its exact length for every session shape`, () => {
    for (const s of shapes) assert.equal(maxBodyBytes(kind, s), expected(s)[kind], JSON.stringify(s));
  });

test('the limits at n = t = n_old = 3, as docs/security.md lists them', () => {
  const s = { parties: 3, threshold: 3, oldParties: 3 };
  assert.deepEqual(Object.fromEntries(kinds.map((k) => [k, maxBodyBytes(k, s)])), {
    keygenCommit: 104, keygenReveal: 621, baseOtChoice: 16_938, keygenShare: 37_524, keygenConfirm: 208,
    signCommit: 104, signExtension: 9311, signMultiply: 49_536, signPartial: 139, pairSetupNonce: 71, pairSetupReply: 37_457,
  });
});

test('the kind is read from the first field tag, without decoding', () => {
  for (const kind of kinds) assert.equal(peekOneofCase(ProtocolMessageType.fieldsById, encodeBody({ case: kind, value: {} } as never)), kind);
  assert.equal(peekOneofCase(ProtocolMessageType.fieldsById, new Uint8Array([0xa2, 0x01, 0x00])), 'pairSetupNonce'); // field 20, two-byte tag
  assert.equal(peekOneofCase(ProtocolMessageType.fieldsById, new Uint8Array([0x62, 0x00])), 'signMultiply');
  assert.equal(peekOneofCase(ProtocolMessageType.fieldsById, new Uint8Array([0x60, 0x00])), undefined); // varint wire type
  assert.equal(peekOneofCase(ProtocolMessageType.fieldsById, new Uint8Array([0x7a, 0x00])), undefined); // field 15: none
  // A kind the protocol does not use is held to the protocol's largest (its machine aborts on it, with evidence).
  const shape = shapes[1]!;
  assert.deepEqual(protocolPayloadLimit('dkls23/online/v1', new Uint8Array([0x62]), shape), { max: 139, what: 'dkls23/online/v1 message' });
  assert.equal(protocolPayloadLimit('dkls23/sign/v2', new Uint8Array([0x6a]), shape), undefined);
});

const rng = seededRng('payload-limits');
const sender = rng(32);
const pk = ed25519.getPublicKey(sender);
const clusterHash = rng(32);

for (const [protocol, ks] of Object.entries(PROTOCOL_KINDS))
  test(`${protocol}: one byte over its kind's limit is dropped before the signature, at the limit it is checked`, () => {
    const shape = shapes[1]!;
    const open = (payload: Uint8Array, key: Uint8Array) =>
      openEnvelope(sealEnvelope({ clusterHash, protocol, session: rng(32), from: 1, to: 2, seq: 1, payload }, key), {
        clusterHash, self: 2, replay: new ReplayGuard(), publicKeyOf: () => pk, payloadLimit: (p, _s, payload) => protocolPayloadLimit(p, payload, shape),
      });
    for (const kind of ks) {
      const max = maxBodyBytes(kind, shape);
      const fieldNo = ProtocolMessageType.fields[kind]!.id;
      // Body field tag + length, then filler: the size check reads only the tag.
      const payloadOf = (len: number) => {
        const head = [...(fieldNo < 16 ? [(fieldNo << 3) | 2] : [((fieldNo << 3) | 2) & 0x7f | 0x80, (fieldNo << 3) >> 7])];
        const out = new Uint8Array(len);
        out.set(head);
        return out;
      };
      assert.throws(() => open(payloadOf(max + 1), rng(32)), (e: unknown) => e instanceof DropError && e.message === `decode: ${protocol} ${kind} payload of ${max + 1} bytes exceeds its limit of ${max} bytes`);
      // At the limit the size check passes: a forged signature is what fails next.
      assert.throws(() => open(payloadOf(max), rng(32)), (e: unknown) => e instanceof DropError && e.message === 'unexpected-message: bad envelope signature');
    }
  });
