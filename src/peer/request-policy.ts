import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { bytesToHex, hexToBytes, isAddressEqual, type Address } from 'viem';
import { RPC_ERRORS } from '../api/backend.ts';
import { BlobError, verifyBlobs } from '../policy/blobs.ts';
import { BlockPayloadError, blockSigningHash, decodeBlockPayloadArgs } from '../policy/block-payload.ts';
import { loadPolicyFile, toTxPolicy, type PolicyFile } from '../policy/policy-file.ts';
import { nonceWindowReason } from '../policy/nonce-window.ts';
import { RateLimiter } from '../policy/rate-limit.ts';
import { decodeTransactionArgs, digestOf, evaluateTransaction, RULE_ERROR_CODES, type RuleName } from '../policy/tx-policy.ts';
import { verdictOf, type Reason, type Verdict } from '../policy/verdict.ts';
import { PolicyRecords } from '../store/policy-records.ts';
import { decodeSigningRequest, type SigningRequest } from './signing-request.ts';
import type { QuorumRule } from './signer-set.ts';
import type { PolicyMetrics } from './peer-metrics.ts';

/**
 * One org's policy over what its peer signs (issue 4 "Policy"): the same evaluation runs when the
 * peer's own API client asks (requester) and when another member asks this org to approve a
 * request (approver, issue 11). It recomputes the digest from the request, never trusting a
 * proposed one. Cheap checks run first and a refusal stops there: a blob count over the cap, a
 * nonce outside the window or a slot already holding other content costs no KZG work. Only an
 * approval writes: the slot claim and its verdict row, committed before this returns.
 */
/** op-signer error code of a refusing rule: tx rules map through `RULE_ERROR_CODES`; block rules are -32012/-32013; the rest are "unauthorized" for the request's kind. */
const BLOCK_CODES: Record<string, number> = {
  'block-args': RPC_ERRORS.invalidBlockPayload,
  'block-disabled': RPC_ERRORS.unauthorizedBlockPayload,
  'block-chain-id': RPC_ERRORS.unauthorizedBlockPayload,
  'block-sender': RPC_ERRORS.unauthorizedBlockPayload,
};

export function errorCodeOf(rule: string, kind: 'transaction' | 'blockPayload' | 'rawDigest'): number {
  if (rule in RULE_ERROR_CODES) return RULE_ERROR_CODES[rule as RuleName];
  return BLOCK_CODES[rule] ?? (kind === 'blockPayload' ? RPC_ERRORS.unauthorizedBlockPayload : RPC_ERRORS.unauthorizedTransaction);
}

export interface Evaluation {
  verdict: Verdict;
  /** The digest to sign, recomputed from the request; absent if the request does not decode. */
  digest?: Uint8Array;
  /** The first refusing reason and its op-signer error code. */
  refusal?: { rule: string; detail: string; code: number };
}

export interface EvaluationInput {
  request: SigningRequest;
  role: 'requester' | 'approver';
  requesterOrg: string;
  /** The approval round (issue 11), recorded with the verdict. */
  session?: Uint8Array;
  /** Addresses of the keys this peer holds; the tx's `from` must be one of them. */
  keyAddresses: readonly string[];
  /** Requester side: the key's threshold, to refuse up front when no t-set can meet this org's quorum. */
  threshold?: number;
}

const r = (rule: string, ok: boolean, detail: string): Reason => ({ rule, ok, detail });

export class RequestPolicy {
  readonly path: string;
  private current: PolicyFile | null;
  private readonly records: PolicyRecords;
  private limiter: RateLimiter | null;
  /** Refusals by rule and role (issue 6); set by the signing API's metrics. */
  metrics?: PolicyMetrics;
  /** The L1's confirmed nonce of an account, when the peer follows an L1 (`--l1-rpc`). */
  confirmedNonce?: (chainId: number, from: string) => number | undefined;

