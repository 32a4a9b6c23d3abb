import { sha256 } from '@noble/hashes/sha2.js';
import type { PrivateKey } from '@libp2p/interface';
import type protobuf from 'protobufjs/light.js';
import { DecodeError } from '../crypto/errors.ts';
import { AbortError, ProtocolError } from '../protocol/errors.ts';
import { signerOf, verifyEd25519, type Signer } from '../cluster/signing.ts';
import { AuditEntryType, SignedAuditEntryType, decodeBody, strictDecode } from '../protocol/messages.ts';
import { leafHash } from './merkle.ts';

/**
 * Audit log entries (issue 5; proto `AuditEntry`, `SignedAuditEntry`). Each entry is signed by its
 * author's Ed25519 identity key over "potluck/audit-entry/v1" ‖ cluster_hash ‖ entry, and is one
 * RFC 9162 leaf: leaf hash = SHA-256(0x00 ‖ SignedAuditEntry bytes). `prev` chains the leaf hashes.
 * Nothing secret is ever recorded: see `auditMessageOf` for the split of protocol messages.
 */
type Bytes = Uint8Array;
export interface AuditPolicy { sha256: Bytes; json: string }
export interface AuditRequest {
  session: Bytes; role: string; requesterOrg: string; keyId: string; epoch: number; signers: number[]; signerOrgs: string[];
  request: Bytes; blobHashes: Bytes[]; digest: Bytes;
}
export interface AuditReason { rule: string; ok: boolean; detail: string }
export interface AuditVerdict { session: Bytes; digest: Bytes; approve: boolean; reasons: AuditReason[]; policySha256: Bytes; request: Bytes; role: string; requestId: Bytes }
export interface AuditMessage {
  session: Bytes; protocol: string; sent: boolean; from: number; to: number; kind: string;
  payload: Bytes; payloadSha256: Bytes; publicValues: Bytes;
}
export interface AuditSessionEnd {
  session: Bytes; protocol: string; ok: boolean; errorClass: string; check: string; culprit: number; message: string; evidence: Bytes; output: Bytes;
}
export interface AuditSignature { session: Bytes; digest: Bytes; r: Bytes; s: Bytes; yParity: number; address: string; txHash: Bytes }
export interface AuditBurn { keyId: string; peer: number; peerOrg: string; session: Bytes; check: string }
export interface AuditKey {
  keyId: string; epoch: number; kind: string; dkgSession: Bytes; publicKey: Bytes; threshold: number; parties: Bytes[]; publicShares: Bytes[];
}
export interface AuditCosignature { origin: string; size: number; root: Bytes; authorSignature: Bytes; cosignature: Bytes }
export interface AuditApproval { approval: Bytes }
export interface AuditCertificate { session: Bytes; certificate: Bytes }
export interface AuditIncident { kind: string; detail: string; evidence: Bytes }

export interface RecordMap {
  policy: AuditPolicy; request: AuditRequest; verdict: AuditVerdict; message: AuditMessage; sessionEnd: AuditSessionEnd;
  signature: AuditSignature; burn: AuditBurn; key: AuditKey; cosignature: AuditCosignature;
  approval: AuditApproval; certificate: AuditCertificate; incident: AuditIncident;
}
export type RecordCase = keyof RecordMap;
/** One of the oneof cases, decoded (every field present, defaults filled in). */
export type AuditRecord = { [K in RecordCase]: { case: K; value: RecordMap[K] } }[RecordCase];
/** What a writer passes: absent fields take their proto3 defaults. */
export type AuditRecordInput = { [K in RecordCase]: { case: K; value: Partial<RecordMap[K]> } }[RecordCase];

export interface AuditEntry {
  version: number;
  clusterHash: Bytes;
  peerId: string;
  seq: number;
  prev: Bytes;
  /** RFC 3339 UTC, informational. */
  time: string;
  record: AuditRecord;
}
export type AuditEntryInput = Omit<AuditEntry, 'version' | 'record'> & { record: AuditRecordInput };
export interface SignedAuditEntry { entry: Bytes; signature: Bytes }

export const AUDIT_ENTRY_VERSION = 1;
export const AUDIT_ENTRY_LABEL = 'potluck/audit-entry/v1';
export const ZERO_HASH = new Uint8Array(32);
const LABEL = new TextEncoder().encode(AUDIT_ENTRY_LABEL);

