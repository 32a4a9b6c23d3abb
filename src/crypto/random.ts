import { randomBytes } from '@noble/hashes/utils.js';
import { chacha20 } from '@noble/ciphers/chacha.js';

/**
 * Source of randomness injected into every state machine. Production code passes
 * {@link systemRng} (CSPRNG); tests may pass {@link seededRng} to get reproducible runs.
 */
export type Rng = (length: number) => Uint8Array;

const MAX_CHUNK = 65536; // noble's randomBytes limit (crypto.getRandomValues)

/** Operating-system CSPRNG (crypto.getRandomValues), any length. */
export const systemRng: Rng = (length) => {
  if (length <= MAX_CHUNK) return randomBytes(length);
  const out = new Uint8Array(length);
  for (let o = 0; o < length; o += MAX_CHUNK) out.set(randomBytes(Math.min(MAX_CHUNK, length - o)), o);
  return out;
};

/**
 * Deterministic ChaCha20 keystream RNG. FOR TESTS ONLY: protocol code never constructs it,
 * it only receives an Rng from its caller.
 */
export function seededRng(seed: Uint8Array | string): Rng {
  const key = new Uint8Array(32);
  const s = typeof seed === 'string' ? new TextEncoder().encode(seed) : seed;
  key.set(s.subarray(0, 32));
  const nonce = new Uint8Array(12);
  let counter = 0; // 64-byte ChaCha blocks consumed so far
  return (length) => {
    const blocks = Math.ceil(length / 64);
    const out = chacha20(key, nonce, new Uint8Array(blocks * 64), undefined, counter);
    counter += blocks;
    return out.subarray(0, length);
  };
}
