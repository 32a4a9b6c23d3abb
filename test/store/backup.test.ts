import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seededRng } from '../../src/crypto/random.ts';
import { initIdentity } from '../../src/cluster/identity.ts';
import { encodeKeyShare, type KeyShare } from '../../src/protocol/key-share.ts';
import { ethAddress } from '../../src/protocol/sign.ts';
import { keygen } from '../../src/sim/simulator.ts';
import { BackupError, createBackup, openBackup, restoreBackup } from '../../src/store/backup.ts';
import { PeerStore } from '../../src/store/database.ts';
import { openKeyShare, sealKeyShare } from '../../src/store/key-share-vault.ts';
import { PolicyRecords } from '../../src/store/policy-records.ts';
import { parsePolicy, toTxPolicy } from '../../src/policy/policy-file.ts';
import { decodeOrThrow } from '../../src/policy/transaction-args.ts';
import { evaluateTransaction } from '../../src/policy/tx-policy.ts';
import { CLUSTER, INBOX, type2Request } from '../policy/helpers.ts';

const SHARE_PASS = 'correct horse battery staple';
const BACKUP_PASS = 'a different backup passphrase';
const cost = { logN: 10, r: 8, p: 1 };
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
let share: KeyShare;
let home: string;

before(async () => {
  share = keygen(2, 3, { seed: 'backup' }).get(1)!;
  home = mkdtempSync(join(tmpdir(), 'potluck-backup-'));
  await initIdentity(home, 'acme', '/ip4/127.0.0.1/tcp/4001', '127.0.0.1:8545');
  writeFileSync(join(home, 'cluster.json'), '{"name":"test"}\n');
  writeFileSync(join(home, 'policy.json'), '{"version":1}\n');
  mkdirSync(join(home, 'keys'));
  writeFileSync(join(home, 'keys', 'batcher.share'), sealKeyShare(share, SHARE_PASS, seededRng('b1'), cost), { mode: 0o600 });
  writeFileSync(join(home, 'keys', 'batcher.share.next'), 'a ceremony in flight');
  mkdirSync(join(home, 'tls'));
  writeFileSync(join(home, 'tls', 'server.key'), 'PRIVATE KEY');
  writeFileSync(join(home, 'tls', 'ca.crt'), 'CERT');
  // One approved nonce: the anti-equivocation record a restored peer must keep.
  const store = new PeerStore(join(home, 'potluck.db'));
  const policy = toTxPolicy(parsePolicy({
    version: 1, quorum: { distinctOrgs: 2, otherOrgs: 1 },
    transactions: { chainIds: [900], batchInbox: INBOX, allowBlobsWithoutContent: true, caps: { gas: '30000000', maxFeePerGas: '500000000000', maxPriorityFeePerGas: '50000000000', maxFeePerBlobGas: '100000000000', maxBlobs: 6 } },
  }), CLUSTER);
  const req = type2Request();
  new PolicyRecords(store.db).decideTransaction(decodeOrThrow(req), (recorded) => evaluateTransaction(policy, req, { recorded }), { session: null, requester: 'acme', client: 'batcher', role: 'requester' });
  store.db.exec(`INSERT INTO meta (key, value) VALUES ('presignature-marker', 'must not travel')`);
  store.close();
});

const make = () => createBackup(home, { passphrase: BACKUP_PASS, sharePassphrase: SHARE_PASS, rng: seededRng('bk'), now: new Date('2026-11-25T12:00:00Z'), scryptLogN: 10 });

