/**
 * Ed25519 signatures by members' identity keys, for everything a member signs outside an
 * envelope: audit entries, checkpoints, approvals. Signing and verifying go through OpenSSL
 * (@libp2p/crypto), about 10× faster than pure JS; a raw 32-byte seed signs with noble (tests).
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { publicKeyFromRaw } from '@libp2p/crypto/keys';
import type { PrivateKey, PublicKey } from '@libp2p/interface';

export type Signer = (message: Uint8Array) => Uint8Array;

export function signerOf(key: PrivateKey | Uint8Array): Signer {
  if (key instanceof Uint8Array) {
    if (key.length !== 32) throw new RangeError('a raw Ed25519 key is 32 bytes');
    const seed = new Uint8Array(key);
    return (m) => ed25519.sign(m, seed);
  }
  if (key.type !== 'Ed25519') throw new RangeError('members sign with Ed25519 identity keys');
  return (m) => {
    const s = key.sign(m);
    if (!(s instanceof Uint8Array)) throw new Error('Ed25519 signing must be synchronous');
    return s;
  };
}

// Strict RFC 8032 verification; key objects cached (a cluster has at most 16 members).
const verifiers = new Map<string, PublicKey>();

/** Never throws: a malformed key or signature is simply not valid. */
export function verifyEd25519(publicKeyRaw: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (publicKeyRaw.length !== 32 || signature.length !== 64) return false;
  const k = Buffer.from(publicKeyRaw).toString('hex');
  try {
    let v = verifiers.get(k);
    if (!v) {
      v = publicKeyFromRaw(publicKeyRaw);
      if (verifiers.size > 4096) verifiers.clear();
      verifiers.set(k, v);
    }
    return v.verify(message, signature) === true;
  } catch {
    return false;
  }
}
