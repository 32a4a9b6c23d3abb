import { DecodeError } from '../crypto/errors.ts';
import { exactBytes } from '../crypto/scalar-point.ts';
import { MAX_PAYLOAD_BYTES } from '../net/envelope.ts';
import { peekOneofCase } from '../net/payload-limits.ts';
import { ControlType, strictDecode } from '../protocol/messages.ts';
import { MAX_CEREMONY_PARAMS_BYTES, MAX_MEMBERS } from './ceremony-params.ts';

/** Peer control messages (proto `Control`): ceremony joins, proposals, decisions. Strictly decoded. */
type Bytes = Uint8Array;
export interface CeremonyJoin { kind: string; keyId: string; nonce: Bytes; params: Bytes }
/** `publicSharesHash` = H(S′) of the new public shares and `echo` = the DKG's round-4 echo: two holders cannot ack different outcomes (issue 12). */
export interface CeremonyAck { kind: string; keyId: string; epoch: number; dkgSessionId: Bytes; publicKey: Bytes; publicSharesHash: Bytes; echo: Bytes }
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

/**
 * Decoding limits (issue 11): the largest encoded Control of each case, in bytes. Each entry is
 * the real encoding of that case with every field at its longest, so it follows the field bounds
 * named here; a Control longer than its case's entry is refused before it is decoded, and the
 * session host refuses its envelope before verifying the signature. A new case in `Control`
 * needs an entry (the type requires one): `case: maxOf('case', { every field at its longest })`.
 */
const U32_MAX = 0xffff_ffff;
/** Names as the ceremonies allow them: kinds ≤ 16 characters ("keygen/all-acked"), key names ≤ 64. */
const MAX_KIND_CHARS = 16;
const MAX_KEY_ID_CHARS = 64;
/** A decline's reason, as the daemon writes it (a policy rule and its detail); longer ones must be cut by the sender. */
export const MAX_REASON_BYTES = 4096;
/** A checkpoint note: ≤ 4096 UTF-16 units (checked below), ≤ 3 bytes of UTF-8 each. */
const MAX_NOTE_CHARS = 4096;
const MAX_CONSISTENCY_HASHES = 64;
/** Decline codes are short words ("unknown-presignature"). */
const MAX_CODE_CHARS = 32;
/** An Approval: the fields of policy/approval.ts at their longest are well under 1 KiB. */
const MAX_APPROVAL_BYTES = 1024;
/** A certificate: at most 16 approvals (one per member). */
const MAX_CERTIFICATE_BYTES = MAX_MEMBERS * (MAX_APPROVAL_BYTES + 3);
/** A logged request: its args JSON (≤ 256 KiB, signing-request.ts) and up to 16 blob hashes, with framing. */
const MAX_LOGGED_REQUEST_BYTES = 256 * 1024 + MAX_MEMBERS * 34 + 256;
/** "potluck/<64 hex>/<peer id>". */
const MAX_ORIGIN_CHARS = 256;
const s = (n: number) => 'x'.repeat(n);
const z = (n: number) => new Uint8Array(n);
const maxOf = <K extends Control['case']>(c: K, value: Extract<Control, { case: K }>['value']): number => encodeControl({ case: c, value } as Control).length;

export const CONTROL_MAX_BYTES: { readonly [K in Control['case']]: number } = {
  join: maxOf('join', { kind: s(MAX_KIND_CHARS), keyId: s(MAX_KEY_ID_CHARS), nonce: z(32), params: z(MAX_CEREMONY_PARAMS_BYTES) }),
  ack: maxOf('ack', { kind: s(MAX_KIND_CHARS), keyId: s(MAX_KEY_ID_CHARS), epoch: U32_MAX, dkgSessionId: z(32), publicKey: z(33), publicSharesHash: z(32), echo: z(32) }),
  presignProposal: maxOf('presignProposal', { keyId: s(MAX_KEY_ID_CHARS), epoch: U32_MAX, signers: Array<number>(MAX_MEMBERS).fill(U32_MAX), owner: U32_MAX, nonce: z(32) }),
  // The request with every blob replaced by its 32-byte versioned hash, and a certificate of at most 16 approvals.
  signProposal: maxOf('signProposal', {
    keyId: s(MAX_KEY_ID_CHARS), epoch: U32_MAX, signers: Array<number>(MAX_MEMBERS).fill(U32_MAX), presignature: z(32), digest: z(32),
    request: z(MAX_LOGGED_REQUEST_BYTES), certificate: z(MAX_CERTIFICATE_BYTES),
  }),
  decision: maxOf('decision', { session: z(32), accept: true, reason: s(MAX_REASON_BYTES), code: s(MAX_CODE_CHARS) as DeclineCode }),
  pairSetupProposal: maxOf('pairSetupProposal', { keyId: s(MAX_KEY_ID_CHARS), epoch: U32_MAX, nonce: z(32) }),
  checkpoint: maxOf('checkpoint', {
    note: s(3 * MAX_NOTE_CHARS), previousSize: Number.MAX_SAFE_INTEGER, consistency: Array.from({ length: MAX_CONSISTENCY_HASHES }, () => z(32)),
    resetSize: Number.MAX_SAFE_INTEGER, resetRoot: z(32),
  }),
  // The request approvers check carries the batch's blobs (128 KiB each): bounded by the envelope's payload limit.
  approvalRequest: MAX_PAYLOAD_BYTES,
  approval: maxOf('approval', z(MAX_APPROVAL_BYTES)),
  checkpointReply: maxOf('checkpointReply', { origin: s(MAX_ORIGIN_CHARS), size: Number.MAX_SAFE_INTEGER, root: z(32), authorSignature: z(64), cosignature: z(64), conflict: true }),
};

