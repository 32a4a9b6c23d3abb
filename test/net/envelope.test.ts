import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ed25519 } from '@noble/curves/ed25519.js';
import { seededRng } from '../../src/crypto/random.ts';
import { DropError } from '../../src/protocol/errors.ts';
import { ReplayGuard, openEnvelope, sealEnvelope, type EnvelopeFields } from '../../src/net/envelope.ts';

const rng = seededRng('envelope');
const keys = [1, 2, 3].map(() => rng(32));
const pubs = keys.map((k) => ed25519.getPublicKey(k));
const clusterHash = rng(32);
const session = rng(32);
const opts = (self = 2) => ({ clusterHash, self, replay: new ReplayGuard(), publicKeyOf: (i: number) => pubs[i - 1] });
const fields = (over: Partial<EnvelopeFields> = {}): EnvelopeFields => ({ clusterHash, protocol: 'dkls23/sign/v1', session, from: 1, to: 2, seq: 7, payload: rng(100), ...over });
const dropped = (fn: () => unknown, check: string, culprit?: number) =>
  assert.throws(fn, (e: unknown) => e instanceof DropError && e.check === check && e.culprit === culprit);

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
  dropped(() => openEnvelope(sealEnvelope(fields(), keys[2]!), opts()), 'unexpected-message'); // signed by party 3, claims party 1
  dropped(() => openEnvelope(sealEnvelope(fields({ from: 9 }), keys[0]!), opts()), 'unexpected-message'); // not a member
  dropped(() => openEnvelope(new Uint8Array([1, 2, 3]), opts()), 'decode');
});

test('another cluster, another addressee, or a replay is dropped and names the signed sender', () => {
  dropped(() => openEnvelope(sealEnvelope(fields({ clusterHash: rng(32) }), keys[0]!), opts()), 'session-id', 1);
  dropped(() => openEnvelope(sealEnvelope(fields({ to: 3 }), keys[0]!), opts()), 'unexpected-message', 1);
  const o = opts();
  const bytes = sealEnvelope(fields(), keys[0]!);
  openEnvelope(bytes, o);
  dropped(() => openEnvelope(bytes, o), 'unexpected-message', 1);
  assert.doesNotThrow(() => openEnvelope(sealEnvelope(fields({ seq: 8 }), keys[0]!), o));
  o.replay.forget(session);
  assert.doesNotThrow(() => openEnvelope(bytes, o)); // a forgotten session accepts again (the session layer refuses finished sessions)
});

test('broadcast envelopes (to = 0) open at every member', () => {
  const bytes = sealEnvelope(fields({ to: 0 }), keys[0]!);
  for (const self of [2, 3]) assert.equal(openEnvelope(bytes, opts(self)).to, 0);
});
