import { ed25519 } from '@noble/curves/ed25519.js';
import { publicKeyFromRaw } from '@libp2p/crypto/keys';
import type { PrivateKey, PublicKey } from '@libp2p/interface';
import { DecodeError } from '../crypto/errors.ts';
import { exactBytes } from '../crypto/scalar-point.ts';
import { DropError } from '../protocol/errors.ts';
import type protobuf from 'protobufjs/light.js';
import { EnvelopeType } from '../protocol/messages.ts';
import type { ReplayGuard } from './replay-guard.ts';

export { ReplayGuard } from './replay-guard.ts';

/**
 * Signed envelopes (spec §2.0 "Transport envelope", §4.3.7): every protocol message travels
 * inside one, bound to the cluster definition hash, the protocol, the session and the sender,
 * and signed with the sender's Ed25519 identity key. Anything that fails here is dropped
 * (DropError), never aborted on: an unauthenticated message must not end a session (TOB-SILA-14).
 */
export interface EnvelopeFields {
  clusterHash: Uint8Array;
  protocol: string;
  session: Uint8Array;
  from: number;
  /** 0 = broadcast. */
  to: number;
  seq: number;
  payload: Uint8Array;
}

export const ENVELOPE_VERSION = 1;
export const MAX_PAYLOAD_BYTES = 2 << 20; // protocol messages are ≤ ~50 KB; a sign proposal carrying blobs is 128 KiB per blob (issue 4)
/**
 * Envelope bytes around the payload: version (2) + cluster hash (34) + protocol (2 + its length)
 * + session (34) + from, to (≤ 6 each) + seq (≤ 11) + payload header (≤ 5) + signature (66) =
 * 166 + the protocol name's length; 1024 leaves room for names of over 800 bytes.
 */
export const ENVELOPE_OVERHEAD_BYTES = 1024;
/** The largest envelope anyone may send (the mesh's frame limit too). */
export const MAX_ENVELOPE_BYTES = MAX_PAYLOAD_BYTES + ENVELOPE_OVERHEAD_BYTES;

const encodeUnsigned = (f: EnvelopeFields): Uint8Array =>
  EnvelopeType.encode(EnvelopeType.create({ version: ENVELOPE_VERSION, ...f, signature: new Uint8Array(0) })).finish();

/**
 * Sign with the sender's identity: its libp2p Ed25519 key (OpenSSL through @libp2p/crypto, about
 * 10× faster than pure JS, see docs/performance.md) or a raw 32-byte secret key (noble; tests).
 */
export function sealEnvelope(fields: EnvelopeFields, key: Uint8Array | PrivateKey): Uint8Array {
  if (!Number.isSafeInteger(fields.seq) || fields.seq < 0) throw new RangeError('seq must be a non-negative safe integer');
  const unsigned = encodeUnsigned(fields);
  let signature: Uint8Array;
  if (key instanceof Uint8Array) signature = ed25519.sign(unsigned, key);
  else {
    if (key.type !== 'Ed25519') throw new RangeError('envelopes are signed with Ed25519 identity keys');
    const s = key.sign(unsigned);
    if (!(s instanceof Uint8Array)) throw new Error('Ed25519 signing must be synchronous');
    signature = s;
  }
  return EnvelopeType.encode(EnvelopeType.create({ version: ENVELOPE_VERSION, ...fields, signature })).finish();
}

export interface OpenOptions {
  clusterHash: Uint8Array;
  /** The sender's Ed25519 public key for a party index in this session, if it is a member. */
  publicKeyOf: (from: number) => Uint8Array | undefined;
  /** The receiving party's index (a p2p envelope for someone else is dropped). */
  self: number;
  replay: ReplayGuard;
  /**
   * The largest payload accepted for this protocol, session and message kind, and what to call it
   * in the reason (e.g. "dkls23/presign/v1 signMultiply"); undefined if the protocol is not spoken
   * here. Checked before the signature: a size check is far cheaper than Ed25519 over 2 MiB.
   */
  payloadLimit: (protocol: string, session: Uint8Array, payload: Uint8Array) => { max: number; what: string } | undefined;
}

