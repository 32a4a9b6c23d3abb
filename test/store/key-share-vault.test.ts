import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { seededRng } from '../../src/crypto/random.ts';
import { DecodeError } from '../../src/crypto/errors.ts';
import { encodeKeyShare, type KeyShare } from '../../src/protocol/key-share.ts';
import { SealedKeyShareType } from '../../src/protocol/messages.ts';
import { VaultError, openKeyShare, sealKeyShare } from '../../src/store/key-share-vault.ts';
import { keygen } from '../../src/sim/simulator.ts';

const cost = { logN: 10, r: 8, p: 1 }; // cheap for tests; the default is 2^17
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
let share: KeyShare;
before(() => {
  share = keygen(2, 2, { seed: 'vault' }).get(1)!;
});

test('seal → open gives back the same key share; the file does not contain it in clear', () => {
  const sealed = sealKeyShare(share, 'correct horse battery', seededRng('v1'), cost);
  assert.equal(hex(encodeKeyShare(openKeyShare(sealed, 'correct horse battery'))), hex(encodeKeyShare(share)));
  const secret = hex(encodeKeyShare(share)).slice(200, 264);
  assert.equal(hex(sealed).includes(secret), false);
});

test('a wrong passphrase gives VaultError naming the key, party and epoch, not a decode error', () => {
  const sealed = sealKeyShare(share, 'correct horse battery', seededRng('v2'), cost);
  assert.throws(() => openKeyShare(sealed, 'wrong horse battery'), (e: unknown) => e instanceof VaultError && /key "sim-key" \(party 1, epoch 0\)/.test(e.message));
});

test('a header moved to another party, epoch or key fails authentication (additional data)', () => {
  const sealed = sealKeyShare(share, 'correct horse battery', seededRng('v3'), cost);
  const m = SealedKeyShareType.toObject(SealedKeyShareType.decode(sealed)) as Record<string, unknown>;
  for (const change of [{ index: 2 }, { epoch: 1 }, { keyId: 'other' }]) {
    const forged = SealedKeyShareType.encode(SealedKeyShareType.fromObject({ ...m, ...change })).finish();
    assert.throws(() => openKeyShare(forged, 'correct horse battery'), VaultError);
  }
});

test('a flipped ciphertext bit is VaultError; a truncated or garbage file is DecodeError', () => {
  const sealed = sealKeyShare(share, 'correct horse battery', seededRng('v4'), cost);
  const flipped = new Uint8Array(sealed);
  flipped[flipped.length - 5]! ^= 1;
  assert.throws(() => openKeyShare(flipped, 'correct horse battery'), VaultError);
  assert.throws(() => openKeyShare(sealed.subarray(0, 40), 'correct horse battery'), DecodeError);
  assert.throws(() => openKeyShare(new Uint8Array(100).fill(7), 'correct horse battery'), DecodeError);
});

test('two seals of the same share differ (fresh salt and nonce); short passphrases are refused', () => {
  const a = sealKeyShare(share, 'correct horse battery', seededRng('v5'), cost);
  const b = sealKeyShare(share, 'correct horse battery', seededRng('v6'), cost);
  assert.notEqual(hex(a), hex(b));
  assert.throws(() => sealKeyShare(share, 'short', seededRng('v7'), cost), (e: unknown) => e instanceof VaultError && /at least 8/.test(e.message));
});
