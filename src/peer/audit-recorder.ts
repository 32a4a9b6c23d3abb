import { join } from 'node:path';
import type { PrivateKey } from '@libp2p/interface';
import { sha256 } from '@noble/hashes/sha2.js';
import type { Logger } from 'pino';
import { hexToBytes, keccak256, numberToBytes } from 'viem';
import { auditMessageOf, sessionEndOf, signerOf } from '../audit/entry.ts';
import type { AuditRecordInput } from '../audit/entry.ts';
import { AuditLog, logClusterHash } from '../audit/log-file.ts';
import { renameSync } from 'node:fs';
import { equalBytes } from '@noble/curves/utils.js';
import { AbortError } from '../protocol/errors.ts';
import type { KeyShare } from '../protocol/key-share.ts';
import type { Presignature, Signature } from '../protocol/sign.ts';
import { policyToJson, type PolicyFile } from '../policy/policy-file.ts';
import { signedTransaction } from '../policy/tx-policy.ts';
import type { Verdict } from '../policy/verdict.ts';
import type { TranscriptEvent } from './session-host.ts';
import { decodeSigningRequest, encodeSigningRequest } from './signing-request.ts';

/**
 * What this peer writes to its audit log (issue 5; docs/audit.md): the policy in force, every
 * request and verdict, every protocol message it sent or accepted (whole for public broadcasts,
 * else digests: `auditMessageOf`), every session's end, signatures with their tx hash, burned
 * pairs and committed keys. An fsync covers every entry before it, so only the entries that must
 * be durable before something leaves the process are fsync'd: a co-signer's verdict before its
 * partial signature goes out, the requester's signature before the tx is returned, policies,
 * burns, keys and cosignatures. Messages, requests and session ends ride on the next fsync.
 */
export class AuditRecorder {
  readonly log: AuditLog;
  private readonly logger: Logger;
  private policySha = new Uint8Array(32);

  private constructor(log: AuditLog, logger: Logger) {
    this.log = log;
    this.logger = logger;
  }

  static open(home: string, clusterHash: Uint8Array, peerId: string, key: PrivateKey, logger: Logger): AuditRecorder {
    const path = join(home, 'audit.log');
    const before = logClusterHash(path);
    if (before && !equalBytes(before, clusterHash)) {
      // A new cluster definition (an org joined or left): the old log is complete for the old
      // definition and stays verifiable with it; this definition starts its own log.
      const archived = join(home, `audit-${Buffer.from(before).toString('hex').slice(0, 16)}.log`);
      renameSync(path, archived);
      logger.warn({ archived }, 'cluster definition changed: the previous audit log is kept for the previous definition');
    }
    const log = AuditLog.open(path, { clusterHash, peerId, sign: signerOf(key), onWarning: (m) => logger.warn(m) });
    return new AuditRecorder(log, logger);
  }

  private append(record: AuditRecordInput, sync = true): void {
    try {
      this.log.append(record, { sync });
    } catch (e) {
      // The log must never be silently incomplete: a failed append stops this peer's signing.
      this.logger.fatal({ err: (e as Error).message, record: record.case }, 'cannot append to the audit log');
      throw e;
    }
  }

  policy(file: PolicyFile | null): void {
    const json = file ? JSON.stringify(policyToJson(file)) : '';
    this.policySha = sha256(new TextEncoder().encode(json));
    this.append({ case: 'policy', value: { sha256: this.policySha, json } });
  }

  /** The session host's hook. */
  transcript(e: TranscriptEvent): void {
    if (e.type === 'message') return this.append({ case: 'message', value: auditMessageOf(e) }, false);
    const output = publicOutput(e.output);
    // Evidence: the culprit's signed envelope when the host kept it, else the offending payload.
    const evidence = e.evidence ?? (e.error instanceof AbortError ? e.error.evidence : undefined);
    this.append({ case: 'sessionEnd', value: sessionEndOf(e.session, e.protocol, { ...(e.error ? { error: e.error } : {}), ...(output ? { output } : {}), ...(evidence ? { evidence } : {}) }) }, !!e.error);
  }

  /** The request as this peer logs it: blobs replaced by their versioned hashes (issue 5). */
  static loggedRequest(request: Uint8Array): { bytes: Uint8Array; blobHashes: Uint8Array[] } {
    const r = decodeSigningRequest(request);
    if (r.body.case !== 'transaction' || r.body.blobs.length === 0) return { bytes: request, blobHashes: [] };
    const args = JSON.parse(r.body.argsJson) as { blobVersionedHashes?: unknown };
    const hashes = Array.isArray(args.blobVersionedHashes) && args.blobVersionedHashes.length === r.body.blobs.length && args.blobVersionedHashes.every((h) => typeof h === 'string' && /^0x[0-9a-f]{64}$/.test(h))
      ? (args.blobVersionedHashes as `0x${string}`[]).map((h) => hexToBytes(h))
      : r.body.blobs.map((b) => sha256(b));
    return { bytes: encodeSigningRequest({ ...r, body: { ...r.body, blobs: hashes } }), blobHashes: hashes };
  }

