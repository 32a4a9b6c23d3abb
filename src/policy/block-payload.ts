/**
 * Strict decoding of op-signer's block-payload signing arguments (system-anchors §1.3 "Block
 * payload signing"; op-service `signer/blockpayload_args.go`) and the signing hash. Pure: parsed
 * JSON in, a decoded payload or the list of problems out.
 *
 * Go's field names and JSON forms:
 * - V1 `BlockPayloadArgs` (what op-node's RemoteSigner sends today):
 *   `domain` [32]byte → an array of 32 numbers; `chainId` *big.Int → a JSON number;
 *   `payloadHash` []byte → standard base64 (with padding); `senderAddress` *common.Address.
 *   Older clients also sent an unnamed `PayloadBytes` field (base64); it is accepted and must hash
 *   (keccak256) to `payloadHash`.
 * - V2 `BlockPayloadArgsV2`: `domain` eth.Bytes32 → 0x-hex; `chainId` eth.ChainID → a string,
 *   decimal or 0x-hex; `payloadHash` common.Hash → 0x-hex; `senderAddress` optional.
 *
 * Stricter than Go on purpose: field names match exactly, unknown fields are refused, every field
 * but senderAddress is required, hex is lowercase and canonical (as in `transaction-args.ts`), the
 * chain id is at least 1 and the payload hash is not zero (V2's `Message()` refuses both).
 */
import { bytesToHex, concat, getAddress, isAddress, keccak256, numberToBytes, type Address, type Hex } from 'viem';

export interface BlockPayload {
  domain: Uint8Array;
  chainId: bigint;
  payloadHash: Uint8Array;
  /** EIP-55 checksummed; null when absent or null. */
  senderAddress: Address | null;
}

/** Block-payload args that do not decode; `problems` name each field and what is wrong. */
export class BlockPayloadError extends Error {
  override readonly name = 'BlockPayloadError';
  readonly version: 1 | 2;
  readonly problems: readonly string[];
  constructor(version: 1 | 2, problems: readonly string[]) {
    super(`invalid BlockPayloadArgs${version === 2 ? 'V2' : ''}: ${problems.join('; ')}`);
    this.version = version;
    this.problems = problems;
  }
}

const V1_FIELDS = ['domain', 'chainId', 'payloadHash', 'senderAddress', 'PayloadBytes'];
const V2_FIELDS = ['domain', 'chainId', 'payloadHash', 'senderAddress'];
const HEX32 = /^0x[0-9a-f]{64}$/;
const DECIMAL = /^(?:0|[1-9][0-9]*)$/;
const HEX_QUANTITY = /^0x(?:0|[1-9a-f][0-9a-f]*)$/;
/** Standard base64 with padding, as Go's encoding/json writes []byte. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const MAX_UINT256 = (1n << 256n) - 1n;

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 70 ? `${v.slice(0, 70)}…` : v);
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === 'number' || typeof v === 'boolean') return `${typeof v} ${String(v)}`;
  return typeof v;
}

/** Strict base64 decoding: canonical only (re-encodes to the same text, so no stray padding bits). */
function base64(field: string, v: unknown, problems: string[]): Uint8Array | undefined {
  if (typeof v !== 'string' || !BASE64.test(v)) {
    problems.push(`${field}: not standard base64 with padding: ${show(v)}`);
    return undefined;
  }
  const bytes = Buffer.from(v, 'base64');
  if (bytes.toString('base64') !== v) {
    problems.push(`${field}: not canonical base64 (non-zero padding bits): ${show(v)}`);
    return undefined;
  }
  return new Uint8Array(bytes);
}

function hex32(field: string, v: unknown, problems: string[]): Uint8Array | undefined {
  if (typeof v !== 'string' || !HEX32.test(v)) {
    problems.push(`${field}: not lowercase 0x-hex of 32 bytes: ${show(v)}`);
    return undefined;
  }
  return new Uint8Array(Buffer.from(v.slice(2), 'hex'));
}

function sender(v: unknown, problems: string[]): Address | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string' || !isAddress(v)) {
    problems.push(`senderAddress: not an address (0x + 40 hex, valid EIP-55 checksum if mixed case): ${show(v)}`);
    return null;
  }
  return getAddress(v);
}

function checkChainId(id: bigint, problems: string[]): bigint | undefined {
  if (id === 0n) { problems.push('chainId: must be at least 1'); return undefined; }
  if (id > MAX_UINT256) { problems.push('chainId: exceeds 256 bits'); return undefined; }
  return id;
}

function checkFields(raw: Record<string, unknown>, known: string[], problems: string[]): void {
  for (const k of Object.keys(raw)) if (!known.includes(k)) problems.push(`unknown field ${JSON.stringify(k.slice(0, 40))}`);
  for (const k of ['domain', 'chainId', 'payloadHash']) if (!Object.hasOwn(raw, k) || raw[k] === null) problems.push(`${k}: required`);
}

const isZero = (b: Uint8Array) => b.every((x) => x === 0);