/** A failed audit rule, naming the log, the entry (its seq, or record index if undecodable) and the author. */
export class AuditError extends Error {
  override readonly name = 'AuditError';
  readonly rule: string;
  readonly entry: number | null;
  readonly peer: string | null;
  readonly log: string | null;
  readonly detail: string;
  constructor(rule: string, detail: string, where: { entry?: number | null; peer?: string | null; log?: string | null } = {}) {
    const at = [where.log != null ? `log ${where.log}` : null, where.entry != null ? `entry ${where.entry}` : null, where.peer != null ? `peer ${where.peer}` : null].filter(Boolean);
    super(`${at.length ? at.join(', ') + ': ' : ''}rule '${rule}' failed: ${detail}`);
    this.rule = rule;
    this.detail = detail;
    this.entry = where.entry ?? null;
    this.peer = where.peer ?? null;
    this.log = where.log ?? null;
  }
}

// ---- protobuf plumbing: drop proto3 defaults on encode (canonical), fill them in on decode ----

function clean(v: unknown): unknown {
  if (v instanceof Uint8Array) return v.length ? v : undefined;
  if (Array.isArray(v)) return v.length ? v.map((x) => (typeof x === 'object' && !(x instanceof Uint8Array) ? clean(x) ?? {} : x)) : undefined;
  if (v === 0 || v === '' || v === false || v === null || v === undefined) return undefined;
  if (typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      const c = clean(x);
      if (c !== undefined) out[k] = c;
    }
    return out;
  }
  return v;
}

const asNumber = (v: unknown, what: string): number => {
  const n = typeof v === 'number' ? v : typeof v === 'object' && v !== null && 'toNumber' in v ? (v as { toNumber(): number; high: number }).toNumber() : 0;
  if (!Number.isSafeInteger(n) || n < 0) throw new DecodeError(what, 'out of range');
  return n;
};
const copy = (b: Uint8Array): Uint8Array => new Uint8Array(b);

/** Plain object with every field of `type` (defaults for absent ones), nested messages included. */
function normalize(type: protobuf.Type, obj: Record<string, unknown>, what: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of type.fieldsArray) {
    if (f.partOf) continue; // oneof members are handled by the caller
    const v = obj[f.name];
    const one = (x: unknown): unknown => {
      if (f.resolvedType) return normalize(f.resolvedType as protobuf.Type, (x ?? {}) as Record<string, unknown>, `${what}.${f.name}`);
      switch (f.type) {
        case 'bytes': return x instanceof Uint8Array ? copy(x) : new Uint8Array(0);
        case 'string': return typeof x === 'string' ? x : '';
        case 'bool': return x === true;
        case 'uint64': return asNumber(x ?? 0, `${what}.${f.name}`);
        default: return typeof x === 'number' ? x : 0;
      }
    };
    out[f.name] = f.repeated ? (Array.isArray(v) ? v.map(one) : []) : one(v);
  }
  return out;
}

export function encodeAuditEntry(e: AuditEntryInput): Uint8Array {
  if (!Number.isSafeInteger(e.seq) || e.seq < 0) throw new RangeError('seq must be a non-negative safe integer');
  const body = clean({ version: AUDIT_ENTRY_VERSION, clusterHash: e.clusterHash, peerId: e.peerId, seq: e.seq, prev: e.prev, time: e.time }) as Record<string, unknown>;
  body[e.record.case] = clean(e.record.value) ?? {};
  return AuditEntryType.encode(AuditEntryType.create(body)).finish();
}

/** Strict: canonical protobuf, version 1, a record, 32-byte cluster hash and prev. Throws DecodeError. */
export function decodeAuditEntry(bytes: Uint8Array): AuditEntry {
  const m = strictDecode(AuditEntryType, bytes, 'audit entry') as unknown as Record<string, unknown> & { record?: string };
  const which = m.record as RecordCase | undefined;
  if (!which) throw new DecodeError('audit entry', 'no record');
  const base = normalize(AuditEntryType, m, 'audit entry') as unknown as Omit<AuditEntry, 'record'>;
  if (base.version !== AUDIT_ENTRY_VERSION) throw new DecodeError('audit entry.version', `unsupported version ${base.version}`);
  if (base.clusterHash.length !== 32) throw new DecodeError('audit entry.clusterHash', 'must be 32 bytes');
  if (base.prev.length !== 32) throw new DecodeError('audit entry.prev', 'must be 32 bytes');
  if (!base.peerId) throw new DecodeError('audit entry.peerId', 'empty');
  const type = AuditEntryType.fields[which]!.resolvedType as protobuf.Type;
  const value = normalize(type, m[which] as Record<string, unknown>, `audit entry.${which}`);
  return { ...base, record: { case: which, value } as unknown as AuditRecord };
}

export function encodeSignedEntry(s: SignedAuditEntry): Uint8Array {
  return SignedAuditEntryType.encode(SignedAuditEntryType.create(clean(s) as Record<string, unknown>)).finish();
}

