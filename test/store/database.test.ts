import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PeerStore } from '../../src/store/database.ts';

const sid = (k: number) => new Uint8Array(32).fill(k);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const fresh = () => join(mkdtempSync(join(tmpdir(), 'potluck-db-')), 'peer.db');

test('take marks a presignature used in the same transaction; each is handed out once', () => {
  const s = new PeerStore(fresh());
  for (const k of [1, 2]) s.addPresignature({ sigSid: sid(k), keyId: 'k', epoch: 0, signers: [1, 2], blob: new Uint8Array([k]) });
  s.addPresignature({ sigSid: sid(3), keyId: 'k', epoch: 0, signers: [1, 3], blob: new Uint8Array([3]) });
  assert.equal(s.poolSize('k', 0), 3);
  const a = s.takePresignature('k', 0, [1, 2])!, b = s.takePresignature('k', 0, [1, 2])!;
  assert.notEqual(hex(a.sigSid), hex(b.sigSid));
  assert.equal(s.takePresignature('k', 0, [1, 2]), undefined);
  assert.equal(s.isUsed(a.sigSid), true);
  assert.equal(s.markUsed(a.sigSid), false);
  assert.equal(s.markUsed(sid(3)), true);
  assert.equal(s.markUsed(sid(3)), false);
  assert.equal(s.poolSize('k', 0), 0);
  s.close();
});

test('a crash right after the used mark never lets the presignature be used again', () => {
  const path = fresh();
  const s = new PeerStore(path);
  for (const k of [1, 2]) s.addPresignature({ sigSid: sid(k), keyId: 'k', epoch: 0, signers: [1, 2], blob: new Uint8Array([k]) });
  s.close();
  const child = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./fixtures/crash-after-mark.ts', import.meta.url)), path], { encoding: 'utf8' });
  assert.equal(child.signal, 'SIGKILL');
  const taken = /taken ([0-9a-f]{64})/.exec(child.stdout)![1]!;
  const again = new PeerStore(path);
  assert.equal(again.isUsed(Buffer.from(taken, 'hex')), true);
  const next = again.takePresignature('k', 0, [1, 2])!;
  assert.notEqual(hex(next.sigSid), taken);
  assert.equal(again.takePresignature('k', 0, [1, 2]), undefined);
  again.close();
});

test('burning a pair persists, and deletes every presignature with that peer', () => {
  const path = fresh();
  const s = new PeerStore(path);
  s.addPresignature({ sigSid: sid(1), keyId: 'k', epoch: 0, signers: [1, 2], blob: new Uint8Array([1]) });
  s.addPresignature({ sigSid: sid(2), keyId: 'k', epoch: 0, signers: [1, 3], blob: new Uint8Array([2]) });
  s.burnPair('k', 2, 'softspoken-check', new Uint8Array([9]));
  s.close();
  const t = new PeerStore(path);
  assert.deepEqual([...t.burnedPeers('k')], [2]);
  assert.equal(t.isUsed(sid(1)), undefined);
  assert.equal(t.isUsed(sid(2)), false);
  t.unburnPair('k', 2);
  assert.deepEqual([...t.burnedPeers('k')], []);
  t.close();
});
