import { DecodeError } from '../crypto/errors.ts';
import { Fn, N, exactBytes, pointFromBytes, pointToBytes, scalarFromBytes, scalarToBytes } from '../crypto/scalar-point.ts';
import { PresignatureType, strictDecode } from './messages.ts';
import type { Presignature } from './sign.ts';

/**
 * Storage codec for presignatures (`potluck.v1.Presignature`). The storage layer encrypts the
 * bytes at rest and persists `used = true` before a partial signature leaves (spec §2.9).
 */
export const PRESIGNATURE_VERSION = 1;

export function encodePresignature(p: Presignature): Uint8Array {
  return PresignatureType.encode(PresignatureType.create({
    version: PRESIGNATURE_VERSION, keyId: p.keyId, epoch: p.epoch, sessionId: p.sigSid, signers: p.signers, index: p.index,
    bigR: pointToBytes(p.R), u: scalarToBytes(p.u), v: scalarToBytes(p.v), phi: scalarToBytes(p.phi),
    publicKey: pointToBytes(p.publicKey), used: p.used,
  })).finish();
}

export function decodePresignature(bytes: Uint8Array): Presignature {
  const m = strictDecode(PresignatureType, bytes, 'presignature') as unknown as {
    version: number; keyId: string; epoch: number; sessionId: Uint8Array; signers: number[]; index: number;
    bigR: Uint8Array; u: Uint8Array; v: Uint8Array; phi: Uint8Array; publicKey: Uint8Array; used: boolean;
  };
  if (m.version !== PRESIGNATURE_VERSION) throw new DecodeError('presignature.version', `unsupported version ${m.version}`);
  if (!m.keyId) throw new DecodeError('presignature.keyId', 'empty');
  const signers = [...m.signers];
  if (signers.length < 2 || signers.some((j, k) => j < 1 || (k > 0 && j <= signers[k - 1]!))) throw new DecodeError('presignature.signers', 'must be ascending, distinct, ≥ 1, at least two');
  if (!signers.includes(m.index)) throw new DecodeError('presignature.index', 'not in the signer set');
  const R = pointFromBytes(m.bigR, 'presignature.bigR');
  const Rx = R.toAffine().x;
  if (Rx >= N || Fn.create(Rx) === 0n) throw new DecodeError('presignature.bigR', 'unusable nonce point');
  return {
    keyId: m.keyId, epoch: m.epoch, sigSid: new Uint8Array(exactBytes(m.sessionId, 32, 'presignature.sessionId')), signers, index: m.index,
    R, rx: Fn.create(Rx), u: scalarFromBytes(m.u, 'presignature.u'), v: scalarFromBytes(m.v, 'presignature.v'),
    phi: scalarFromBytes(m.phi, 'presignature.phi', { nonZero: true }), publicKey: pointFromBytes(m.publicKey, 'presignature.publicKey'), used: m.used,
  };
}
