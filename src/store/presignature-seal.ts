import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { DecodeError } from '../crypto/errors.ts';
import type { Rng } from '../crypto/random.ts';
import { scalarToBytes } from '../crypto/scalar-point.ts';
import type { KeyShare } from '../protocol/key-share.ts';
import { decodePresignature, encodePresignature } from '../protocol/presignature-codec.ts';
import type { Presignature } from '../protocol/sign.ts';

/**
 * Presignatures at rest in the peer database: XChaCha20-Poly1305 under a key derived (HKDF) from
 * the unlocked key share, with the sigSid as additional data. A copied database is useless
 * without the share, and a row cannot be moved to another sigSid. Presignatures are never
 * exported or backed up (issue 3); a new epoch derives a new key, so old rows stop opening.
 */
export class PresignatureSealError extends Error {
  override readonly name = 'PresignatureSealError';
}

export function poolKey(share: KeyShare): Uint8Array {
  const info = new TextEncoder().encode(`potluck/presignature-pool/v1/${share.keyId}/${share.epoch}/${share.index}`);
  return hkdf(sha256, scalarToBytes(share.secretShare), share.dkgSid, info, 32);
}

export function sealPresignature(p: Presignature, key: Uint8Array, rng: Rng): Uint8Array {
  const nonce = rng(24);
  const ct = xchacha20poly1305(key, nonce, p.sigSid).encrypt(encodePresignature(p));
  const out = new Uint8Array(24 + ct.length);
  out.set(nonce, 0);
  out.set(ct, 24);
  return out;
}

export function openPresignature(blob: Uint8Array, key: Uint8Array, sigSid: Uint8Array): Presignature {
  if (blob.length < 24 + 16) throw new DecodeError('presignature row', `${blob.length} bytes is too short`);
  let plain: Uint8Array;
  try {
    plain = xchacha20poly1305(key, blob.subarray(0, 24), sigSid).decrypt(blob.subarray(24));
  } catch {
    throw new PresignatureSealError('presignature row does not authenticate under this key share (wrong epoch or tampered)');
  }
  return decodePresignature(plain);
}
