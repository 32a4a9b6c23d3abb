import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { scrypt } from '@noble/hashes/scrypt.js';
import { DecodeError } from '../crypto/errors.ts';
import type { Rng } from '../crypto/random.ts';
import { exactBytes } from '../crypto/scalar-point.ts';
import { decodeKeyShare, encodeKeyShare, type KeyShare } from '../protocol/key-share.ts';
import { SealedKeyShareType, strictDecode } from '../protocol/messages.ts';

/**
 * Key shares at rest (spec §4.3.15): scrypt (noble) derives a 32-byte key from the operator's
 * passphrase and a fresh salt; XChaCha20-Poly1305 (noble) encrypts the encoded share with
 * additional data = label ‖ key id ‖ party index ‖ epoch, so a file cannot be passed off as
 * another key's, party's or epoch's. Pure functions: the caller reads and writes the file.
 */
export const VAULT_VERSION = 1;
/** scrypt cost: N = 2^17, r = 8, p = 1 (128 MiB, ~1 s here); tests may lower logN. */
export const DEFAULT_SCRYPT = { logN: 17, r: 8, p: 1 } as const;

export class VaultError extends Error {
  override readonly name = 'VaultError';
}

function additionalData(keyId: string, index: number, epoch: number): Uint8Array {
  const id = new TextEncoder().encode(keyId);
  const out = new Uint8Array(20 + 4 + id.length + 8);
  out.set(new TextEncoder().encode('potluck/keyshare/v1\0'), 0);
  const dv = new DataView(out.buffer);
  dv.setUint32(20, id.length);
  out.set(id, 24);
  dv.setUint32(24 + id.length, index);
  dv.setUint32(28 + id.length, epoch);
  return out;
}

function deriveKey(passphrase: string, salt: Uint8Array, cost: { logN: number; r: number; p: number }): Uint8Array {
  if (passphrase.length < 8) throw new VaultError('passphrase must be at least 8 characters');
  return scrypt(new TextEncoder().encode(passphrase.normalize('NFKC')), salt, { N: 2 ** cost.logN, r: cost.r, p: cost.p, dkLen: 32, maxmem: 2 ** 31 });
}

export function sealKeyShare(share: KeyShare, passphrase: string, rng: Rng, cost: { logN: number; r: number; p: number } = DEFAULT_SCRYPT): Uint8Array {
  const salt = rng(32), nonce = rng(24);
  const key = deriveKey(passphrase, salt, cost);
  const plain = encodeKeyShare(share);
  const ciphertext = xchacha20poly1305(key, nonce, additionalData(share.keyId, share.index, share.epoch)).encrypt(plain);
  plain.fill(0);
  key.fill(0);
  return SealedKeyShareType.encode(SealedKeyShareType.create({
    version: VAULT_VERSION, keyId: share.keyId, index: share.index, epoch: share.epoch,
    scryptLogN: cost.logN, scryptR: cost.r, scryptP: cost.p, salt, nonce, ciphertext,
  })).finish();
}

/**
 * Decrypt and decode. A wrong passphrase and a tampered file look the same to the AEAD and give
 * one VaultError; a malformed file gives DecodeError. The share inside must carry the same key
 * id, index and epoch as the (authenticated) header.
 */
export function openKeyShare(bytes: Uint8Array, passphrase: string): KeyShare {
  const m = strictDecode(SealedKeyShareType, bytes, 'sealedKeyShare') as unknown as {
    version: number; keyId: string; index: number; epoch: number; scryptLogN: number; scryptR: number; scryptP: number;
    salt: Uint8Array; nonce: Uint8Array; ciphertext: Uint8Array;
  };
  if (m.version !== VAULT_VERSION) throw new DecodeError('sealedKeyShare.version', `unsupported version ${m.version}`);
  if (m.scryptLogN < 10 || m.scryptLogN > 22 || m.scryptR < 1 || m.scryptR > 32 || m.scryptP < 1 || m.scryptP > 16)
    throw new DecodeError('sealedKeyShare.scrypt', 'cost parameters out of range');
  exactBytes(m.salt, 32, 'sealedKeyShare.salt');
  exactBytes(m.nonce, 24, 'sealedKeyShare.nonce');
  const key = deriveKey(passphrase, m.salt, { logN: m.scryptLogN, r: m.scryptR, p: m.scryptP });
  let plain: Uint8Array;
  try {
    plain = xchacha20poly1305(key, m.nonce, additionalData(m.keyId, m.index, m.epoch)).decrypt(m.ciphertext);
  } catch {
    throw new VaultError(`cannot open the key share for key "${m.keyId}" (party ${m.index}, epoch ${m.epoch}): wrong passphrase, or the file was altered`);
  } finally {
    key.fill(0);
  }
  const share = decodeKeyShare(plain);
  plain.fill(0);
  if (share.keyId !== m.keyId || share.index !== m.index || share.epoch !== m.epoch) throw new VaultError('sealed header does not match the key share inside');
  return share;
}
