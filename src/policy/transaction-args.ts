/**
 * Strict decoding of op-signer's `TransactionArgs` (system-anchors §1.3; op-service
 * `signer/transaction_args.go` `Check` and `ToTransactionData`) into a typed batch transaction,
 * and its viem form. Pure: parsed JSON in, a decoded tx or the list of problems out.
 *
 * Stricter than geth's decoder on purpose: quantities and bytes must be lowercase canonical hex
 * (execution-apis `base-types.yaml`: uint `^0x([1-9a-f]+[0-9a-f]*|0)$`, bytes `^0x[0-9a-f]*$`),
 * field names are matched exactly (Go's JSON is case-insensitive) and unknown fields are refused.
 */
import {
  getAddress, hexToBigInt, isAddress,
  type AccessList, type Address, type Hex,
  type TransactionSerializableEIP1559, type TransactionSerializableEIP4844,
} from 'viem';

export type TxType = 'eip1559' | 'eip4844';

/** A decoded request: type 2 (`DynamicFeeTx`) or type 3 (`BlobTx`, no sidecar), §1.3. */
export interface BatchTransaction {
  type: TxType;
  chainId: number;
  /** EIP-55 checksummed. Required here (op-signer allows it absent; Potluck keys records by it). */
  from: Address;
  /** null = contract creation (type 2 only; the 'to' rule refuses it). */
  to: Address | null;
  nonce: number;
  gas: bigint;
  maxFeePerGas: bigint;
  maxPriorityFeePerGas: bigint;
  /** Type 3 only, else null. */
  maxFeePerBlobGas: bigint | null;
  value: bigint;
  /** Calldata, lowercase 0x-hex (`input`, or `data` when `input` is absent). */
  data: Hex;
  accessList: AccessList;
  /** Type 3 only (1 or more, version 0x01), else null. */
  blobVersionedHashes: Hex[] | null;
}

export type DecodeResult = { ok: true; tx: BatchTransaction } | { ok: false; problems: string[] };

/** `TransactionArgs` that do not decode; `problems` name each field and what is wrong. */
export class RequestError extends Error {
  override readonly name = 'RequestError';
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`invalid TransactionArgs: ${problems.join('; ')}`);
    this.problems = problems;
  }
}

/** Fields of op-service `TransactionArgs` (§1.3) plus `type`, which viem and ethers send when set. */
export const KNOWN_FIELDS: readonly string[] = [
  'from', 'to', 'gas', 'gasPrice', 'maxFeePerGas', 'maxPriorityFeePerGas', 'value', 'nonce',
  'data', 'input', 'accessList', 'chainId', 'blobVersionedHashes', 'maxFeePerBlobGas', 'type',
];

const QUANTITY = /^0x(?:0|[1-9a-f][0-9a-f]*)$/;
const BYTES = /^0x(?:[0-9a-f]{2})*$/;
const HASH32 = /^0x[0-9a-f]{64}$/;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
/** Problems listed per request; the rest are counted (a huge hostile body stays a short verdict). */
const MAX_PROBLEMS = 20;

/** A short, safe rendering of an untrusted JSON value for problem messages. */
function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 70 ? `${v.slice(0, 70)}…` : v);
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'number' || typeof v === 'boolean') return `${typeof v} ${String(v)}`;
  return typeof v;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Decodes parsed JSON `TransactionArgs`; never throws. JSON null counts as absent (Go pointer fields). */
