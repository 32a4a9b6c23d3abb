import { createCipheriv } from 'node:crypto';
import { chacha20 } from '@noble/ciphers/chacha.js';

const ZERO_NONCE = new Uint8Array(12);
const ZERO_IV = new Uint8Array(16); // OpenSSL's chacha20 IV: 32-bit little-endian block counter ‖ 96-bit nonce
/** From this many output bytes on, OpenSSL (node:crypto) is faster than noble here; below, its per-call setup dominates. */
export const OPENSSL_PRG_MIN_BYTES = 512;

/**
 * ChaCha20 PRG: expand a 32-byte key into `length` pseudo-random bytes (keystream with a
 * zero nonce). Callers derive the key with a session-bound hash, so a key is never reused
 * across sessions (spec §2.4 step 2). Long streams run on OpenSSL, short ones on noble: the
 * same RFC 8439 keystream either way (test/crypto/chacha-prg.test.ts).
 */
export function prg(key: Uint8Array, length: number, out?: Uint8Array): Uint8Array {
  const dst = out ?? new Uint8Array(length);
  if (length >= OPENSSL_PRG_MIN_BYTES) {
    if (key.length !== 32) throw new RangeError('prg key must be 32 bytes');
    dst.set(createCipheriv('chacha20', key, ZERO_IV).update(new Uint8Array(length)));
    return out ? dst.subarray(0, length) : dst;
  }
  dst.fill(0, 0, length);
  return chacha20(key, ZERO_NONCE, dst.subarray(0, length), dst.subarray(0, length));
}
