/**
 * Approvals and approval certificates (issue 11). Before any presignature is spent, the requester
 * gathers signed approvals of the exact request from c = ⌈(n+f+1)/2⌉ of the key's n holders,
 * itself included. An approval names the slot it claims (chain, key address, nonce), the content
 * (everything but gas and fees), the fees, the digest and the approver, and is signed by the
 * approver's identity key. Any two certificates share f + 1 approvers, so while at most f are
 * faulty one honest member approved both, and an honest member approves one content per slot:
 * at most one content per nonce is ever certified. Beyond f, two approvals by one member for
 * different content at one slot are signed evidence against it (`conflictingApprovals`).
 * Pure: no clock, no storage; the peer and the auditor both use it.
 */
import { bytesToHex, hexToBytes, type Hex } from 'viem';
import { signerOf, verifyEd25519, type Signer } from '../cluster/signing.ts';
import { DecodeError } from '../crypto/errors.ts';
import { exactBytes } from '../crypto/scalar-point.ts';
import { ApprovalType, CertificateType, strictDecode } from '../protocol/messages.ts';
import { BlockPayloadError, blockSigningHash, decodeBlockPayloadArgs } from './block-payload.ts';
import { contentKey } from './equivocation.ts';
import { decodeTransactionArgs, digestOf } from './tx-policy.ts';

export type ApprovalKind = 'transaction' | 'block-payload' | 'raw-digest';

/** What is approved: derived from the request alone, so every approver derives the same. */
export interface ApprovalSubject {
  kind: ApprovalKind;
  keyAddress: Hex;
  chainId: number;
  nonce: number;
  /** Transactions: `contentKey` (equal iff only gas and fees differ); otherwise the digest. */
  contentKey: Uint8Array;
  gas: string;
  maxFeePerGas: string;
  maxPriorityFeePerGas: string;
  maxFeePerBlobGas: string;
  digest: Uint8Array;
}

export interface ApprovalFields extends ApprovalSubject {
  clusterHash: Uint8Array;
  approverOrg: string;
  /** The approving member's peer id. */
  approver: string;
  /** The approval round answered (32 B). */
  requestId: Uint8Array;
}

export interface Approval extends ApprovalFields {
  signature: Uint8Array;
  /** The encoded, signed Approval exactly as received: what certificates and logs carry. */
  bytes: Uint8Array;
}

export class ApprovalError extends Error {
  override readonly name = 'ApprovalError';
}

/** Why a certificate is refused; `reason` is stable for tests, callers and the auditor. */
export type CertificateProblem = 'missing' | 'malformed' | 'short' | 'digest' | 'signature' | 'approver' | 'duplicate' | 'inconsistent' | 'cluster';
export class CertificateError extends Error {
  override readonly name = 'CertificateError';
  readonly problem: CertificateProblem;
  constructor(problem: CertificateProblem, message: string) {
    super(`approval certificate: ${message}`);
    this.problem = problem;
  }
}

const VERSION = 1;
const LABEL = new TextEncoder().encode('potluck/approval/v1\0');
const DECIMAL = /^(?:0|[1-9][0-9]*)$/;

/** Derive the subject of a transaction, block payload or raw digest; throws ApprovalError if the request does not decode. */
export function subjectOf(request: { case: 'transaction'; argsJson: string } | { case: 'blockPayload'; argsJson: string; argsVersion: 1 | 2 } | { case: 'rawDigest'; digest: Uint8Array }, keyAddress: string): ApprovalSubject {
  const key = keyAddress.toLowerCase() as Hex;
  const none = { gas: '', maxFeePerGas: '', maxPriorityFeePerGas: '', maxFeePerBlobGas: '' };
  if (request.case === 'rawDigest') return { kind: 'raw-digest', keyAddress: key, chainId: 0, nonce: 0, contentKey: request.digest, digest: request.digest, ...none };
  let json: unknown;
  try {
    json = JSON.parse(request.argsJson);
  } catch (e) {
    throw new ApprovalError(`request args are not JSON: ${(e as Error).message}`);
  }
  if (request.case === 'blockPayload') {
    try {
      const args = decodeBlockPayloadArgs(json, request.argsVersion);
      if (args.chainId > BigInt(Number.MAX_SAFE_INTEGER)) throw new ApprovalError(`block payload chainId ${args.chainId} exceeds 2^53-1`);
      const digest = hexToBytes(blockSigningHash(args));
      return { kind: 'block-payload', keyAddress: key, chainId: Number(args.chainId), nonce: 0, contentKey: digest, digest, ...none };
    } catch (e) {
      if (e instanceof BlockPayloadError) throw new ApprovalError(e.message);
      throw e;
    }
  }
  const d = decodeTransactionArgs(json);
  if (!d.ok) throw new ApprovalError(d.problems.join('; '));
  const tx = d.tx;
  return {
    kind: 'transaction', keyAddress: key, chainId: tx.chainId, nonce: tx.nonce, contentKey: hexToBytes(contentKey(tx)),
    gas: tx.gas.toString(), maxFeePerGas: tx.maxFeePerGas.toString(), maxPriorityFeePerGas: tx.maxPriorityFeePerGas.toString(),
    maxFeePerBlobGas: tx.maxFeePerBlobGas === null ? '' : tx.maxFeePerBlobGas.toString(), digest: hexToBytes(digestOf(json)),
  };
}

