/**
 * Per-org transaction policy for `eth_signTransaction` (issue 4 "Policy"; system-anchors §1.3,
 * §1.5 validation recipe steps 1-2, §1.4 anti-equivocation). Pure: policy, request and context in,
 * verdict out. Rate limits (`maxRequestsPerMinute`) are stateful and evaluated elsewhere.
 */
import { hexToBigInt, hexToBytes, isAddressEqual, isHex, keccak256, numberToHex, serializeTransaction, type Address, type Hex } from 'viem';
import { N } from '../crypto/scalar-point.ts';
import { FrameError, parseFrames } from './frames.ts';
import { checkEquivocation } from './equivocation.ts';
import { decodeOrThrow, decodeTransactionArgs, toSerializable, type BatchTransaction } from './transaction-args.ts';
import { verdictOf, type Reason, type Verdict } from './verdict.ts';

export { RequestError, decodeTransactionArgs, type BatchTransaction } from './transaction-args.ts';
export type { Reason, Verdict } from './verdict.ts';

export interface TxPolicy {
  /** Allowed chain ids. */
  chainIds: readonly number[];
  /** The cluster's address: the only allowed `from`. */
  from: Address;
  /** The batch inbox: the only allowed `to` (read it from the rollup config, §1.5). */
  to: Address;
  caps: {
    gas: bigint;
    maxFeePerGas: bigint;
    maxPriorityFeePerGas: bigint;
    maxFeePerBlobGas: bigint;
    /** Most blobs per type-3 tx. */
    maxBlobs: number;
  };
  /** Sign a blob tx whose blobs were not handed over (issue 4 "Blob batches"). */
  allowBlobsWithoutContent: boolean;
  /** Not evaluated here (stateful); part of the org policy file. */
  maxRequestsPerMinute?: number;
}

export interface EvaluationContext {
  /**
   * Rollup payloads (`version 0 ‖ frames`) decoded from the blobs, one per versioned hash and in
   * order, whose KZG commitments the caller has already matched to `blobVersionedHashes` (§1.5
   * step 2). Absent: the blobs were not handed over.
   */
  blobPayloads?: readonly Uint8Array[];
  /** Request recorded at this (chainId, from, nonce): null = none. Absent: 'equivocation' is not evaluated. */
  recorded?: BatchTransaction | null;
}

export type RuleName =
  | 'args' | 'chain-id' | 'from' | 'to' | 'value-zero' | 'gas-cap' | 'fee-cap' | 'priority-fee-cap' | 'access-list'
  | 'calldata-frames' | 'calldata-empty' | 'blob-fee-cap' | 'blob-count' | 'blob-content' | 'equivocation';

/**
 * op-signer error code for a refusal by each rule (§1.3 `errors.go`): -32010 InvalidTransaction
 * for what op-signer itself reports as invalid (malformed args, the wrong `from`: "unexpected from
 * address"), -32011 UnauthorizedTransaction for policy refusals ("to address not authorized").
 */
export const RULE_ERROR_CODES: Readonly<Record<RuleName, -32010 | -32011>> = {
  'args': -32010, 'from': -32010,
  'chain-id': -32011, 'to': -32011, 'value-zero': -32011, 'gas-cap': -32011, 'fee-cap': -32011,
  'priority-fee-cap': -32011, 'access-list': -32011, 'calldata-frames': -32011, 'calldata-empty': -32011,
  'blob-fee-cap': -32011, 'blob-count': -32011, 'blob-content': -32011, 'equivocation': -32011,
};

const r = (rule: RuleName, ok: boolean, detail: string): Reason => ({ rule, ok, detail });
const cap = (rule: RuleName, what: string, v: bigint, max: bigint): Reason =>
  r(rule, v <= max, v <= max ? `${what} ${v} within cap ${max}` : `${what} ${v} exceeds cap ${max}`);

function framesReason(rule: RuleName, what: string, batch: Uint8Array): Reason {
  try {
    const frames = parseFrames(batch);
    const channels = new Set(frames.map((f) => f.channelId)).size;
    return r(rule, true, `${what}: ${frames.length} frame(s) in ${channels} channel(s)`);
  } catch (e) {
    if (e instanceof FrameError) return r(rule, false, `${what}: ${e.message}`);
    throw e;
  }
}

