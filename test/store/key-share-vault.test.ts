import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { scrypt } from '@noble/hashes/scrypt.js';
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

test('a header moved to another party, epoch or key fails authentication (additional data), before the share is decoded', () => {
  const sealed = sealKeyShare(share, 'correct horse battery', seededRng('v3'), cost);
  const m = SealedKeyShareType.toObject(SealedKeyShareType.decode(sealed)) as Record<string, unknown>;
  for (const [change, names] of [[{ index: 2 }, 'key "sim-key" (party 2, epoch 0)'], [{ epoch: 1 }, 'key "sim-key" (party 1, epoch 1)'], [{ keyId: 'other' }, 'key "other" (party 1, epoch 0)']] as const) {
    const forged = SealedKeyShareType.encode(SealedKeyShareType.fromObject({ ...m, ...change })).finish();
    // The AEAD refuses it ("cannot open"), not the later header-versus-share check.
    assert.throws(() => openKeyShare(forged, 'correct horse battery'), (e: unknown) => e instanceof VaultError && e.message === `cannot open the key share for ${names}: wrong passphrase, or the file was altered`);
  }
});

test('a file that authenticates but holds another party\'s share is refused by the header-versus-share check', () => {
  // Built by hand: header and additional data say party 2, the share inside is party 1's. Only a
  // writer with the passphrase can make such a file; the check still refuses to return it.
  const header = { keyId: share.keyId, index: 2, epoch: share.epoch };
  const id = new TextEncoder().encode(header.keyId);
  const ad = new Uint8Array(20 + 4 + id.length + 8);
  ad.set(new TextEncoder().encode('potluck/keyshare/v1\0'), 0);
  const dv = new DataView(ad.buffer);
  dv.setUint32(20, id.length);
  ad.set(id, 24);
  dv.setUint32(24 + id.length, header.index);
  dv.setUint32(28 + id.length, header.epoch);
  const salt = seededRng('v8')(32), nonce = seededRng('v9')(24);
  const key = scrypt(new TextEncoder().encode('correct horse battery'), salt, { N: 2 ** cost.logN, r: cost.r, p: cost.p, dkLen: 32 });
  const ciphertext = xchacha20poly1305(key, nonce, ad).encrypt(encodeKeyShare(share));
  const forged = SealedKeyShareType.encode(SealedKeyShareType.create({ version: 1, ...header, scryptLogN: cost.logN, scryptR: cost.r, scryptP: cost.p, salt, nonce, ciphertext })).finish();
  assert.throws(() => openKeyShare(forged, 'correct horse battery'), (e: unknown) => e instanceof VaultError && e.message === 'sealed header does not match the key share inside');
});

test('a flipped ciphertext bit is VaultError; a truncated or garbage file is DecodeError', () => {
  const sealed = sealKeyShare(share, 'correct horse battery', seededRng('v4'), cost);
  const flipped = new Uint8Array(sealed);
  flipped[flipped.length - 5]! ^= 1;
  assert.throws(() => openKeyShare(flipped, 'correct horse battery'), (e: unknown) => e instanceof VaultError && e.message.startsWith('cannot open the key share'));
  assert.throws(() => openKeyShare(sealed.subarray(0, 40), 'correct horse battery'), DecodeError);
  assert.throws(() => openKeyShare(new Uint8Array(100).fill(7), 'correct horse battery'), DecodeError);
});

test('two seals of the same share differ (fresh salt and nonce); short passphrases are refused', () => {
  const a = sealKeyShare(share, 'correct horse battery', seededRng('v5'), cost);
  const b = sealKeyShare(share, 'correct horse battery', seededRng('v6'), cost);
  assert.notEqual(hex(a), hex(b));
  assert.throws(() => sealKeyShare(share, 'short', seededRng('v7'), cost), (e: unknown) => e instanceof VaultError && /at least 8/.test(e.message));
});

test('another vault version or scrypt costs out of range are DecodeError by name, before any key derivation', () => {
  const sealed = sealKeyShare(share, 'correct horse battery', seededRng('v10'), cost);
  const m = SealedKeyShareType.toObject(SealedKeyShareType.decode(sealed)) as Record<string, unknown>;
  const forged = (change: Record<string, number>) => SealedKeyShareType.encode(SealedKeyShareType.fromObject({ ...m, ...change })).finish();
  assert.throws(() => openKeyShare(forged({ version: 2 }), 'correct horse battery'), { name: 'DecodeError', message: 'sealedKeyShare.version: unsupported version 2' });
  for (const change of [{ scryptLogN: 9 }, { scryptLogN: 23 }, { scryptR: 0 }, { scryptR: 33 }, { scryptP: 0 }, { scryptP: 17 }] as Record<string, number>[])
    assert.throws(() => openKeyShare(forged(change), 'correct horse battery'), { name: 'DecodeError', message: 'sealedKeyShare.scrypt: cost parameters out of range' }, JSON.stringify(change));
});