  private constructor(path: string, file: PolicyFile | null, db: Database.Database) {
    this.path = path;
    this.current = file;
    this.records = new PolicyRecords(db);
    this.limiter = file ? new RateLimiter(file.clients) : null;
  }

  get file(): PolicyFile | null {
    return this.current;
  }

  /** Re-read the file (SIGHUP, admin API). A bad file throws PolicyFileError and the old policy stays. */
  reload(): PolicyFile {
    const f = loadPolicyFile(this.path);
    this.current = f;
    this.limiter = new RateLimiter(f.clients);
    return f;
  }

  /** Reads `<home>/policy.json`; without one the peer refuses every request (safe default) and says why. Throws PolicyFileError. */
  static load(home: string, db: Database.Database, log: Logger): RequestPolicy {
    const path = join(home, 'policy.json');
    if (!existsSync(path)) {
      log.warn({ path }, 'no policy file: this peer refuses to sign or co-sign anything');
      return new RequestPolicy(path, null, db);
    }
    return new RequestPolicy(path, loadPolicyFile(path), db);
  }

  get recordsStore(): PolicyRecords {
    return this.records;
  }

  quorum(): QuorumRule | undefined {
    return this.file?.quorum;
  }

  isClient(name: string): boolean {
    return this.file?.clients.some((c) => c.name === name) ?? false;
  }