/** Evaluates every rule that applies to the request; one reason per rule, in a fixed order. */
export function evaluateTransaction(policy: TxPolicy, request: unknown, context: EvaluationContext = {}): Verdict {
  const decoded = decodeTransactionArgs(request);
  if (!decoded.ok) return verdictOf([r('args', false, decoded.problems.join('; '))]);
  const tx = decoded.tx, caps = policy.caps;
  const reasons: Reason[] = [
    r('args', true, `well-formed type ${tx.type === 'eip4844' ? 3 : 2} TransactionArgs`),
    r('chain-id', policy.chainIds.includes(tx.chainId),
      policy.chainIds.includes(tx.chainId) ? `chainId ${tx.chainId} allowed` : `chainId ${tx.chainId} not in [${policy.chainIds.join(', ')}]`),
    isAddressEqual(tx.from, policy.from)
      ? r('from', true, `from ${tx.from} is the cluster address`)
      : r('from', false, `from ${tx.from} is not the cluster address ${policy.from}`),
    tx.to === null
      ? r('to', false, 'to is missing (contract creation); expected the batch inbox')
      : isAddressEqual(tx.to, policy.to)
        ? r('to', true, `to ${tx.to} is the batch inbox`)
        : r('to', false, `to ${tx.to} is not the batch inbox ${policy.to}`),
    r('value-zero', tx.value === 0n, tx.value === 0n ? 'value is 0' : `value ${tx.value} is not 0`),
    cap('gas-cap', 'gas', tx.gas, caps.gas),
    cap('fee-cap', 'maxFeePerGas', tx.maxFeePerGas, caps.maxFeePerGas),
    cap('priority-fee-cap', 'maxPriorityFeePerGas', tx.maxPriorityFeePerGas, caps.maxPriorityFeePerGas),
    // The batcher always sends `accessList: []` (§1.3); an inbox transfer never needs one.
    r('access-list', tx.accessList.length === 0,
      tx.accessList.length === 0 ? 'access list is empty' : `access list has ${tx.accessList.length} entries; batch txs carry none`),
  ];
  const dataBytes = hexToBytes(tx.data);
  if (tx.type === 'eip1559') {
    reasons.push(framesReason('calldata-frames', 'calldata', dataBytes));
  } else {
    const hashes = tx.blobVersionedHashes!;
    // §1.5: for type-3 txs calldata is ignored by derivation, so the batcher sends none.
    reasons.push(r('calldata-empty', dataBytes.length === 0,
      dataBytes.length === 0 ? 'blob tx has no calldata' : `blob tx carries ${dataBytes.length} bytes of calldata; must be empty`));
    reasons.push(cap('blob-fee-cap', 'maxFeePerBlobGas', tx.maxFeePerBlobGas!, caps.maxFeePerBlobGas));
    reasons.push(r('blob-count', hashes.length <= caps.maxBlobs,
      hashes.length <= caps.maxBlobs ? `${hashes.length} blob(s), at most ${caps.maxBlobs}` : `${hashes.length} blobs exceed the cap of ${caps.maxBlobs}`));
    reasons.push(blobContentReason(policy, hashes.length, context.blobPayloads));
  }
  if (context.recorded !== undefined) reasons.push(checkEquivocation(context.recorded, tx));
  return verdictOf(reasons);
}

function blobContentReason(policy: TxPolicy, count: number, payloads: readonly Uint8Array[] | undefined): Reason {
  if (payloads === undefined) {
    return policy.allowBlobsWithoutContent
      ? r('blob-content', true, 'blobs not handed over; allowed by policy (allowBlobsWithoutContent)')
      : r('blob-content', false, 'blobs not handed over and the policy requires their content (allowBlobsWithoutContent: false)');
  }
  if (payloads.length !== count) return r('blob-content', false, `${payloads.length} blob payload(s) for ${count} versioned hash(es)`);
  const details: string[] = [];
  for (const [i, p] of payloads.entries()) {
    const one = framesReason('blob-content', `blob ${i}`, p);
    if (!one.ok) return one;
    details.push(one.detail);
  }
  return r('blob-content', true, details.join('; '));
}

/**
 * The signing hash of the unsigned tx: keccak256 of its EIP-2718 serialization (type 3 without
 * sidecar), i.e. geth's `LatestSignerForChainID(chainId).Hash(tx)` (§1.3 step 4). Throws
 * `RequestError` for malformed args.
 */
export function digestOf(request: unknown): Hex {
  return keccak256(serializeTransaction(toSerializable(decodeOrThrow(request))));
}

export interface TxSignature {
  r: Hex | bigint;
  s: Hex | bigint;
  yParity: number;
}

/**
 * EIP-2718 bytes of the signed tx, without the blob sidecar: what `eth_signTransaction` returns
 * (§1.3). The signature must be canonical: 0 < r, s < n, low s, yParity ∈ {0, 1} (§1.4
 * "Response format"); otherwise RangeError. Throws `RequestError` for malformed args.
 */
export function signedTransaction(request: unknown, signature: TxSignature): Hex {
  const tx = decodeOrThrow(request);
  const int = (v: Hex | bigint, what: string): bigint => {
    if (typeof v === 'bigint') return v;
    if (!isHex(v, { strict: true }) || v.length > 66) throw new RangeError(`signature ${what} is not 0x-hex of at most 32 bytes`);
    return hexToBigInt(v);
  };
  const rr = int(signature.r, 'r'), ss = int(signature.s, 's');
  if (rr <= 0n || rr >= N) throw new RangeError('signature r out of range');
  if (ss <= 0n || ss > N >> 1n) throw new RangeError('signature s out of range or not low-s');
  if (signature.yParity !== 0 && signature.yParity !== 1) throw new RangeError(`signature yParity must be 0 or 1, got ${signature.yParity}`);
  return serializeTransaction(toSerializable(tx), {
    r: numberToHex(rr, { size: 32 }), s: numberToHex(ss, { size: 32 }), yParity: signature.yParity,
  });
}
