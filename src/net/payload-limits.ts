/**
 * The largest payload each protocol message kind can have (issue 11, "per-type size limits taken
 * from the exact message lengths"). Every field of a protocol message has an exact length fixed
 * by its kind and the session's shape (parties n, threshold t, old holders n_old), as the
 * decoders in protocol/ check; the limit of a kind is the real protobuf encoding of that kind
 * with every field at its longest, so it follows the parameters instead of restating them.
 *
 * The session host checks these before an envelope's signature is verified and before anything
 * is buffered: an oversized envelope is dropped (never aborted on) without costing an Ed25519
 * verification or a byte of buffer. A well-formed message is never larger than its limit; a
 * smaller malformed one still reaches the protocol machine, which aborts on it with evidence.
 */
import { SCHNORR_PROOF_BYTES } from '../crypto/schnorr.ts';
import { BASE_OT_CHOICE_BYTES, BASE_OT_REPLY_BYTES } from '../ot/endemic-ot.ts';
import { PPRF_BYTES } from '../ot/pprf.ts';
import { U_BYTES, VTILDE_BYTES } from '../ot/softspoken.ts';
import { ATILDE_BYTES } from '../mul/rvole.ts';
import { OldPublicDataType, ProtocolMessageType, encodeBody, type Body, type BodyCase } from '../protocol/messages.ts';

/** The protocols a peer speaks, and the message kinds each one uses (protocol/dkg.ts, sign.ts, pair-setup.ts). */
export const PROTOCOL_KINDS: Readonly<Record<string, readonly BodyCase[]>> = {
  'dkls23/dkg/v1': ['keygenCommit', 'keygenReveal', 'baseOtChoice', 'keygenShare', 'keygenConfirm'],
  'dkls23/presign/v1': ['signCommit', 'signExtension', 'signMultiply'],
  'dkls23/online/v1': ['signPartial'],
  'dkls23/pair-setup/v1': ['pairSetupNonce', 'baseOtChoice', 'pairSetupReply'],
};

/** What the sizes depend on. Only the DKG's round-2 broadcast varies: t Feldman points and proofs, n_old old public shares. */
export interface SessionShape {
  /** Parties of the session. */
  parties: number;
  /** Threshold of the key the session makes or uses (≤ parties). */
  threshold: number;
  /** Holders of the old key (reshare's old public data), ≤ the cluster's members. */
  oldParties: number;
}

/** Key names are 1–64 of [a-z0-9_-] (keygen's rule), so at most 64 bytes in the old public data. */
export const MAX_KEY_ID_BYTES = 64;
const U32_MAX = 0xffff_ffff; // the longest uint32 varint (5 bytes)

const z = (n: number) => new Uint8Array(n);

/** Every field of `kind` at its longest, as the protocol's decoder admits it. */
function maximal(kind: BodyCase, s: SessionShape): Body {
  switch (kind) {
    case 'keygenCommit':
      return { case: kind, value: { instanceId: z(32), sessionNonce: z(32), commitment: z(32) } };
    case 'keygenReveal': {
      // Reshare: the old public data, byte-identical from every dealer (proto OldPublicData).
      const oldPublic = OldPublicDataType.encode(OldPublicDataType.create({ keyId: 'k'.repeat(MAX_KEY_ID_BYTES), epoch: U32_MAX, threshold: U32_MAX, publicKey: z(33), publicShares: z(33 * s.oldParties) })).finish();
      return { case: kind, value: { sessionId: z(32), echo: z(32), feldman: z(33 * s.threshold), decommitment: z(32), proofs: z(SCHNORR_PROOF_BYTES * s.threshold), oldPublic } };
    }
    case 'baseOtChoice':
      return { case: kind, value: { sessionId: z(32), points: z(BASE_OT_CHOICE_BYTES) } };
    case 'keygenShare':
      return { case: kind, value: { sessionId: z(32), echo: z(32), share: z(32), otReply: z(BASE_OT_REPLY_BYTES), pprf: z(PPRF_BYTES), zeroSeed: z(32) } };
    case 'keygenConfirm':
      return { case: kind, value: { sessionId: z(32), echo: z(32), publicKey: z(33), publicShare: z(33), proof: z(SCHNORR_PROOF_BYTES) } };
    case 'signCommit':
      return { case: kind, value: { instanceId: z(32), sessionNonce: z(32), commitment: z(32) } };
    case 'signExtension':
      return { case: kind, value: { sessionId: z(32), u: z(U_BYTES), xTilde: z(16), vTilde: z(VTILDE_BYTES), echo: z(32) } };
    case 'signMultiply':
      return {
        case: kind,
        value: { sessionId: z(32), echo: z(32), aTilde: z(ATILDE_BYTES), etaPrime: z(32), mu: z(64), pk: z(33), bigR: z(33), blind: z(32), gammaU: z(33), gammaV: z(33), psi: z(32) },
      };
    case 'signPartial':
      return { case: kind, value: { sessionId: z(32), digest: z(32), u: z(32), w: z(32) } };
    case 'pairSetupNonce':
      return { case: kind, value: { instanceId: z(32), sessionNonce: z(32) } };
    case 'pairSetupReply':
      return { case: kind, value: { sessionId: z(32), otReply: z(BASE_OT_REPLY_BYTES), pprf: z(PPRF_BYTES), zeroSeed: z(32) } };
  }
}

const cache = new Map<string, number>();

/** Encoded size of the longest `kind` message for this shape (bytes). */
export function maxBodyBytes(kind: BodyCase, shape: SessionShape): number {
  const key = `${kind}:${shape.parties}:${shape.threshold}:${shape.oldParties}`;
  let v = cache.get(key);
  if (v === undefined) {
    v = encodeBody(maximal(kind, shape)).length;
    if (cache.size > 1024) cache.clear(); // shapes come from local sessions: a handful
    cache.set(key, v);
  }
  return v;
}

/**
 * The case of a protobuf `oneof` message from its first field tag, without decoding: enough to
 * pick a size limit. Undefined if the first field is not a length-delimited field of the type.
 */
export function peekOneofCase(fieldsById: { [k: number]: { name: string } }, bytes: Uint8Array): string | undefined {
  let tag = 0;
  for (let i = 0, shift = 0; i < 5 && i < bytes.length; i++, shift += 7) {
    tag += (bytes[i]! & 0x7f) * 2 ** shift;
    if (bytes[i]! < 0x80) return (tag & 7) === 2 ? fieldsById[Math.floor(tag / 8)]?.name : undefined;
  }
  return undefined;
}

/**
 * The payload limit of `protocol` for this payload: its kind's, or for a kind the protocol does
 * not use (which the machine aborts on, with evidence) the protocol's largest. Undefined for a
 * protocol not spoken here.
 */
export function protocolPayloadLimit(protocol: string, payload: Uint8Array, shape: SessionShape): { max: number; what: string } | undefined {
  const kinds = PROTOCOL_KINDS[protocol];
  if (!kinds) return undefined;
  const kind = peekOneofCase(ProtocolMessageType.fieldsById, payload) as BodyCase | undefined;
  if (kind && kinds.includes(kind)) return { max: maxBodyBytes(kind, shape), what: `${protocol} ${kind}` };
  return { max: Math.max(...kinds.map((k) => maxBodyBytes(k, shape))), what: `${protocol} message` };
}