const encodeFields = (a: ApprovalFields, signature: Uint8Array): Uint8Array => ApprovalType.encode(ApprovalType.create({
  version: VERSION, clusterHash: a.clusterHash, keyAddress: a.keyAddress, kind: a.kind, chainId: a.chainId, nonce: a.nonce, contentKey: a.contentKey,
  gas: a.gas, maxFeePerGas: a.maxFeePerGas, maxPriorityFeePerGas: a.maxPriorityFeePerGas, maxFeePerBlobGas: a.maxFeePerBlobGas,
  digest: a.digest, approverOrg: a.approverOrg, approver: a.approver, requestId: a.requestId, signature,
})).finish();

const signingMessage = (unsigned: Uint8Array): Uint8Array => {
  const m = new Uint8Array(LABEL.length + unsigned.length);
  m.set(LABEL);
  m.set(unsigned, LABEL.length);
  return m;
};

export function signApproval(fields: ApprovalFields, key: Signer | Parameters<typeof signerOf>[0]): Approval {
  const sign = typeof key === 'function' ? key : signerOf(key);
  const signature = sign(signingMessage(encodeFields(fields, new Uint8Array(0))));
  return { ...fields, signature, bytes: encodeFields(fields, signature) };
}

const bytesOf = (v: unknown): Uint8Array => (v instanceof Uint8Array ? new Uint8Array(v.buffer, v.byteOffset, v.length) : new Uint8Array(0));
const u64 = (v: unknown, what: string): number => {
  const n = typeof v === 'number' ? v : typeof v === 'object' && v !== null ? Number(String(v)) : 0;
  if (!Number.isSafeInteger(n) || n < 0) throw new DecodeError('approval', `${what} out of range`);
  return n;
};

/** Strict decoding, no signature check. Throws DecodeError naming the field. */
export function decodeApproval(bytes: Uint8Array): Approval {
  if (bytes.length > 1024) throw new DecodeError('approval', `${bytes.length} bytes; an approval is under 1 KiB`);
  const m = strictDecode(ApprovalType, bytes, 'approval') as unknown as Record<string, unknown>;
  if (m.version !== VERSION) throw new DecodeError('approval', `version ${String(m.version ?? 0)} is not ${VERSION}`);
  const str = (k: string) => (typeof m[k] === 'string' ? (m[k] as string) : '');
  const kind = str('kind');
  if (kind !== 'transaction' && kind !== 'block-payload' && kind !== 'raw-digest') throw new DecodeError('approval', `unknown kind "${kind.slice(0, 32)}"`);
  const keyAddress = str('keyAddress');
  if (!/^0x[0-9a-f]{40}$/.test(keyAddress)) throw new DecodeError('approval', 'keyAddress is not a lowercase 0x address');
  for (const f of ['gas', 'maxFeePerGas', 'maxPriorityFeePerGas', 'maxFeePerBlobGas'])
    if (str(f) !== '' && (!DECIMAL.test(str(f)) || str(f).length > 78)) throw new DecodeError('approval', `${f} is not a decimal`);
  return {
    kind, keyAddress: keyAddress as Hex, chainId: u64(m.chainId, 'chainId'), nonce: u64(m.nonce, 'nonce'),
    contentKey: exactBytes(bytesOf(m.contentKey), 32, 'approval.contentKey'),
    gas: str('gas'), maxFeePerGas: str('maxFeePerGas'), maxPriorityFeePerGas: str('maxPriorityFeePerGas'), maxFeePerBlobGas: str('maxFeePerBlobGas'),
    digest: exactBytes(bytesOf(m.digest), 32, 'approval.digest'), clusterHash: exactBytes(bytesOf(m.clusterHash), 32, 'approval.clusterHash'),
    approverOrg: str('approverOrg'), approver: str('approver'), requestId: exactBytes(bytesOf(m.requestId), 32, 'approval.requestId'),
    signature: exactBytes(bytesOf(m.signature), 64, 'approval.signature'), bytes,
  };
}

/** Who may approve: the key's holders, by peer id. */
export interface Approver {
  org: string;
  peerId: string;
  publicKey: Uint8Array;
}

/** Decode and check one approval: for this cluster, by a listed approver under its own org, validly signed. Throws CertificateError. */
export function openApproval(bytes: Uint8Array, clusterHash: Uint8Array, approvers: readonly Approver[]): Approval {
  let a: Approval;
  try {
    a = decodeApproval(bytes);
  } catch (e) {
    if (e instanceof DecodeError) throw new CertificateError('malformed', e.message);
    throw e;
  }
  if (bytesToHex(a.clusterHash) !== bytesToHex(clusterHash)) throw new CertificateError('cluster', `approval by ${a.approver} is for another cluster definition`);
  const who = approvers.find((x) => x.peerId === a.approver);
  if (!who) throw new CertificateError('approver', `${a.approverOrg} (${a.approver}) holds no share of this key`);
  if (who.org !== a.approverOrg) throw new CertificateError('approver', `approval by ${a.approver} names org ${a.approverOrg}, the cluster says ${who.org}`);
  if (!verifyEd25519(who.publicKey, signingMessage(encodeFields(a, new Uint8Array(0))), a.signature)) throw new CertificateError('signature', `the approval by ${a.approverOrg} is not signed by its identity key`);
  return a;
}