/** Strict: canonical protobuf with a non-empty entry and a 64-byte signature. Throws DecodeError. */
export function decodeSignedEntry(bytes: Uint8Array): SignedAuditEntry {
  const m = normalize(SignedAuditEntryType, strictDecode(SignedAuditEntryType, bytes, 'signed audit entry') as unknown as Record<string, unknown>, 'signed audit entry') as unknown as SignedAuditEntry;
  if (m.entry.length === 0) throw new DecodeError('signed audit entry.entry', 'empty');
  if (m.signature.length !== 64) throw new DecodeError('signed audit entry.signature', `must be 64 bytes, got ${m.signature.length}`);
  return m;
}

/** The signed message: "potluck/audit-entry/v1" ‖ cluster_hash ‖ entry bytes. */
export function entrySigningMessage(clusterHash: Uint8Array, entry: Uint8Array): Uint8Array {
  const m = new Uint8Array(LABEL.length + clusterHash.length + entry.length);
  m.set(LABEL);
  m.set(clusterHash, LABEL.length);
  m.set(entry, LABEL.length + clusterHash.length);
  return m;
}

export { signerOf, verifyEd25519, type Signer } from '../cluster/signing.ts';

/** Encode and sign one entry; returns the SignedAuditEntry bytes (the Merkle leaf). */
export function signEntry(fields: AuditEntryInput, key: PrivateKey | Uint8Array | Signer): Uint8Array {
  const entry = encodeAuditEntry(fields);
  const sign = typeof key === 'function' ? key : signerOf(key);
  const signature = sign(entrySigningMessage(fields.clusterHash, entry));
  if (signature.length !== 64) throw new RangeError('Ed25519 signatures are 64 bytes');
  return encodeSignedEntry({ entry, signature });
}

/** Does the entry carry a valid signature by `publicKeyRaw` over its own cluster hash? Never throws. */
export function verifyEntry(signed: SignedAuditEntry | Uint8Array, publicKeyRaw: Uint8Array): boolean {
  try {
    const s = signed instanceof Uint8Array ? decodeSignedEntry(signed) : signed;
    const e = decodeAuditEntry(s.entry);
    return verifyEd25519(publicKeyRaw, entrySigningMessage(e.clusterHash, s.entry), s.signature);
  } catch {
    return false;
  }
}

/** RFC 9162 leaf hash of a SignedAuditEntry; the next entry's `prev`. */
export const entryLeafHash = (signedBytes: Uint8Array): Uint8Array => leafHash(signedBytes);

// ---- what of a protocol message enters the log ----

/**
 * Broadcast kinds whose every field is public (commitments, Feldman vectors, Schnorr proofs, public
 * shares, flight-4 u_i/w_i): logged whole. Every other kind (OT messages, DKG shares and zero seeds,
 * RVOLE replies) is logged as its SHA-256 only; signMultiply adds its public pk_i ‖ R_i.
 */
export const PUBLIC_KINDS: ReadonlySet<string> = new Set(['keygenCommit', 'keygenReveal', 'keygenConfirm', 'signCommit', 'signPartial']);

export function auditMessageOf(m: { session: Uint8Array; protocol: string; sent: boolean; from: number; to: number; payload: Uint8Array }): AuditMessage {
  let kind = '', publicValues: Uint8Array = new Uint8Array(0);
  try {
    const body = decodeBody(m.payload);
    kind = body.case;
    if (body.case === 'signMultiply' && body.value.pk.length === 33 && body.value.bigR.length === 33) {
      publicValues = new Uint8Array(66);
      publicValues.set(body.value.pk);
      publicValues.set(body.value.bigR, 33);
    }
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e; // malformed input from a peer: digest only
  }
  const whole = PUBLIC_KINDS.has(kind);
  return {
    session: m.session, protocol: m.protocol, sent: m.sent, from: m.from, to: m.to, kind,
    payload: whole ? m.payload : new Uint8Array(0), payloadSha256: whole ? new Uint8Array(0) : sha256(m.payload), publicValues,
  };
}

/** The AuditSessionEnd of a session that finished (`output`) or failed (`error`). */
export function sessionEndOf(session: Uint8Array, protocol: string, result: { output?: Uint8Array; error?: Error; evidence?: Uint8Array }): AuditSessionEnd {
  const e = result.error;
  const pe = e instanceof ProtocolError ? e : undefined;
  return {
    session, protocol, ok: !e, errorClass: e?.name ?? '', check: pe?.check ?? '', culprit: pe?.culprit ?? 0, message: e?.message ?? '',
    evidence: result.evidence ?? (e instanceof AbortError ? e.evidence ?? new Uint8Array(0) : new Uint8Array(0)),
    output: result.output ?? new Uint8Array(0),
  };
}