/** Decodes V1 `BlockPayloadArgs` (opsigner_signBlockPayload) or throws BlockPayloadError. */
export function decodeBlockPayloadArgsV1(raw: unknown): BlockPayload {
  if (!isPlainObject(raw)) throw new BlockPayloadError(1, [`request: must be a JSON object, got ${show(raw)}`]);
  const problems: string[] = [];
  checkFields(raw, V1_FIELDS, problems);

  let domain: Uint8Array | undefined;
  const d = raw['domain'];
  if (d !== undefined && d !== null) {
    if (!Array.isArray(d) || d.length !== 32) problems.push(`domain: must be an array of 32 byte values (Go [32]byte), got ${show(d)}`);
    else {
      const bad = d.findIndex((x) => !Number.isInteger(x) || (x as number) < 0 || (x as number) > 255);
      if (bad >= 0) problems.push(`domain[${bad}]: not a byte value 0..255: ${show(d[bad])}`);
      else domain = Uint8Array.from(d as number[]);
    }
  }

  // *big.Int is a bare JSON number. JSON.parse turns it into a double, which is exact only up to
  // 2^53 - 1: larger ids may already have been rounded, so they are refused rather than guessed.
  let chainId: bigint | undefined;
  const c = raw['chainId'];
  if (c !== undefined && c !== null) {
    if (typeof c !== 'number' || !Number.isInteger(c) || c < 0) problems.push(`chainId: must be a non-negative integer JSON number (Go *big.Int), got ${show(c)}`);
    else if (!Number.isSafeInteger(c)) problems.push(`chainId: ${c} is above 2^53-1, where a JSON number loses precision; use opsigner_signBlockPayloadV2 (chainId as a string)`);
    else chainId = checkChainId(BigInt(c), problems);
  }

  let payloadHash: Uint8Array | undefined;
  const h = raw['payloadHash'];
  if (h !== undefined && h !== null) {
    const bytes = base64('payloadHash', h, problems);
    if (bytes && bytes.length !== 32) problems.push(`payloadHash: must decode to 32 bytes, got ${bytes.length}`);
    else if (bytes && isZero(bytes)) problems.push('payloadHash: must not be zero');
    else payloadHash = bytes;
  }

  const pb = raw['PayloadBytes'];
  if (pb !== undefined && pb !== null) {
    const bytes = base64('PayloadBytes', pb, problems);
    if (bytes && payloadHash && keccak256(bytes) !== bytesToHex(payloadHash)) problems.push('PayloadBytes: keccak256 of it does not equal payloadHash');
  }

  const senderAddress = sender(raw['senderAddress'], problems);
  if (problems.length > 0) throw new BlockPayloadError(1, problems);
  return { domain: domain!, chainId: chainId!, payloadHash: payloadHash!, senderAddress };
}

/** Decodes V2 `BlockPayloadArgsV2` (opsigner_signBlockPayloadV2) or throws BlockPayloadError. */
export function decodeBlockPayloadArgsV2(raw: unknown): BlockPayload {
  if (!isPlainObject(raw)) throw new BlockPayloadError(2, [`request: must be a JSON object, got ${show(raw)}`]);
  const problems: string[] = [];
  checkFields(raw, V2_FIELDS, problems);

  const d = raw['domain'];
  // A zero domain is valid (op-service: "A zero Domain is valid"); the V1 block domain is zero.
  const domain = d === undefined || d === null ? undefined : hex32('domain', d, problems);

  // eth.ChainID is a text value (uint256.UnmarshalText): a decimal or 0x-hex string, never a JSON number.
  let chainId: bigint | undefined;
  const c = raw['chainId'];
  if (c !== undefined && c !== null) {
    if (typeof c !== 'string') problems.push(`chainId: must be a string, decimal or 0x-hex (eth.ChainID), got ${show(c)}`);
    else if (!DECIMAL.test(c) && !HEX_QUANTITY.test(c)) problems.push(`chainId: not a canonical decimal or lowercase 0x-hex integer (no leading zeros): ${show(c)}`);
    else if (c.length > 80) problems.push('chainId: exceeds 256 bits');
    else chainId = checkChainId(BigInt(c), problems);
  }

  const h = raw['payloadHash'];
  let payloadHash = h === undefined || h === null ? undefined : hex32('payloadHash', h, problems);
  if (payloadHash && isZero(payloadHash)) {
    problems.push('payloadHash: must not be zero');
    payloadHash = undefined;
  }

  const senderAddress = sender(raw['senderAddress'], problems);
  if (problems.length > 0) throw new BlockPayloadError(2, problems);
  return { domain: domain!, chainId: chainId!, payloadHash: payloadHash!, senderAddress };
}

/** Decodes the args of `opsigner_signBlockPayload` (1) or `opsigner_signBlockPayloadV2` (2). */
export function decodeBlockPayloadArgs(raw: unknown, version: 1 | 2): BlockPayload {
  return version === 1 ? decodeBlockPayloadArgsV1(raw) : decodeBlockPayloadArgsV2(raw);
}

/**
 * The digest signed for a block: keccak256(domain ‖ chainId as 32-byte big-endian ‖ payloadHash)
 * (op-service `BlockSigningMessage.ToSigningHash`; specs rollup-node-p2p.md#block-signatures).
 */
export function blockSigningHash(p: BlockPayload): Hex {
  if (p.domain.length !== 32 || p.payloadHash.length !== 32) throw new RangeError('blockSigningHash: domain and payloadHash must be 32 bytes');
  if (p.chainId < 0n || p.chainId > MAX_UINT256) throw new RangeError('blockSigningHash: chainId out of uint256 range');
  return keccak256(concat([p.domain, numberToBytes(p.chainId, { size: 32 }), p.payloadHash]));
}
