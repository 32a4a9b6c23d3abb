import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ed25519 } from '@noble/curves/ed25519.js';
import { seededRng } from '../../src/crypto/random.ts';
import { DropError } from '../../src/protocol/errors.ts';
import { EnvelopeType } from '../../src/protocol/messages.ts';
import { MAX_ENVELOPE_BYTES, MAX_PAYLOAD_BYTES, ReplayGuard, openEnvelope, sealEnvelope, type EnvelopeFields, type OpenOptions } from '../../src/net/envelope.ts';

const rng = seededRng('envelope');
const keys = [1, 2, 3].map(() => rng(32));
const pubs = keys.map((k) => ed25519.getPublicKey(k));
const clusterHash = rng(32);
const session = rng(32);
const PROTOCOL = 'dkls23/sign/v1';
/** Any payload up to MAX_PAYLOAD_BYTES for PROTOCOL; no other protocol. */
const anySize = (protocol: string) => (protocol === PROTOCOL ? { max: MAX_PAYLOAD_BYTES, what: `${PROTOCOL} message` } : undefined);
const opts = (self = 2, payloadLimit: OpenOptions['payloadLimit'] = anySize): OpenOptions => ({ clusterHash, self, replay: new ReplayGuard(), publicKeyOf: (i: number) => pubs[i - 1], payloadLimit });
const fields = (over: Partial<EnvelopeFields> = {}): EnvelopeFields => ({ clusterHash, protocol: PROTOCOL, session, from: 1, to: 2, seq: 7, payload: rng(100), ...over });
const dropped = (fn: () => unknown, check: string, culprit?: number, message?: string) =>
  assert.throws(fn, (e: unknown) => e instanceof DropError && e.check === check && e.culprit === culprit && (message === undefined || e.message === message));

test('a sealed envelope opens to the same fields', () => {
  const f = fields();
  const out = openEnvelope(sealEnvelope(f, keys[0]!), opts());
  assert.equal(Buffer.from(out.payload).toString('hex'), Buffer.from(f.payload).toString('hex'));
  assert.equal(out.seq, 7);
  assert.equal(out.from, 1);
});

test('a forged or altered envelope is dropped without a culprit (unauthenticated)', () => {
  const bytes = sealEnvelope(fields(), keys[0]!);
  const altered = new Uint8Array(bytes);
  altered[40]! ^= 1;
  dropped(() => openEnvelope(altered, opts()), 'unexpected-message');
  dropped(() => openEnvelope(sealEnvelope(fields(), keys[2]!), opts()), 'unexpected-message', undefined, 'unexpected-message: bad envelope signature'); // signed by party 3, claims party 1
  dropped(() => openEnvelope(sealEnvelope(fields({ from: 9 }), keys[0]!), opts()), 'unexpected-message', undefined, 'unexpected-message: sender index 9 is not a member of this session');
  dropped(() => openEnvelope(new Uint8Array([1, 2, 3]), opts()), 'decode');
});

test('another cluster, another addressee, or a replay is dropped and names the signed sender', () => {
  dropped(() => openEnvelope(sealEnvelope(fields({ clusterHash: rng(32) }), keys[0]!), opts()), 'session-id', 1);
  dropped(() => openEnvelope(sealEnvelope(fields({ to: 3 }), keys[0]!), opts()), 'unexpected-message', 1);
  const o = opts();
  const bytes = sealEnvelope(fields(), keys[0]!);
  openEnvelope(bytes, o);
  dropped(() => openEnvelope(bytes, o), 'unexpected-message', 1, 'unexpected-message: replayed envelope (party 1)');
  assert.doesNotThrow(() => openEnvelope(sealEnvelope(fields({ seq: 8 }), keys[0]!), o));
});

test('broadcast envelopes (to = 0) open at every member', () => {
  const bytes = sealEnvelope(fields({ to: 0 }), keys[0]!);
  for (const self of [2, 3]) assert.equal(openEnvelope(bytes, opts(self)).to, 0);
});

