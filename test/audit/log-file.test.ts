import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { AuditError, ZERO_HASH, decodeAuditEntry, entryLeafHash, signEntry, signerOf, type AuditRecordInput } from '../../src/audit/entry.ts';
import { AuditLog, encodeLogRecord, readLogFile } from '../../src/audit/log-file.ts';
import { openCheckpoint } from '../../src/audit/checkpoint.ts';
import { rootFromLeafHashes, equalBytes } from '../../src/audit/merkle.ts';

let key: PrivateKey, other: PrivateKey;
let peerId: string;
const clusterHash = sha256(new TextEncoder().encode('log-file-test'));
before(async () => {
  key = await generateKeyPairFromSeed('Ed25519', sha256(new TextEncoder().encode('log-file-key')));
  other = await generateKeyPairFromSeed('Ed25519', sha256(new TextEncoder().encode('log-file-other')));
  peerId = peerIdFromPrivateKey(key).toString();
});
const fresh = () => join(mkdtempSync(join(tmpdir(), 'potluck-audit-log-')), 'audit.log');
const open = (path: string, extra: { onWarning?: (m: string) => void; verifySignatures?: boolean } = {}) => AuditLog.open(path, { clusterHash, peerId, sign: signerOf(key), ...extra });
const rec = (i: number): AuditRecordInput => ({ case: 'burn', value: { keyId: 'k', peer: i, peerOrg: `org${i}`, check: 'rvole-mu' } });

test('append writes length-prefixed signed entries with seq and prev; reopen resumes; checkpoint verifies', () => {
  const path = fresh();
  const log = open(path);
  const out = [0, 1, 2].map((i) => log.append(rec(i)));
  assert.deepEqual(out.map((o) => o.seq), [0, 1, 2]);
  log.close();
  assert.equal(statSync(path).mode & 0o777, 0o600);
  const { records } = readLogFile(new Uint8Array(readFileSync(path)));
  assert.equal(records.length, 3);
  const entries = records.map((r) => decodeAuditEntry(r.entry));
  assert.deepEqual(entries.map((e) => e.seq), [0, 1, 2]);
  assert.deepEqual(entries[0]!.prev, ZERO_HASH);
  assert.deepEqual(entries[2]!.prev, entryLeafHash(records[1]!.bytes));
  assert.deepEqual(out[2]!.leafHash, entryLeafHash(records[2]!.bytes));
  assert.match(entries[0]!.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

  const again = open(path, { verifySignatures: true });
  assert.equal(again.size, 3);
  assert.equal(again.append(rec(3)).seq, 3);
  const cp = again.checkpoint();
  again.close();
  assert.equal(cp.size, 4);
  assert.ok(equalBytes(cp.root, rootFromLeafHashes(readLogFile(new Uint8Array(readFileSync(path))).records.map((r) => entryLeafHash(r.bytes)))));
  const { checkpoint, verified } = openCheckpoint(cp.note);
  assert.equal(checkpoint.size, 4);
  assert.deepEqual(verified, [checkpoint.origin]);
  assert.equal(checkpoint.origin, `potluck/${Buffer.from(clusterHash).toString('hex')}/${peerId}`);
});

test('a torn last record (crash mid-write) is cut off with a warning; the log goes on', () => {
  const path = fresh();
  const log = open(path);
  for (let i = 0; i < 3; i++) log.append(rec(i));
  log.close();
  const size = statSync(path).size;
  for (const cut of [1, 5, 40]) {
    truncateSync(path, size);
    const whole = readFileSync(path);
    appendFileSync(path, encodeLogRecord(new Uint8Array(60).fill(1)).subarray(0, cut));
    const warnings: string[] = [];
    const l = open(path, { onWarning: (m) => warnings.push(m) });
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, new RegExp(`torn record at byte offset ${size}`));
    assert.equal(l.size, 3);
    assert.equal(statSync(path).size, size);
    assert.deepEqual(readFileSync(path), whole);
    l.close();
  }
  const l = open(path);
  assert.equal(l.append(rec(9)).seq, 3);
  l.close();
  assert.throws(() => readLogFile(new Uint8Array([...readFileSync(path), 0, 0])), (e: unknown) => e instanceof AuditError && e.rule === 'decode' && e.entry === 4);
});

test('anything else wrong on open is an AuditError naming the record', () => {
  const path = fresh();
  const log = open(path);
  for (let i = 0; i < 4; i++) log.append(rec(i));
  log.close();
  const good = new Uint8Array(readFileSync(path));
  const { records } = readLogFile(good);
  const expectOpen = (bytes: Uint8Array, rule: string, entry: number, opts: { verifySignatures?: boolean } = {}) => {
    writeFileSync(path, bytes);
    assert.throws(() => open(path, opts), (e: unknown) => e instanceof AuditError && e.rule === rule && e.entry === entry, `${rule} at ${entry}`);
  };
  // A changed byte inside record 2's entry: structure holds, its signature does not (checked on request).
  const flipped = new Uint8Array(good);
  flipped[records[2]!.offset + 30]! ^= 1;
  expectOpen(flipped, 'signature', 2, { verifySignatures: true });
  // Record 1 removed: seq and prev break at record 1.
  const cut = new Uint8Array([...good.subarray(0, records[1]!.offset), ...good.subarray(records[2]!.offset)]);
  expectOpen(cut, 'seq', 1);
  // Record 1 signed by the author with the right seq but a prev that is not record 0's leaf hash.
  const relinked = signEntry({ clusterHash, peerId, seq: 1, prev: ZERO_HASH, time: '2025-01-01T00:00:00Z', record: rec(1) }, key);
  expectOpen(new Uint8Array([...good.subarray(0, records[1]!.offset), ...encodeLogRecord(relinked)]), 'prev', 1, { verifySignatures: true });
  // A zero length prefix in the middle is not a torn tail.
  const zero = new Uint8Array(good);
  zero.set([0, 0, 0, 0], records[3]!.offset);
  expectOpen(zero, 'decode', 3);
  // An entry by another peer.
  const theirs = AuditLog.open(fresh(), { clusterHash, peerId: peerIdFromPrivateKey(other).toString(), sign: signerOf(other) });
  theirs.append(rec(0));
  const theirBytes = readFileSync(theirs.path);
  theirs.close();
  expectOpen(new Uint8Array(theirBytes), 'author', 0);
  // Another cluster.
  const alien = AuditLog.open(fresh(), { clusterHash: new Uint8Array(32), peerId, sign: signerOf(key) });
  alien.append(rec(0));
  const alienBytes = readFileSync(alien.path);
  alien.close();
  expectOpen(new Uint8Array(alienBytes), 'cluster', 0);
  writeFileSync(path, good);
  assert.equal(open(path, { verifySignatures: true }).size, 4);
});

test('readLogFile names the byte offset of a bad record', () => {
  const path = fresh();
  const log = open(path);
  log.append(rec(0));
  log.append(rec(1));
  log.close();
  const good = new Uint8Array(readFileSync(path));
  const off = readLogFile(good).records[1]!.offset;
  const bad = new Uint8Array(good);
  bad[off + 4]! ^= 0xff; // first byte of record 1's SignedAuditEntry
  assert.throws(() => readLogFile(bad, { name: 'x.log' }), (e: unknown) => e instanceof AuditError && e.entry === 1 && e.log === 'x.log' && new RegExp(`byte offset ${off}`).test(e.message));
  assert.throws(() => readLogFile(good.subarray(0, good.length - 3)), /runs past the end/);
  assert.equal(readLogFile(good.subarray(0, good.length - 3), { allowTornTail: true }).tornAt, off);
});