/** The case of an encoded Control (from its first field), if it is one. */
export const controlCaseOf = (bytes: Uint8Array): Control['case'] | undefined => {
  const c = peekOneofCase(ControlType.fieldsById, bytes);
  return c !== undefined && c in CONTROL_MAX_BYTES ? (c as Control['case']) : undefined;
};

/** The size limit of an encoded Control: its case's, or the largest for an unknown case (which decoding then refuses). */
export function controlLimit(bytes: Uint8Array): { max: number; what: string } {
  const c = controlCaseOf(bytes);
  return c ? { max: CONTROL_MAX_BYTES[c], what: `control ${c}` } : { max: Math.max(...Object.values(CONTROL_MAX_BYTES)), what: 'control message' };
}

export function encodeControl(c: Control): Uint8Array {
  return ControlType.encode(ControlType.create({ [c.case]: c.value })).finish();
}

const bytesOr = (v: unknown): Uint8Array => (v instanceof Uint8Array ? new Uint8Array(v.buffer, v.byteOffset, v.length) : new Uint8Array(0));

/** Throws DecodeError naming the field. */
export function decodeControl(bytes: Uint8Array): Control {
  const limit = controlLimit(bytes);
  if (bytes.length > limit.max) throw new DecodeError('control', `${limit.what} of ${bytes.length} bytes exceeds its limit of ${limit.max} bytes`);
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
      return {
        case: 'ack',
        value: {
          kind: str('kind'), keyId: str('keyId'), epoch: num('epoch'), dkgSessionId: exactBytes(bytesOr(v.dkgSessionId), 32, 'ack.dkgSessionId'), publicKey: exactBytes(bytesOr(v.publicKey), 33, 'ack.publicKey'),
          publicSharesHash: exactBytes(bytesOr(v.publicSharesHash), 32, 'ack.publicSharesHash'), echo: exactBytes(bytesOr(v.echo), 32, 'ack.echo'),
        },
      };
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
      if (!DECLINE_CODES.includes(code)) throw new DecodeError('decision', `unknown code "${code.slice(0, MAX_CODE_CHARS)}"`);
      return { case: 'decision', value: { session: exactBytes(bytesOr(v.session), 32, 'decision.session'), accept: v.accept === true, reason: str('reason'), code: code as DeclineCode } };
    }
    case 'checkpoint': {
      const previousSize = u64('previousSize');
      const note = str('note');
      if (note.length > MAX_NOTE_CHARS) throw new DecodeError('checkpoint', `note of ${note.length} characters`);
      const consistency = Array.isArray(v.consistency) ? (v.consistency as unknown[]).map((b, i) => exactBytes(bytesOr(b), 32, `checkpoint.consistency[${i}]`)) : [];
      if (consistency.length > MAX_CONSISTENCY_HASHES) throw new DecodeError('checkpoint', 'consistency proof too long');
      const resetSize = u64('resetSize');
      const resetRoot = resetSize ? exactBytes(bytesOr(v.resetRoot), 32, 'checkpoint.resetRoot') : exactBytes(bytesOr(v.resetRoot), 0, 'checkpoint.resetRoot');
      return { case: 'checkpoint', value: { note, previousSize, consistency, resetSize, resetRoot } };
    }
    case 'checkpointReply': {
      const origin = str('origin');
      if (origin.length > MAX_ORIGIN_CHARS) throw new DecodeError('checkpointReply', 'origin too long');
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
      if (b.length === 0 || b.length > MAX_APPROVAL_BYTES) throw new DecodeError('approval', `${b.length} bytes; an approval is 1..${MAX_APPROVAL_BYTES} bytes`);
      return { case: 'approval', value: b };
    }
    case 'pairSetupProposal':
      return { case: 'pairSetupProposal', value: { keyId: str('keyId'), epoch: num('epoch'), nonce: exactBytes(bytesOr(v.nonce), 32, 'pairSetupProposal.nonce') } };
    default:
      throw new DecodeError('control', `unknown body ${m.body}`);
  }
}
