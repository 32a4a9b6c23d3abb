import protobuf from 'protobufjs/light.js';
import descriptor from './gen/potluck.json' with { type: 'json' };
import { DecodeError } from '../crypto/errors.ts';

/**
 * Codecs for proto/potluck.proto. Decoding is strict: the bytes must parse, must re-encode to
 * exactly themselves (no unknown, repeated or out-of-order fields, no non-minimal varints), and
 * every failure is a DecodeError. Field lengths are checked by the protocol that reads them.
 */
const root = protobuf.Root.fromJSON(descriptor as protobuf.INamespace);
export const ProtocolMessageType = root.lookupType('potluck.v1.ProtocolMessage');
export const KeyShareType = root.lookupType('potluck.v1.KeyShare');
export const PresignatureType = root.lookupType('potluck.v1.Presignature');
export const OldPublicDataType = root.lookupType('potluck.v1.OldPublicData');
export const SealedKeyShareType = root.lookupType('potluck.v1.SealedKeyShare');
export const EnvelopeType = root.lookupType('potluck.v1.Envelope');
export const ClusterDefinitionType = root.lookupType('potluck.v1.ClusterDefinition');
export const ControlType = root.lookupType('potluck.v1.Control');
export const SigningRequestType = root.lookupType('potluck.v1.SigningRequest');
export const SignedAuditEntryType = root.lookupType('potluck.v1.SignedAuditEntry');
export const AuditEntryType = root.lookupType('potluck.v1.AuditEntry');
export const ApprovalType = root.lookupType('potluck.v1.Approval');
export const CertificateType = root.lookupType('potluck.v1.Certificate');
export const CheckpointReplyType = root.lookupType('potluck.v1.CheckpointReply');

type Bytes = Uint8Array;
export interface KeygenCommit { instanceId: Bytes; sessionNonce: Bytes; commitment: Bytes }
export interface KeygenReveal { sessionId: Bytes; echo: Bytes; feldman: Bytes; decommitment: Bytes; proofs: Bytes; oldPublic: Bytes }
export interface BaseOtChoice { sessionId: Bytes; points: Bytes }
export interface KeygenShare { sessionId: Bytes; echo: Bytes; share: Bytes; otReply: Bytes; pprf: Bytes; zeroSeed: Bytes }
export interface KeygenConfirm { sessionId: Bytes; echo: Bytes; publicKey: Bytes; publicShare: Bytes; proof: Bytes }
export interface SignCommit { instanceId: Bytes; sessionNonce: Bytes; commitment: Bytes }
export interface SignExtension { sessionId: Bytes; u: Bytes; xTilde: Bytes; vTilde: Bytes; echo: Bytes }
export interface SignMultiply {
  sessionId: Bytes; echo: Bytes; aTilde: Bytes; etaPrime: Bytes; mu: Bytes;
  pk: Bytes; bigR: Bytes; blind: Bytes; gammaU: Bytes; gammaV: Bytes; psi: Bytes;
}
export interface SignPartial { sessionId: Bytes; digest: Bytes; u: Bytes; w: Bytes }
export interface PairSetupNonce { instanceId: Bytes; sessionNonce: Bytes }
export interface PairSetupReply { sessionId: Bytes; otReply: Bytes; pprf: Bytes; zeroSeed: Bytes }

export interface BodyMap {
  keygenCommit: KeygenCommit;
  keygenReveal: KeygenReveal;
  baseOtChoice: BaseOtChoice;
  keygenShare: KeygenShare;
  keygenConfirm: KeygenConfirm;
  signCommit: SignCommit;
  signExtension: SignExtension;
  signMultiply: SignMultiply;
  signPartial: SignPartial;
  pairSetupNonce: PairSetupNonce;
  pairSetupReply: PairSetupReply;
}
export type BodyCase = keyof BodyMap;
export type Body = { [K in BodyCase]: { case: K; value: BodyMap[K] } }[BodyCase];

const EMPTY = new Uint8Array(0);

/** Fill absent proto3 bytes fields with empty arrays and turn Buffers into plain views. */
function normalize(type: protobuf.Type, obj: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of type.fieldsArray) {
    const v = obj[f.name];
    if (f.type === 'bytes' && !f.repeated) out[f.name] = v instanceof Uint8Array ? new Uint8Array(v.buffer, v.byteOffset, v.length) : EMPTY;
    else out[f.name] = v;
  }
  return out;
}

export function encodeBody(body: Body): Uint8Array {
  return ProtocolMessageType.encode(ProtocolMessageType.create({ [body.case]: body.value })).finish();
}

/** Strict decode of a ProtocolMessage. Throws DecodeError only. */
export function decodeBody(bytes: Uint8Array): Body {
  const msg = strictDecode(ProtocolMessageType, bytes, 'message') as unknown as Record<string, unknown>;
  const which = (msg as { body?: string }).body;
  if (!which) throw new DecodeError('message', 'no body');
  const type = ProtocolMessageType.fields[which]!.resolvedType as protobuf.Type;
  return { case: which as BodyCase, value: normalize(type, msg[which] as Record<string, unknown>) } as unknown as Body;
}

/** Decode and require canonical re-encoding. */
export function strictDecode(type: protobuf.Type, bytes: Uint8Array, what: string): protobuf.Message {
  let msg: protobuf.Message;
  try {
    msg = type.decode(bytes);
  } catch (e) {
    throw new DecodeError(what, `malformed protobuf (${(e as Error).message.slice(0, 80)})`);
  }
  let again: Uint8Array;
  try {
    again = type.encode(msg).finish();
  } catch {
    throw new DecodeError(what, 'does not re-encode');
  }
  // Buffer.compare is a memcmp: a per-byte JS callback took ~200 ms for a 2 MiB message under load.
  if (Buffer.compare(again, bytes) !== 0) throw new DecodeError(what, 'non-canonical encoding or unknown fields');
  return msg;
}