// Strict RFC 8032 verification (OpenSSL via @libp2p/crypto); key objects cached per member.
const verifiers = new Map<string, PublicKey>();
function verifierOf(raw: Uint8Array): PublicKey {
  const k = Buffer.from(raw).toString('hex');
  let v = verifiers.get(k);
  if (!v) {
    v = publicKeyFromRaw(raw);
    if (verifiers.size > 4096) verifiers.clear();
    verifiers.set(k, v);
  }
  return v;
}

/** Field 9 (signature, 64 bytes) closes a canonical envelope: tag 0x4a, length 0x40, then the signature. */
const SIGNATURE_FIELD_BYTES = 2 + 64;

/**
 * Verify and unwrap. Throws DropError for anything unauthenticated, misaddressed or replayed.
 * Cheapest checks first: the size, a plain decode (no copy of the payload), membership and the
 * payload limit; only then the canonical-encoding check (a re-encode: tens of ms for 2 MiB) and
 * Ed25519 over the bytes before the signature field.
 */
export function openEnvelope(bytes: Uint8Array, opts: OpenOptions): EnvelopeFields {
  if (bytes.length > MAX_ENVELOPE_BYTES) throw new DropError('decode', `envelope of ${bytes.length} bytes exceeds the limit of ${MAX_ENVELOPE_BYTES} bytes`);
  let m: { version: number; clusterHash: Uint8Array; protocol: string; session: Uint8Array; from: number; to: number; seq: number | { toNumber(): number }; payload: Uint8Array; signature: Uint8Array };
  try {
    try {
      m = EnvelopeType.decode(bytes) as unknown as typeof m;
    } catch (e) {
      throw new DecodeError('envelope', `malformed protobuf (${(e as Error).message.slice(0, 80)})`);
    }
    exactBytes(m.signature, 64, 'envelope.signature');
    exactBytes(m.session, 32, 'envelope.session');
  } catch (e) {
    if (e instanceof DecodeError) throw new DropError('decode', e.message);
    throw e;
  }
  const seq = typeof m.seq === 'number' ? m.seq : m.seq.toNumber();
  if (m.version !== ENVELOPE_VERSION) throw new DropError('decode', `unsupported envelope version ${m.version}`);
  const pk = opts.publicKeyOf(m.from);
  if (!pk) throw new DropError('unexpected-message', `sender index ${m.from} is not a member of this session`);
  // Unauthenticated until the signature verifies, so no culprit; but far cheaper than verifying.
  const limit = opts.payloadLimit(m.protocol, m.session, m.payload);
  if (!limit) throw new DropError('unexpected-message', `protocol "${m.protocol.slice(0, 64)}" is not spoken here`);
  if (m.payload.length > limit.max) throw new DropError('decode', `${limit.what} payload of ${m.payload.length} bytes exceeds its limit of ${limit.max} bytes`);
  // Strict decoding, as everywhere: the bytes must be the canonical encoding (messages.ts strictDecode).
  if (Buffer.compare(EnvelopeType.encode(m as unknown as protobuf.Message).finish(), bytes) !== 0) throw new DropError('decode', 'envelope: non-canonical encoding or unknown fields');
  const fields: EnvelopeFields = { clusterHash: m.clusterHash, protocol: m.protocol, session: m.session, from: m.from, to: m.to, seq, payload: m.payload };
  // Canonical, so the signature is the last field and what precedes it is the signed encoding.
  const signed = bytes.subarray(0, bytes.length - SIGNATURE_FIELD_BYTES);
  let ok = false;
  try {
    const v = verifierOf(pk).verify(signed, m.signature);
    ok = v === true;
  } catch {
    ok = false;
  }
  // Until the signature verifies, nothing in the envelope is attributable: no culprit.
  if (!ok) throw new DropError('unexpected-message', 'bad envelope signature');
  if (Buffer.compare(Buffer.from(m.clusterHash), Buffer.from(opts.clusterHash)) !== 0) throw new DropError('session-id', 'envelope is for another cluster definition', m.from);
  if (m.to !== 0 && m.to !== opts.self) throw new DropError('unexpected-message', `envelope addressed to party ${m.to}`, m.from);
  const replay = opts.replay.check(m.from, seq);
  if (replay === 'replay') throw new DropError('unexpected-message', 'replayed envelope', m.from);
  if (replay === 'below-window') throw new DropError('unexpected-message', `envelope seq ${seq} is at or below the replay window's floor ${opts.replay.floorOf(m.from)}`, m.from);
  return fields;
}
