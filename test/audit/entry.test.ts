import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { DecodeError } from '../../src/crypto/errors.ts';
import {
  AUDIT_ENTRY_LABEL, AuditError, PUBLIC_KINDS, ZERO_HASH, auditMessageOf, decodeAuditEntry, decodeSignedEntry, encodeAuditEntry, encodeSignedEntry,
  entryLeafHash, entrySigningMessage, sessionEndOf, signEntry, verifyEntry, type AuditEntryInput,
} from '../../src/audit/entry.ts';
import { leafHash } from '../../src/audit/merkle.ts';
import { AuditEntryType } from '../../src/protocol/messages.ts';
import { encodeBody } from '../../src/protocol/messages.ts';
import { AbortError, BanPairError } from '../../src/protocol/errors.ts';

let key: PrivateKey;
let seed: Uint8Array;
let peerId: string;
const clusterHash = sha256(new TextEncoder().encode('cluster'));
before(async () => {
  seed = sha256(new TextEncoder().encode('entry-test'));
  key = await generateKeyPairFromSeed('Ed25519', seed);
  peerId = peerIdFromPrivateKey(key).toString();
});

const fields = (over: Partial<AuditEntryInput> = {}): AuditEntryInput => ({
  clusterHash, peerId, seq: 7, prev: new Uint8Array(32).fill(3), time: '2025-01-01T00:00:00.000Z',
  record: { case: 'verdict', value: { session: new Uint8Array(32).fill(1), digest: new Uint8Array(32).fill(2), approve: true, reasons: [{ rule: 'chain-id', ok: true, detail: 'chainId 900 allowed' }, { rule: 'gas-cap', ok: false, detail: '' }], policySha256: new Uint8Array(32) } },
  ...over,
});

test('encode/decode round trip fills defaults and keeps every field', () => {
  const e = decodeAuditEntry(encodeAuditEntry(fields()));
  assert.equal(e.version, 1);
  assert.equal(e.seq, 7);
  assert.equal(e.peerId, peerId);
  assert.equal(e.record.case, 'verdict');
  const v = e.record.value as { approve: boolean; reasons: { rule: string; ok: boolean; detail: string }[]; request: Uint8Array };
  assert.equal(v.approve, true);
  assert.deepEqual(v.reasons, [{ rule: 'chain-id', ok: true, detail: 'chainId 900 allowed' }, { rule: 'gas-cap', ok: false, detail: '' }]);
  assert.deepEqual(v.request, new Uint8Array(0));
  const big = decodeAuditEntry(encodeAuditEntry(fields({ seq: 2 ** 40, record: { case: 'cosignature', value: { origin: 'o', size: 2 ** 45, root: new Uint8Array(32) } } })));
  assert.equal(big.seq, 2 ** 40);
  assert.equal((big.record.value as { size: number }).size, 2 ** 45);
  // Every record case survives the round trip.
  for (const c of ['policy', 'request', 'verdict', 'message', 'sessionEnd', 'signature', 'burn', 'key', 'cosignature'] as const)
    assert.equal(decodeAuditEntry(encodeAuditEntry(fields({ record: { case: c, value: {} } as AuditEntryInput['record'] }))).record.case, c);
});

test('decoding is strict: unknown fields, non-canonical bytes, wrong lengths, no record, wrong version', () => {
  const good = encodeAuditEntry(fields());
  const bad = (b: Uint8Array, re: RegExp) => assert.throws(() => decodeAuditEntry(b), (e: unknown) => e instanceof DecodeError && re.test(e.message));
  bad(new Uint8Array([...good, 0xf8, 0x07, 0x01]), /non-canonical|unknown/); // field 127 varint
  bad(encodeAuditEntry(fields({ prev: new Uint8Array(31) })), /prev: must be 32 bytes/);
  bad(encodeAuditEntry(fields({ clusterHash: new Uint8Array(0) })), /clusterHash/);
  bad(AuditEntryType.encode(AuditEntryType.create({ version: 1, clusterHash, peerId, prev: ZERO_HASH })).finish(), /no record/);
  bad(AuditEntryType.encode(AuditEntryType.create({ version: 2, clusterHash, peerId, prev: ZERO_HASH, policy: { json: '{}' } })).finish(), /version 2/);
  bad(good.subarray(0, good.length - 1), /malformed|non-canonical/);
  assert.throws(() => decodeSignedEntry(encodeSignedEntry({ entry: good, signature: new Uint8Array(63) })), /64 bytes/);
});