/** An envelope of exactly `total` bytes (the payload grows until it fits). */
function envelopeOf(total: number): Uint8Array {
  let len = total - 200;
  for (;;) {
    const bytes = sealEnvelope(fields({ payload: new Uint8Array(len) }), keys[0]!);
    if (bytes.length === total) return bytes;
    len += total - bytes.length;
  }
}

test('the envelope size limit: MAX_ENVELOPE_BYTES passes the size check, one byte more is dropped with the exact reason (issue 12, net/envelope.ts)', () => {
  assert.equal(MAX_ENVELOPE_BYTES, 2 * 1024 * 1024 + 1024);
  const over = envelopeOf(MAX_ENVELOPE_BYTES + 1);
  dropped(() => openEnvelope(over, opts()), 'decode', undefined, `decode: envelope of ${MAX_ENVELOPE_BYTES + 1} bytes exceeds the limit of ${MAX_ENVELOPE_BYTES} bytes`);
  // At the limit the envelope is decoded; here its payload (2 MiB + ~850 B) is then over the payload limit.
  const at = envelopeOf(MAX_ENVELOPE_BYTES);
  assert.throws(() => openEnvelope(at, opts()), (e: unknown) => e instanceof DropError && /payload of \d+ bytes exceeds its limit of 2097152 bytes$/.test(e.message));
  const unlimited = opts(2, () => ({ max: MAX_ENVELOPE_BYTES, what: 'any' }));
  assert.equal(openEnvelope(at, unlimited).payload.length > MAX_PAYLOAD_BYTES, true);
});

test('a payload over its limit is dropped before the signature is checked (a forged one says so, not "bad signature")', () => {
  const limit = () => ({ max: 64, what: `${PROTOCOL} signPartial` });
  const forged = sealEnvelope(fields({ payload: new Uint8Array(65) }), keys[2]!); // signed by the wrong key
  dropped(() => openEnvelope(forged, opts(2, limit)), 'decode', undefined, `decode: ${PROTOCOL} signPartial payload of 65 bytes exceeds its limit of 64 bytes`);
  assert.doesNotThrow(() => openEnvelope(sealEnvelope(fields({ payload: new Uint8Array(64) }), keys[0]!), opts(2, limit)));
  dropped(() => openEnvelope(sealEnvelope(fields({ protocol: 'x/y' }), keys[0]!), opts()), 'unexpected-message', undefined, 'unexpected-message: protocol "x/y" is not spoken here');
});

test('replay windows: within the window a replay is refused; after eviction the floor still refuses it; an unseen frame above the floor is accepted', () => {
  let now = 1_000_000;
  const replay = new ReplayGuard({ ttlMs: 10_000, perSender: 1000, now: () => now });
  const o = { ...opts(), replay };
  const first = sealEnvelope(fields({ seq: 100 }), keys[0]!);
  openEnvelope(first, o);
  dropped(() => openEnvelope(first, o), 'unexpected-message', 1, 'unexpected-message: replayed envelope (party 1)');
  now += 10_001; // seq 100 leaves the window at the next arrival from member 1
  openEnvelope(sealEnvelope(fields({ seq: 101 }), keys[0]!), o);
  dropped(() => openEnvelope(first, o), 'unexpected-message', 1, "unexpected-message: envelope seq 100 is at or below the replay window's floor 100 (party 1)");
  assert.doesNotThrow(() => openEnvelope(sealEnvelope(fields({ seq: 150 }), keys[0]!), o));
});

test('a non-canonical envelope (an unknown field after the signature) is dropped before its signature is checked', () => {
  const bytes = sealEnvelope(fields(), keys[0]!);
  const extended = new Uint8Array([...bytes, 0x50, 0x01]); // field 10, varint 1
  dropped(() => openEnvelope(extended, opts()), 'decode', undefined, 'decode: envelope: non-canonical encoding or unknown fields');
});

test('another envelope version is dropped before anything else is looked at', () => {
  const m = EnvelopeType.decode(sealEnvelope(fields(), keys[0]!));
  const v2 = EnvelopeType.encode(EnvelopeType.create({ ...EnvelopeType.toObject(m), version: 2 })).finish();
  dropped(() => openEnvelope(v2, opts()), 'decode', undefined, 'decode: unsupported envelope version 2');
});
