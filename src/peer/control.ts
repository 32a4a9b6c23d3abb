import { DecodeError } from '../crypto/errors.ts';
import { exactBytes } from '../crypto/scalar-point.ts';
import { ControlType, strictDecode } from '../protocol/messages.ts';

/** Peer control messages (proto `Control`): ceremony joins, proposals, decisions. Strictly decoded. */
type Bytes = Uint8Array;
export interface CeremonyJoin { kind: string; keyId: string; nonce: Bytes; params: Bytes }
export interface CeremonyAck { kind: string; keyId: string; epoch: number; dkgSessionId: Bytes; publicKey: Bytes }
export interface PresignProposal { keyId: string; epoch: number; signers: number[]; owner: number; nonce: Bytes }
export interface SignProposal { keyId: string; epoch: number; signers: number[]; presignature: Bytes; digest: Bytes; request: Bytes }
export interface Decision { session: Bytes; accept: boolean; reason: string }
export interface PairSetupProposal { keyId: string; epoch: number; nonce: Bytes }
export interface CheckpointNote { note: string; previousSize: number; consistency: Bytes[] }

export type Control =
  | { case: 'join'; value: CeremonyJoin }
  | { case: 'presignProposal'; value: PresignProposal }
  | { case: 'signProposal'; value: SignProposal }
  | { case: 'decision'; value: Decision }
  | { case: 'pairSetupProposal'; value: PairSetupProposal }
  | { case: 'ack'; value: CeremonyAck }
  | { case: 'checkpoint'; value: CheckpointNote };

export const CONTROL_PROTOCOL = 'potluck/control/v1';

export function encodeControl(c: Control): Uint8Array {
  return ControlType.encode(ControlType.create({ [c.case]: c.value })).finish();
}

const bytesOr = (v: unknown): Uint8Array => (v instanceof Uint8Array ? new Uint8Array(v.buffer, v.byteOffset, v.length) : new Uint8Array(0));

/** Throws DecodeError naming the field. */
export function decodeControl(bytes: Uint8Array): Control {
  const m = strictDecode(ControlType, bytes, 'control') as unknown as Record<string, Record<string, unknown>> & { body?: string };
  const v = m.body ? m[m.body] : undefined;
  if (!m.body || !v) throw new DecodeError('control', 'no body');
  const str = (k: string) => (typeof v[k] === 'string' ? (v[k] as string) : '');
  const num = (k: string) => (typeof v[k] === 'number' ? (v[k] as number) : 0);
  const nums = (k: string) => (Array.isArray(v[k]) ? (v[k] as number[]).slice() : []);
  switch (m.body) {
    case 'join':
      return { case: 'join', value: { kind: str('kind'), keyId: str('keyId'), nonce: exactBytes(bytesOr(v.nonce), 32, 'join.nonce'), params: bytesOr(v.params) } };
    case 'ack':
      return { case: 'ack', value: { kind: str('kind'), keyId: str('keyId'), epoch: num('epoch'), dkgSessionId: exactBytes(bytesOr(v.dkgSessionId), 32, 'ack.dkgSessionId'), publicKey: exactBytes(bytesOr(v.publicKey), 33, 'ack.publicKey') } };
    case 'presignProposal':
      return { case: 'presignProposal', value: { keyId: str('keyId'), epoch: num('epoch'), signers: nums('signers'), owner: num('owner'), nonce: exactBytes(bytesOr(v.nonce), 32, 'presignProposal.nonce') } };
    case 'signProposal':
      return {
        case: 'signProposal',
        value: {
          keyId: str('keyId'), epoch: num('epoch'), signers: nums('signers'),
          presignature: exactBytes(bytesOr(v.presignature), 32, 'signProposal.presignature'),
          digest: exactBytes(bytesOr(v.digest), 32, 'signProposal.digest'), request: bytesOr(v.request),
        },
      };
    case 'decision':
      return { case: 'decision', value: { session: exactBytes(bytesOr(v.session), 32, 'decision.session'), accept: v.accept === true, reason: str('reason') } };
    case 'checkpoint': {
      const size = v.previousSize;
      const previousSize = typeof size === 'number' ? size : typeof size === 'object' && size !== null ? Number(String(size)) : 0;
      if (!Number.isSafeInteger(previousSize)) throw new DecodeError('checkpoint', 'previousSize out of range');
      const note = str('note');
      if (note.length > 4096) throw new DecodeError('checkpoint', `note of ${note.length} characters`);
      const consistency = Array.isArray(v.consistency) ? (v.consistency as unknown[]).map((b, i) => exactBytes(bytesOr(b), 32, `checkpoint.consistency[${i}]`)) : [];
      if (consistency.length > 64) throw new DecodeError('checkpoint', 'consistency proof too long');
      return { case: 'checkpoint', value: { note, previousSize, consistency } };
    }
    case 'pairSetupProposal':
      return { case: 'pairSetupProposal', value: { keyId: str('keyId'), epoch: num('epoch'), nonce: exactBytes(bytesOr(v.nonce), 32, 'pairSetupProposal.nonce') } };
    default:
      throw new DecodeError('control', `unknown body ${m.body}`);
  }
}
