import { DecodeError } from '../crypto/errors.ts';
import { exactBytes } from '../crypto/scalar-point.ts';
import { ControlType, strictDecode } from '../protocol/messages.ts';

/** Peer control messages (proto `Control`): ceremony joins, proposals, decisions. Strictly decoded. */
type Bytes = Uint8Array;
export interface CeremonyJoin { kind: string; keyId: string; nonce: Bytes; params: Bytes }
export interface CeremonyAck { kind: string; keyId: string; epoch: number; dkgSessionId: Bytes; publicKey: Bytes }
export interface PresignProposal { keyId: string; epoch: number; signers: number[]; owner: number; nonce: Bytes }
export interface SignProposal { keyId: string; epoch: number; signers: number[]; presignature: Bytes; digest: Bytes; request: Bytes; certificate: Bytes }
/** Machine-readable decline reasons (issue 11); the text says the same for people. */
export type DeclineCode = 'policy' | 'unknown-presignature' | 'certificate' | 'busy' | 'rate-limit' | 'rollback' | '';
export interface Decision { session: Bytes; accept: boolean; reason: string; code: DeclineCode }
export interface PairSetupProposal { keyId: string; epoch: number; nonce: Bytes }
export interface CheckpointNote { note: string; previousSize: number; consistency: Bytes[]; resetSize: number; resetRoot: Bytes }
export interface ApprovalRequest { keyId: string; requestId: Bytes; request: Bytes }
export interface CheckpointReply { origin: string; size: number; root: Bytes; authorSignature: Bytes; cosignature: Bytes; conflict: boolean }

export type Control =
  | { case: 'join'; value: CeremonyJoin }
  | { case: 'presignProposal'; value: PresignProposal }
  | { case: 'signProposal'; value: SignProposal }
  | { case: 'decision'; value: Decision }
  | { case: 'pairSetupProposal'; value: PairSetupProposal }
  | { case: 'ack'; value: CeremonyAck }
  | { case: 'checkpoint'; value: CheckpointNote }
  | { case: 'approvalRequest'; value: ApprovalRequest }
  | { case: 'approval'; value: Bytes }
  | { case: 'checkpointReply'; value: CheckpointReply };

const DECLINE_CODES: readonly string[] = ['policy', 'unknown-presignature', 'certificate', 'busy', 'rate-limit', 'rollback', ''];

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
  const u64 = (k: string) => {
    const x = v[k];
    const n = typeof x === 'number' ? x : typeof x === 'object' && x !== null ? Number(String(x)) : 0;
    if (!Number.isSafeInteger(n) || n < 0) throw new DecodeError(m.body!, `${k} out of range`);
    return n;
  };
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
          digest: exactBytes(bytesOr(v.digest), 32, 'signProposal.digest'), request: bytesOr(v.request), certificate: bytesOr(v.certificate),
        },
      };
    case 'decision': {
      const code = str('code');
      if (!DECLINE_CODES.includes(code)) throw new DecodeError('decision', `unknown code "${code.slice(0, 32)}"`);
      return { case: 'decision', value: { session: exactBytes(bytesOr(v.session), 32, 'decision.session'), accept: v.accept === true, reason: str('reason').slice(0, 2048), code: code as DeclineCode } };
    }
    case 'checkpoint': {
      const previousSize = u64('previousSize');
      const note = str('note');
      if (note.length > 4096) throw new DecodeError('checkpoint', `note of ${note.length} characters`);
      const consistency = Array.isArray(v.consistency) ? (v.consistency as unknown[]).map((b, i) => exactBytes(bytesOr(b), 32, `checkpoint.consistency[${i}]`)) : [];
      if (consistency.length > 64) throw new DecodeError('checkpoint', 'consistency proof too long');
      const resetSize = u64('resetSize');
      const resetRoot = resetSize ? exactBytes(bytesOr(v.resetRoot), 32, 'checkpoint.resetRoot') : exactBytes(bytesOr(v.resetRoot), 0, 'checkpoint.resetRoot');
      return { case: 'checkpoint', value: { note, previousSize, consistency, resetSize, resetRoot } };
    }
    case 'checkpointReply': {
      const origin = str('origin');
      if (origin.length > 256) throw new DecodeError('checkpointReply', 'origin too long');
      const conflict = v.conflict === true;
      return {
        case: 'checkpointReply',
        value: {
          origin, size: u64('size'), root: exactBytes(bytesOr(v.root), 32, 'checkpointReply.root'), conflict,
          authorSignature: exactBytes(bytesOr(v.authorSignature), conflict ? 64 : 0, 'checkpointReply.authorSignature'),
          cosignature: exactBytes(bytesOr(v.cosignature), conflict ? 0 : 64, 'checkpointReply.cosignature'),
        },
      };
    }
    case 'approvalRequest':
      return { case: 'approvalRequest', value: { keyId: str('keyId'), requestId: exactBytes(bytesOr(v.requestId), 32, 'approvalRequest.requestId'), request: bytesOr(v.request) } };
    case 'approval': {
      const b = bytesOr(m.approval);
      if (b.length === 0 || b.length > 1024) throw new DecodeError('approval', `${b.length} bytes; an approval is 1..1024 bytes`);
      return { case: 'approval', value: b };
    }
    case 'pairSetupProposal':
      return { case: 'pairSetupProposal', value: { keyId: str('keyId'), epoch: num('epoch'), nonce: exactBytes(bytesOr(v.nonce), 32, 'pairSetupProposal.nonce') } };
    default:
      throw new DecodeError('control', `unknown body ${m.body}`);
  }
}
