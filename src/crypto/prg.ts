import { chacha20 } from '@noble/ciphers/chacha.js';

const ZERO_NONCE = new Uint8Array(12);

/**
 * ChaCha20 PRG: expand a 32-byte key into `length` pseudo-random bytes (keystream with a
 * zero nonce). Callers derive the key with a session-bound hash, so a key is never reused
 * across sessions (spec §2.4 step 2).
 */
export function prg(key: Uint8Array, length: number, out?: Uint8Array): Uint8Array {
  const dst = out ?? new Uint8Array(length);
  dst.fill(0, 0, length);
  return chacha20(key, ZERO_NONCE, dst.subarray(0, length), dst.subarray(0, length));
}