test('backup → restore into an empty home gives back the identity, shares, files and nonce records; never the database or a share in flight', () => {
  const { bytes, manifest } = make();
  assert.deepEqual(manifest.files, ['identity.key', 'peer.json', 'cluster.json', 'policy.json', 'keys/batcher.share', 'tls/ca.crt', 'tls/server.key']);
  assert.deepEqual(manifest.keys, [{ keyId: 'sim-key', epoch: 0, index: 1, address: ethAddress(share.publicKey) }]);
  assert.equal(manifest.policyRecords, 1);
  const text = new TextDecoder().decode(bytes);
  assert.equal(text.includes('PRIVATE KEY'), false, 'sealed, not in clear');
  assert.equal(text.includes('must not travel'), false);
  const to = join(mkdtempSync(join(tmpdir(), 'potluck-restore-')), 'home');
  const restored = restoreBackup(bytes, to, { passphrase: BACKUP_PASS, sharePassphrase: SHARE_PASS });
  assert.deepEqual(restored, manifest);
  for (const f of manifest.files) assert.equal(hex(readFileSync(join(to, f))), hex(readFileSync(join(home, f))), f);
  assert.equal(statSync(join(to, 'identity.key')).mode & 0o777, 0o600);
  assert.equal(statSync(join(to, 'keys', 'batcher.share')).mode & 0o777, 0o600);
  assert.equal(statSync(join(to, 'tls', 'server.key')).mode & 0o777, 0o600);
  assert.equal(statSync(join(to, 'peer.json')).mode & 0o777, 0o644);
  assert.equal(existsSync(join(to, 'keys', 'batcher.share.next')), false);
  assert.equal(hex(encodeKeyShare(openKeyShare(readFileSync(join(to, 'keys', 'batcher.share')), SHARE_PASS))), hex(encodeKeyShare(share)));
  const store = new PeerStore(join(to, 'potluck.db'));
  const exported = new PolicyRecords(store.db).exportInterchange();
  assert.equal(exported.data.reduce((n, d) => n + d.records.length, 0), 1);
  assert.equal((store.db.prepare(`SELECT count(*) AS n FROM presignatures`).get() as { n: number }).n, 0);
  assert.equal((store.db.prepare(`SELECT count(*) AS n FROM meta WHERE key = 'presignature-marker'`).get() as { n: number }).n, 0);
  store.close();
});

test('restore refuses a home that already holds a peer, and writes nothing there', () => {
  const { bytes } = make();
  assert.throws(() => restoreBackup(bytes, home, { passphrase: BACKUP_PASS, sharePassphrase: SHARE_PASS }), (e: unknown) => e instanceof BackupError && /identity\.key exists: restore only into an empty home/.test(e.message));
});

test('a wrong passphrase, a flipped byte, an edited header or a foreign file are BackupError naming the problem', () => {
  const { bytes } = make();
  assert.throws(() => openBackup(bytes, 'wrong passphrase!'), (e: unknown) => e instanceof BackupError && /cannot open the backup of acme \(2026-11-25T12:00:00.000Z\): wrong passphrase, or the file was altered/.test(e.message));
  const outer = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
  const ct = Buffer.from(outer.ciphertext as string, 'base64');
  ct[10]! ^= 1;
  assert.throws(() => openBackup(new TextEncoder().encode(JSON.stringify({ ...outer, ciphertext: ct.toString('base64') })), BACKUP_PASS), (e: unknown) => e instanceof BackupError && /wrong passphrase, or the file was altered/.test(e.message));
  assert.throws(() => openBackup(new TextEncoder().encode(JSON.stringify({ ...outer, org: 'mallory' })), BACKUP_PASS), (e: unknown) => e instanceof BackupError && /file was altered/.test(e.message));
  assert.throws(() => openBackup(new TextEncoder().encode(JSON.stringify({ ...outer, version: 2 })), BACKUP_PASS), (e: unknown) => e instanceof BackupError && /backup version 2 is not supported/.test(e.message));
  assert.throws(() => openBackup(new TextEncoder().encode('{"format":"tar"}'), BACKUP_PASS), (e: unknown) => e instanceof BackupError && /format is "tar"/.test(e.message));
  assert.throws(() => openBackup(new TextEncoder().encode('\x00garbage'), BACKUP_PASS), (e: unknown) => e instanceof BackupError && /not JSON/.test(e.message));
  const { salt: _salt, ...noSalt } = outer;
  assert.throws(() => openBackup(new TextEncoder().encode(JSON.stringify(noSalt)), BACKUP_PASS), (e: unknown) => e instanceof BackupError && /field "salt"/.test(e.message));
});

test('a backup is not written when a share does not open with the share passphrase', () => {
  assert.throws(() => createBackup(home, { passphrase: BACKUP_PASS, sharePassphrase: 'not the share passphrase', rng: seededRng('x'), scryptLogN: 10 }), (e: unknown) => e instanceof BackupError && /keys\/batcher\.share does not open with the share passphrase/.test(e.message));
});