  /** Evaluate, and record an approval. Synchronous, so the slot claim is committed before any approval or signing starts. */
  evaluate(input: EvaluationInput): Evaluation {
    const { request } = input;
    const kind = request.body.case;
    const meta = {
      session: input.session ? bytesToHex(input.session) : null,
      requester: input.requesterOrg,
      client: input.role === 'requester' ? request.client : null,
      role: input.role,
    };
    const pre: Reason[] = [];
    if (!this.file) pre.push(r('no-policy', false, `this org has no policy file (${this.path})`));
    else {
      // Per API client (issue 4); the admin socket's raw digests come from the operator, not a client.
      if (input.role === 'requester' && kind !== 'rawDigest' && this.limiter) pre.push(this.limiter.take(request.client));
      if (input.threshold !== undefined) {
        const q = this.file.quorum;
        const t = input.threshold;
        pre.push(q.distinctOrgs > t || q.otherOrgs > t - 1
          ? r('org-quorum', false, `this org's policy requires ${q.distinctOrgs} distinct orgs, ${q.otherOrgs} besides the requester's, but a signer set has ${t} signers (${t - 1} besides the requester)`)
          : r('org-quorum', true, `a ${t}-signer set can meet this org's minimum of ${q.distinctOrgs} orgs, ${q.otherOrgs} besides the requester's`));
      }
    }
    const finish = (reasons: Reason[], digest?: Uint8Array): Evaluation => {
      const verdict = verdictOf(reasons);
      const bad = reasons.find((x) => !x.ok);
      if (bad) this.metrics?.policyRefusal(bad.rule, input.role);
      return { verdict, ...(digest ? { digest } : {}), ...(bad ? { refusal: { rule: bad.rule, detail: bad.detail, code: errorCodeOf(bad.rule, kind) } } : {}) };
    };

    if (kind === 'rawDigest') {
      const digest = request.body.digest;
      const reasons = [...pre, this.file?.rawDigests ? r('raw-digest', true, 'raw digests allowed by policy (rawDigests: true)') : r('raw-digest', false, 'raw digests are refused (policy rawDigests: false); only transactions and block payloads are signed')];
      if (verdictOf(reasons).approve) this.records.recordVerdict({ ...meta, kind: 'raw-digest', verdict: verdictOf(reasons), digest: bytesToHex(digest) });
      return finish(reasons, digest);
    }

    if (kind === 'blockPayload') {
      const { argsJson, argsVersion } = request.body;
      let reasons: Reason[];
      let digest: Uint8Array | undefined;
      try {
        const args = decodeBlockPayloadArgs(JSON.parse(argsJson), argsVersion);
        digest = hexToBytes(blockSigningHash(args));
        const allowed = this.file?.blockPayloads?.chainIds;
        const sender = args.senderAddress;
        reasons = [
          ...pre,
          r('block-args', true, `well-formed BlockPayloadArgs${argsVersion === 2 ? 'V2' : ''}`),
          !allowed ? r('block-disabled', false, 'this org signs no block payloads (policy blockPayloads absent)')
          : allowed.some((c) => BigInt(c) === args.chainId) ? r('block-chain-id', true, `chainId ${args.chainId} allowed`)
          : r('block-chain-id', false, `unexpected chainId ${args.chainId} (allowed: ${allowed.join(', ')})`),
          sender === null ? r('block-sender', true, 'no senderAddress given')
          : input.keyAddresses.some((a) => isAddressEqual(a as Address, sender)) ? r('block-sender', true, `senderAddress ${sender} is the cluster address`)
          : r('block-sender', false, `unexpected from address ${sender}`),
        ];
      } catch (e) {
        if (!(e instanceof BlockPayloadError) && !(e instanceof SyntaxError)) throw e;
        reasons = [...pre, r('block-args', false, e.message)];
      }
      if (verdictOf(reasons).approve) this.records.recordVerdict({ ...meta, kind: 'block-payload', verdict: verdictOf(reasons), digest: digest ? bytesToHex(digest) : null });
      return finish(reasons, digest);
    }

    // Transactions: strict decode, then the cheap rules, then blobs (KZG), then the slot claim.
    const { argsJson, blobs } = request.body;
    let args: unknown;
    try {
      args = JSON.parse(argsJson);
    } catch (e) {
      return finish([...pre, r('args', false, `TransactionArgs are not JSON: ${(e as Error).message}`)]);
    }
    const decoded = decodeTransactionArgs(args);
    if (!decoded.ok || !this.file) return finish(decoded.ok ? pre : [...pre, r('args', false, decoded.problems.join('; '))]);
    const tx = decoded.tx;
    const from = (input.keyAddresses.find((a) => isAddressEqual(a as Address, tx.from)) ?? input.keyAddresses[0] ?? ZERO) as Address;
    const policy = toTxPolicy(this.file, from);
    const digest = hexToBytes(digestOf(args));
    const window = nonceWindowReason(tx.nonce, { confirmed: this.confirmedNonce?.(tx.chainId, tx.from), highest: this.records.highestNonce(tx.chainId, tx.from) }, this.file.nonceWindow);
    // Everything but the blobs' content, against the slot as it stands: a refusal here costs no KZG.
    const recorded = this.records.recordAt(tx.chainId, tx.from, tx.nonce)?.request ?? null;
    const cheap = verdictOf([...pre, window, ...evaluateTransaction(policy, args, { recorded }).reasons.filter((x) => x.rule !== 'blob-content')]);
    if (!cheap.approve) return finish(cheap.reasons, digest);
    let blobPayloads: Uint8Array[] | undefined;
    let blobFailure: Reason | undefined;
    if (blobs.length > 0) {
      try {
        blobPayloads = verifyBlobs(blobs, tx.blobVersionedHashes ?? []);
      } catch (e) {
        if (!(e instanceof BlobError)) throw e;
        blobFailure = r('blob-content', false, e.message);
      }
    }
    const verdict = this.records.decideTransaction(tx, (rec) => {
      const v = evaluateTransaction(policy, args, { recorded: rec, ...(blobPayloads ? { blobPayloads } : {}) });
      const reasons = v.reasons.map((x) => (blobFailure && x.rule === 'blob-content' ? blobFailure : x));
      return verdictOf([...pre, window, ...reasons]);
    }, { ...meta, digest: bytesToHex(digest) });
    return finish(verdict.reasons, digest);
  }
}

const ZERO = '0x0000000000000000000000000000000000000000';