  request(p: { session: Uint8Array; role: 'requester' | 'cosigner'; requesterOrg: string; keyId: string; epoch: number; signers: number[]; signerOrgs: string[]; request: Uint8Array; digest: Uint8Array }): void {
    const { bytes, blobHashes } = AuditRecorder.loggedRequest(p.request);
    this.append({ case: 'request', value: { ...p, request: bytes, blobHashes } }, false);
  }

  /**
   * `request` only for a refusal written without an AuditRequest (a requester refusing its own
   * client). `sync: false` when a later fsync'd entry comes before anything leaves (the requester).
   */
  verdict(p: { session?: Uint8Array; digest?: Uint8Array; verdict: Verdict; request?: Uint8Array; sync?: boolean; role?: 'requester' | 'approver'; requestId?: Uint8Array }): void {
    this.append({
      case: 'verdict',
      value: {
        session: p.session ?? new Uint8Array(0), digest: p.digest ?? new Uint8Array(0), approve: p.verdict.approve, reasons: p.verdict.reasons,
        policySha256: this.policySha, request: p.request ? AuditRecorder.loggedRequest(p.request).bytes : new Uint8Array(0),
        role: p.role ?? '', requestId: p.requestId ?? new Uint8Array(0),
      },
    }, p.sync ?? true);
  }

  /** An approval this peer gave (issue 11), fsync'd with everything before it: before the approval leaves. */
  approval(bytes: Uint8Array): void {
    this.append({ case: 'approval', value: { approval: bytes } });
  }

  /** The certificate a signing session runs under; rides on the next fsync (the verdict's or the signature's). */
  certificate(session: Uint8Array, certificate: Uint8Array): void {
    this.append({ case: 'certificate', value: { session, certificate } }, false);
  }

  /** An operator's or the peer's own decision outside a protocol run (issue 11). */
  incident(kind: 'slot-release' | 'rollback-detected' | 'rollback-acknowledged' | 'witness-reset', detail: string, evidence: Uint8Array = new Uint8Array(0)): void {
    this.append({ case: 'incident', value: { kind, detail, evidence } });
  }

  /** `sync`: the requester's, before the tx is returned; a co-signer's rides on the next fsync. */
  signature(p: { session: Uint8Array; signature: Signature; address: string; request: Uint8Array; sync: boolean }): void {
    const sig = p.signature;
    this.append({
      case: 'signature',
      value: { session: p.session, digest: sig.digest, r: numberToBytes(sig.r, { size: 32 }), s: numberToBytes(sig.s, { size: 32 }), yParity: sig.yParity, address: p.address, txHash: txHashOf(p.request, sig) },
    }, p.sync);
  }

  burn(p: { keyId: string; peer: number; peerOrg: string; session: Uint8Array; check: string }): void {
    this.append({ case: 'burn', value: p });
  }

  key(share: KeyShare, kind: 'keygen' | 'refresh' | 'reshare' | 'pair-setup'): void {
    this.append({
      case: 'key',
      value: {
        keyId: share.keyId, epoch: share.epoch, kind, dkgSession: share.dkgSid, publicKey: share.publicKey.toBytes(true), threshold: share.threshold,
        parties: share.parties, publicShares: share.publicShares.map((p) => p.toBytes(true)),
      },
    });
  }

  /** Another peer's checkpoint this peer cosigned as its witness (peer/witness.ts); fsync'd before the cosignature leaves. */
  cosignature(c: { origin: string; size: number; root: Uint8Array; authorSignature: Uint8Array; cosignature: Uint8Array }): void {
    this.append({ case: 'cosignature', value: c });
  }

  close(): void {
    this.log.close();
  }
}

/** The public part of a session's output: a presignature's id, a DKG's public key; nothing for signatures (logged apart). */
function publicOutput(o: unknown): Uint8Array | undefined {
  if (!o || typeof o !== 'object') return undefined;
  if ('sigSid' in o && 'R' in o) return (o as Presignature).sigSid;
  if ('publicKey' in o && 'dkgSid' in o) return (o as { publicKey: { toBytes(c: boolean): Uint8Array } }).publicKey.toBytes(true);
  return undefined;
}

/** keccak256 of the signed EIP-2718 tx for transaction requests; empty otherwise. */
function txHashOf(request: Uint8Array, sig: Signature): Uint8Array {
  try {
    const r = decodeSigningRequest(request);
    if (r.body.case !== 'transaction') return new Uint8Array(0);
    return hexToBytes(keccak256(signedTransaction(JSON.parse(r.body.argsJson), sig)));
  } catch {
    return new Uint8Array(0);
  }
}