export function decodeTransactionArgs(raw: unknown): DecodeResult {
  const problems: string[] = [];
  if (!isPlainObject(raw)) return { ok: false, problems: [`request: must be a JSON object, got ${show(raw)}`] };
  for (const k of Object.keys(raw)) if (!KNOWN_FIELDS.includes(k)) problems.push(`unknown field ${JSON.stringify(k)}`);
  const get = (k: string): unknown => (Object.hasOwn(raw, k) && raw[k] !== null ? raw[k] : undefined);

  const quantity = (k: string, bits: number, required: boolean): bigint | undefined => {
    const v = get(k);
    if (v === undefined) {
      if (required) problems.push(`${k}: required`);
      return undefined;
    }
    if (typeof v !== 'string' || !QUANTITY.test(v)) {
      problems.push(`${k}: not a canonical 0x-quantity (lowercase hex, no leading zeros): ${show(v)}`);
      return undefined;
    }
    if (v.length - 2 > bits / 4) { problems.push(`${k}: exceeds ${bits} bits`); return undefined; }
    return hexToBigInt(v as Hex);
  };
  const safeInt = (k: string, x: bigint | undefined): number | undefined => {
    if (x === undefined) return undefined;
    if (x > MAX_SAFE) { problems.push(`${k}: ${x} above 2^53-1 is not supported`); return undefined; }
    return Number(x);
  };
  const address = (k: string, v: unknown): Address | undefined => {
    if (typeof v !== 'string' || !isAddress(v)) {
      problems.push(`${k}: not an address (0x + 40 hex, valid EIP-55 checksum if mixed case): ${show(v)}`);
      return undefined;
    }
    return getAddress(v);
  };
  const bytes = (k: string): Hex | undefined => {
    const v = get(k);
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || !BYTES.test(v)) {
      problems.push(`${k}: not lowercase 0x-hex bytes of even length: ${show(v)}`);
      return undefined;
    }
    return v as Hex;
  };

  // §1.3: gas, maxFeePerGas, maxPriorityFeePerGas, nonce and chainId are required; gasPrice must be null.
  const fromRaw = get('from');
  if (fromRaw === undefined) problems.push('from: required');
  const from = fromRaw === undefined ? undefined : address('from', fromRaw);
  const toRaw = get('to');
  const to = toRaw === undefined ? null : address('to', toRaw);
  const gas = quantity('gas', 64, true);
  if (get('gasPrice') !== undefined) problems.push('gasPrice: must be null or absent (only maxFeePerGas/maxPriorityFeePerGas are accepted)');
  const maxFeePerGas = quantity('maxFeePerGas', 256, true);
  const maxPriorityFeePerGas = quantity('maxPriorityFeePerGas', 256, true);
  if (maxFeePerGas !== undefined && maxPriorityFeePerGas !== undefined && maxFeePerGas < maxPriorityFeePerGas) {
    problems.push(`maxFeePerGas (${maxFeePerGas}) < maxPriorityFeePerGas (${maxPriorityFeePerGas})`);
  }
  const value = quantity('value', 256, false) ?? 0n;
  const nonce = safeInt('nonce', quantity('nonce', 64, true));
  const chainIdBig = quantity('chainId', 256, true);
  if (chainIdBig === 0n) problems.push('chainId: must be at least 1');
  const chainId = safeInt('chainId', chainIdBig);

  const dataField = bytes('data'), inputField = bytes('input');
  if (dataField !== undefined && inputField !== undefined && dataField !== inputField) {
    problems.push('data, input: both set and not equal (use "input")');
  }
  const data: Hex = inputField ?? dataField ?? '0x';

  const accessList = decodeAccessList(get('accessList'), problems);

  // §1.3: blobVersionedHashes, if present, non-empty and with maxFeePerBlobGas; the blob fee only with hashes.
  const hashesRaw = get('blobVersionedHashes');
  let blobVersionedHashes: Hex[] | null = null;
  if (hashesRaw !== undefined) {
    if (!Array.isArray(hashesRaw)) problems.push(`blobVersionedHashes: must be an array, got ${show(hashesRaw)}`);
    else if (hashesRaw.length === 0) problems.push('blobVersionedHashes: must not be empty when present');
    else {
      blobVersionedHashes = [];
      hashesRaw.forEach((h: unknown, i) => {
        if (typeof h !== 'string' || !HASH32.test(h)) problems.push(`blobVersionedHashes[${i}]: not a lowercase 0x-hex 32-byte hash: ${show(h)}`);
        // EIP-4844: VERSIONED_HASH_VERSION_KZG = 0x01; anything else is an invalid blob tx.
        else if (!h.startsWith('0x01')) problems.push(`blobVersionedHashes[${i}]: version byte must be 0x01, got 0x${h.slice(2, 4)}`);
        else blobVersionedHashes!.push(h as Hex);
      });
    }
  }
  const isBlob = hashesRaw !== undefined;
  const maxFeePerBlobGas = quantity('maxFeePerBlobGas', 256, false);
  if (isBlob && get('maxFeePerBlobGas') === undefined) problems.push('maxFeePerBlobGas: required with blobVersionedHashes');
  if (!isBlob && get('maxFeePerBlobGas') !== undefined) problems.push('maxFeePerBlobGas: only allowed with blobVersionedHashes');

  const type = get('type');
  if (type !== undefined && type !== (isBlob ? '0x3' : '0x2')) {
    problems.push(`type: ${show(type)} does not match the request (expected "${isBlob ? '0x3' : '0x2'}"; only types 2 and 3 are signed)`);
  }
  if (isBlob && toRaw === undefined) problems.push('to: required for a blob transaction');
  if (!isBlob && toRaw === undefined && data === '0x') problems.push('to: contract creation without any data');

  if (problems.length > MAX_PROBLEMS) problems.splice(MAX_PROBLEMS, Infinity, `and ${problems.length - MAX_PROBLEMS} more problems`);
  if (problems.length > 0) return { ok: false, problems };
  return {
    ok: true,
    tx: {
      type: isBlob ? 'eip4844' : 'eip1559',
      chainId: chainId!, from: from!, to: to ?? null, nonce: nonce!, gas: gas!,
      maxFeePerGas: maxFeePerGas!, maxPriorityFeePerGas: maxPriorityFeePerGas!,
      maxFeePerBlobGas: isBlob ? maxFeePerBlobGas! : null,
      value, data, accessList, blobVersionedHashes,
    },
  };
}