export function encodeCertificate(approvals: readonly Approval[]): Uint8Array {
  const sorted = [...approvals].sort((x, y) => (x.approver < y.approver ? -1 : x.approver > y.approver ? 1 : 0));
  return CertificateType.encode(CertificateType.create({ approvals: sorted.map((a) => a.bytes) })).finish();
}

/** The approvals' bytes of a certificate, strictly decoded but not checked (the auditor collects them all). Throws CertificateError. */
export function certificateApprovals(bytes: Uint8Array): Uint8Array[] {
  try {
    return ((strictDecode(CertificateType, bytes, 'certificate') as unknown as { approvals?: Uint8Array[] }).approvals ?? []).map(bytesOf);
  } catch (e) {
    if (e instanceof DecodeError) throw new CertificateError('malformed', e.message);
    throw e;
  }
}

/** The subject fields every approval of one certificate must share. */
const subjectKey = (a: ApprovalSubject): string =>
  [a.kind, a.keyAddress, a.chainId, a.nonce, bytesToHex(a.contentKey), a.gas, a.maxFeePerGas, a.maxPriorityFeePerGas, a.maxFeePerBlobGas, bytesToHex(a.digest)].join('|');

export interface CertificateCheck {
  clusterHash: Uint8Array;
  /** The key's holders. */
  approvers: readonly Approver[];
  /** c: approvals needed. */
  quorum: number;
  /** The digest about to be signed. */
  digest: Uint8Array;
  keyAddress: string;
}

/**
 * Check a certificate for exactly `digest`: at least `quorum` approvals by distinct holders of the
 * key, every one valid and for the same subject. Returns the approvals. Throws CertificateError.
 */
export function openCertificate(bytes: Uint8Array, c: CertificateCheck): Approval[] {
  if (bytes.length === 0) throw new CertificateError('missing', 'none was sent; co-signers spend nothing without one');
  if (bytes.length > 20_000) throw new CertificateError('malformed', `${bytes.length} bytes is more than 16 approvals`);
  let m: { approvals?: Uint8Array[] };
  try {
    m = strictDecode(CertificateType, bytes, 'certificate') as unknown as typeof m;
  } catch (e) {
    if (e instanceof DecodeError) throw new CertificateError('malformed', e.message);
    throw e;
  }
  const list = (m.approvals ?? []).map(bytesOf);
  if (list.length < c.quorum) throw new CertificateError('short', `${list.length} approvals, ${c.quorum} needed`);
  if (list.length > c.approvers.length) throw new CertificateError('malformed', `${list.length} approvals from ${c.approvers.length} holders`);
  const out: Approval[] = [];
  for (const b of list) {
    const a = openApproval(b, c.clusterHash, c.approvers);
    if (out.some((x) => x.approver === a.approver)) throw new CertificateError('duplicate', `${a.approverOrg} approved twice`);
    if (bytesToHex(a.digest) !== bytesToHex(c.digest)) throw new CertificateError('digest', `the approval by ${a.approverOrg} is for digest ${bytesToHex(a.digest)}, not ${bytesToHex(c.digest)}`);
    if (a.keyAddress !== c.keyAddress.toLowerCase()) throw new CertificateError('inconsistent', `the approval by ${a.approverOrg} is for key ${a.keyAddress}`);
    if (out.length && subjectKey(a) !== subjectKey(out[0]!)) throw new CertificateError('inconsistent', `the approvals by ${out[0]!.approverOrg} and ${a.approverOrg} describe different requests`);
    out.push(a);
  }
  return out;
}

/** Two signed approvals by one member of different content at one (chain, key, nonce): proof it equivocated. */
export interface ApprovalConflict {
  approver: string;
  approverOrg: string;
  slot: string;
  first: Approval;
  second: Approval;
}

/** Every member that approved two contents at one transaction slot, with both approvals (deduplicated). */
export function conflictingApprovals(approvals: Iterable<Approval>): ApprovalConflict[] {
  const seen = new Map<string, Approval>();
  const out = new Map<string, ApprovalConflict>();
  for (const a of approvals) {
    if (a.kind !== 'transaction') continue;
    const slot = `${a.chainId}/${a.keyAddress}/${a.nonce}`;
    const k = `${slot}/${a.approver}`;
    const prev = seen.get(k);
    if (!prev) seen.set(k, a);
    else if (bytesToHex(prev.contentKey) !== bytesToHex(a.contentKey) && !out.has(k)) out.set(k, { approver: a.approver, approverOrg: a.approverOrg, slot, first: prev, second: a });
  }
  return [...out.values()];
}
