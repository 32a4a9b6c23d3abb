/**
 * The parameters of a refresh or reshare that every participant agrees to, sent in its join
 * (canonical JSON, compared byte for byte). A newcomer without the key learns the old epoch, key
 * and holders from them. Decoding is strict and bounded (issue 11): anything but the canonical
 * form of valid, in-range parameters is refused, and `MAX_CEREMONY_PARAMS_BYTES` bounds the bytes
 * a join may carry before anything is decoded.
 */
export interface CeremonyParams {
  v: 1;
  kind: 'refresh' | 'reshare';
  keyId: string;
  epoch: number;
  oldThreshold: number;
  threshold: number;
  publicKey: string;
  /** Peer ids of the old key's parties, in key-party order. */
  holders: string[];
  remove: string[];
  add: string[];
  tag: string;
}

/** Key names (keygen's rule). */
export const KEY_ID = /^[a-z0-9][a-z0-9_-]{0,63}$/;
/** A cluster definition has 2..16 members (cluster/definition.ts): no list here is longer. */
export const MAX_MEMBERS = 16;
/** Org names are 1–64 of [A-Za-z0-9._-] (cluster/identity.ts): JSON never escapes them. */
const MAX_ORG_CHARS = 64;
/** A libp2p Ed25519 peer id is 52 base58 characters (as a CID string, 62); 64 covers both. */
const MAX_PEER_ID_CHARS = 64;
/** A scheduled refresh tags its slot ("scheduled <slot>"); operators' tags are short too. */
export const MAX_TAG_CHARS = 128;
const PEER_ID = /^[1-9A-HJ-NP-Za-km-z]{1,64}$|^b[a-z2-7]{1,63}$/;
const ORG = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function encodeParams(p: CeremonyParams): Uint8Array {
  const canonical: CeremonyParams = { v: 1, kind: p.kind, keyId: p.keyId, epoch: p.epoch, oldThreshold: p.oldThreshold, threshold: p.threshold, publicKey: p.publicKey, holders: p.holders, remove: [...p.remove].sort(), add: [...p.add].sort(), tag: p.tag };
  return new TextEncoder().encode(JSON.stringify(canonical));
}

/**
 * The longest canonical parameters: every list at MAX_MEMBERS entries of the longest names, the
 * numbers at 2^53 − 1, the tag at MAX_TAG_CHARS (tag characters may need JSON escapes: \u00XX is
 * 6 bytes, and a UTF-16 unit is at most 3 bytes of UTF-8, so 6 per character bounds both).
 */
export const MAX_CEREMONY_PARAMS_BYTES: number = encodeParams({
  v: 1, kind: 'reshare', keyId: 'k'.repeat(64), epoch: Number.MAX_SAFE_INTEGER, oldThreshold: Number.MAX_SAFE_INTEGER, threshold: Number.MAX_SAFE_INTEGER,
  publicKey: '0'.repeat(66), holders: Array<string>(MAX_MEMBERS).fill('p'.repeat(MAX_PEER_ID_CHARS)),
  remove: Array<string>(MAX_MEMBERS).fill('o'.repeat(MAX_ORG_CHARS)), add: Array<string>(MAX_MEMBERS).fill('o'.repeat(MAX_ORG_CHARS)), tag: '',
}).length + 6 * MAX_TAG_CHARS;

/** Why a join's parameters were refused (undefined: they are valid). */
export function paramsProblem(bytes: Uint8Array): string | undefined {
  if (bytes.length > MAX_CEREMONY_PARAMS_BYTES) return `parameters of ${bytes.length} bytes exceed the limit of ${MAX_CEREMONY_PARAMS_BYTES} bytes`;
  let p: CeremonyParams;
  try {
    p = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) as CeremonyParams;
  } catch {
    return 'parameters are not JSON';
  }
  const strs = (x: unknown, re: RegExp) => Array.isArray(x) && x.length <= MAX_MEMBERS && x.every((y) => typeof y === 'string' && re.test(y));
  if (p?.v !== 1 || (p.kind !== 'refresh' && p.kind !== 'reshare')) return 'parameters: unknown version or kind';
  if (typeof p.keyId !== 'string' || !KEY_ID.test(p.keyId)) return 'parameters: bad key name';
  if (typeof p.publicKey !== 'string' || !/^0[23][0-9a-f]{64}$/.test(p.publicKey)) return 'parameters: bad public key';
  if (![p.epoch, p.oldThreshold, p.threshold].every((n) => Number.isSafeInteger(n) && n >= 0)) return 'parameters: bad epoch or threshold';
  if (!strs(p.holders, PEER_ID) || !strs(p.remove, ORG) || !strs(p.add, ORG)) return `parameters: holders, remove and add must be at most ${MAX_MEMBERS} peer ids or org names`;
  if (typeof p.tag !== 'string' || p.tag.length > MAX_TAG_CHARS) return `parameters: tag must be a string of at most ${MAX_TAG_CHARS} characters`;
  if (Buffer.compare(encodeParams(p), bytes) !== 0) return 'parameters are not in canonical form';
  return undefined;
}

/** Strict: anything but exactly the canonical form of valid CeremonyParams is undefined. */
export function decodeParams(bytes: Uint8Array): CeremonyParams | undefined {
  if (paramsProblem(bytes)) return undefined;
  return JSON.parse(new TextDecoder().decode(bytes)) as CeremonyParams;
}