function decodeAccessList(v: unknown, problems: string[]): AccessList {
  if (v === undefined) return [];
  if (!Array.isArray(v)) { problems.push(`accessList: must be an array, got ${show(v)}`); return []; }
  const out: { address: Address; storageKeys: Hex[] }[] = [];
  v.forEach((entry: unknown, i) => {
    const at = `accessList[${i}]`;
    if (!isPlainObject(entry)) { problems.push(`${at}: must be an object, got ${show(entry)}`); return; }
    for (const k of Object.keys(entry)) if (k !== 'address' && k !== 'storageKeys') problems.push(`${at}: unknown field ${JSON.stringify(k)}`);
    const a = entry['address'];
    const ok = typeof a === 'string' && isAddress(a);
    if (!ok) problems.push(`${at}.address: not an address: ${show(a)}`);
    const keys = entry['storageKeys'];
    if (!Array.isArray(keys)) { problems.push(`${at}.storageKeys: must be an array, got ${show(keys)}`); return; }
    const storageKeys: Hex[] = [];
    keys.forEach((s: unknown, j) => {
      if (typeof s !== 'string' || !HASH32.test(s)) problems.push(`${at}.storageKeys[${j}]: not a lowercase 0x-hex 32-byte key: ${show(s)}`);
      else storageKeys.push(s as Hex);
    });
    if (ok) out.push({ address: getAddress(a), storageKeys });
  });
  return out;
}

/** Decodes or throws `RequestError`. */
export function decodeOrThrow(raw: unknown): BatchTransaction {
  const r = decodeTransactionArgs(raw);
  if (!r.ok) throw new RequestError(r.problems);
  return r.tx;
}

/** The viem form of the unsigned tx (type 3 without sidecar), as op-signer's `ToTransactionData` builds it. */
export function toSerializable(tx: BatchTransaction): TransactionSerializableEIP1559 | TransactionSerializableEIP4844 {
  const common = {
    chainId: tx.chainId, nonce: tx.nonce, gas: tx.gas,
    maxFeePerGas: tx.maxFeePerGas, maxPriorityFeePerGas: tx.maxPriorityFeePerGas,
    value: tx.value, data: tx.data, accessList: tx.accessList,
  };
  if (tx.type === 'eip4844') {
    return { ...common, type: 'eip4844', to: tx.to!, maxFeePerBlobGas: tx.maxFeePerBlobGas!, blobVersionedHashes: tx.blobVersionedHashes! };
  }
  return { ...common, type: 'eip1559', to: tx.to };
}