test('sign with a libp2p key or a raw seed: same signature over label ‖ cluster hash ‖ entry; verify', () => {
  const a = signEntry(fields(), key);
  const b = signEntry(fields(), seed);
  assert.deepEqual(a, b);
  const s = decodeSignedEntry(a);
  const msg = entrySigningMessage(clusterHash, s.entry);
  assert.deepEqual(msg.subarray(0, AUDIT_ENTRY_LABEL.length), new TextEncoder().encode('potluck/audit-entry/v1'));
  assert.ok(ed25519.verify(s.signature, msg, key.publicKey.raw));
  assert.ok(verifyEntry(a, key.publicKey.raw));
  assert.ok(verifyEntry(s, key.publicKey.raw));
  assert.ok(!verifyEntry(a, new Uint8Array(32).fill(9)));
  assert.ok(!verifyEntry(encodeSignedEntry({ entry: s.entry, signature: s.signature.map((x, i) => (i === 0 ? x ^ 1 : x)) }), key.publicKey.raw));
  // The signature binds the cluster: the same entry bytes under another cluster hash do not verify.
  assert.ok(!ed25519.verify(s.signature, entrySigningMessage(new Uint8Array(32), s.entry), key.publicKey.raw));
  assert.deepEqual(entryLeafHash(a), leafHash(a));
});

test('auditMessageOf: public broadcasts whole, everything else as SHA-256, signMultiply keeps pk_i ‖ R_i', () => {
  const session = new Uint8Array(32).fill(5);
  const b = (x: number, n: number) => new Uint8Array(n).fill(x);
  const partial = encodeBody({ case: 'signPartial', value: { sessionId: session, digest: b(1, 32), u: b(2, 32), w: b(3, 32) } });
  const m1 = auditMessageOf({ session, protocol: 'dkls23/online/v1', sent: true, from: 1, to: 0, payload: partial });
  assert.equal(m1.kind, 'signPartial');
  assert.deepEqual(m1.payload, partial);
  assert.equal(m1.payloadSha256.length, 0);
  const share = encodeBody({ case: 'keygenShare', value: { sessionId: session, echo: b(1, 32), share: b(7, 32), otReply: new Uint8Array(0), pprf: new Uint8Array(0), zeroSeed: b(8, 32) } });
  const m2 = auditMessageOf({ session, protocol: 'dkls23/dkg/v1', sent: false, from: 2, to: 1, payload: share });
  assert.equal(m2.kind, 'keygenShare');
  assert.equal(m2.payload.length, 0);
  assert.deepEqual(m2.payloadSha256, sha256(share));
  const mul = encodeBody({ case: 'signMultiply', value: { sessionId: session, echo: b(1, 32), aTilde: b(9, 96), etaPrime: b(1, 32), mu: b(1, 64), pk: b(2, 33), bigR: b(3, 33), blind: b(4, 32), gammaU: b(5, 33), gammaV: b(6, 33), psi: b(7, 32) } });
  const m3 = auditMessageOf({ session, protocol: 'dkls23/presign/v1', sent: true, from: 1, to: 2, payload: mul });
  assert.deepEqual(m3.publicValues, new Uint8Array([...b(2, 33), ...b(3, 33)]));
  assert.equal(m3.payload.length, 0);
  const m4 = auditMessageOf({ session, protocol: 'dkls23/presign/v1', sent: false, from: 1, to: 2, payload: new Uint8Array([0xff, 0xff]) });
  assert.equal(m4.kind, '');
  assert.equal(m4.payload.length, 0);
  assert.deepEqual([...PUBLIC_KINDS].sort(), ['keygenCommit', 'keygenConfirm', 'keygenReveal', 'signCommit', 'signPartial']);
});

test('sessionEndOf carries the typed error, culprit and evidence', () => {
  const s = new Uint8Array(32);
  const a = sessionEndOf(s, 'dkls23/online/v1', { error: new AbortError('decode', 'u ≥ n', 2, new Uint8Array([1, 2])) });
  assert.deepEqual([a.ok, a.errorClass, a.check, a.culprit, [...a.evidence]], [false, 'AbortError', 'decode', 2, [1, 2]]);
  const b = sessionEndOf(s, 'dkls23/presign/v1', { error: new BanPairError('rvole-mu', 'μ check failed', 3) });
  assert.deepEqual([b.errorClass, b.check, b.culprit, b.evidence.length], ['BanPairError', 'rvole-mu', 3, 0]);
  const c = sessionEndOf(s, 'dkls23/presign/v1', { output: new Uint8Array([9]) });
  assert.deepEqual([c.ok, c.errorClass, [...c.output]], [true, '', [9]]);
});

test('AuditError names log, entry, peer and rule', () => {
  const e = new AuditError('prev', 'broken chain', { log: 'a.log', entry: 12, peer: 'P' });
  assert.equal(e.message, "log a.log, entry 12, peer P: rule 'prev' failed: broken chain");
  assert.deepEqual([e.rule, e.entry, e.peer, e.log], ['prev', 12, 'P', 'a.log']);
  assert.equal(new AuditError('x', 'y').entry, null);
});
