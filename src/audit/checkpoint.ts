import { sha256 } from '@noble/hashes/sha2.js';
import { peerIdFromString } from '@libp2p/peer-id';
import { verifyEd25519, type Signer } from './entry.ts';
import { equalBytes, verifyConsistency } from './merkle.ts';

/**
 * Checkpoints of a peer's audit log in the C2SP formats:
 *  - tlog-checkpoint body: "<origin>\n<size>\n<base64 root>\n", origin "potluck/<cluster hash hex>/<peer id>";
 *  - signed-note: body, a blank line, then lines "— <name> <base64(key ID(4) ‖ Ed25519 signature(64))>",
 *    key ID = SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4] (signature type 0x01 = Ed25519).
 * Each peer's key name is its own origin. Witnesses (the other peers, C2SP tlog-witness style) add
 * their line to the note only after checking the author's signature and, if they cosigned an
 * earlier size, a consistency proof from it (RFC 9162 §2.1.4).
 */
export class CheckpointError extends Error {
  override readonly name = 'CheckpointError';
}

export interface Checkpoint { origin: string; size: number; root: Uint8Array }
export interface NoteSignature { name: string; keyId: Uint8Array; signature: Uint8Array }
export interface NoteKey { name: string; publicKey: Uint8Array }

const EM_DASH = '\u2014';
const ORIGIN = /^potluck\/([0-9a-f]{64})\/([1-9A-HJ-NP-Za-km-z]+)$/;
const utf8 = (s: string) => new TextEncoder().encode(s);
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export const originOf = (clusterHash: Uint8Array, peerId: string): string => `potluck/${Buffer.from(clusterHash).toString('hex')}/${peerId}`;

/** The cluster hash (hex) and peer id named by an origin line; throws CheckpointError. */
export function parseOrigin(origin: string): { clusterHash: string; peerId: string } {
  const m = ORIGIN.exec(origin);
  if (!m) throw new CheckpointError(`origin "${origin.slice(0, 120)}" is not potluck/<cluster hash hex>/<peer id>`);
  return { clusterHash: m[1]!, peerId: m[2]! };
}

/** The Ed25519 key of a peer id (libp2p identity), or undefined. */
export function publicKeyOfPeer(peerId: string): Uint8Array | undefined {
  try {
    const pk = peerIdFromString(peerId).publicKey;
    return pk?.type === 'Ed25519' ? pk.raw : undefined;
  } catch {
    return undefined;
  }
}

export function checkpointBody(c: Checkpoint): string {
  if (!Number.isSafeInteger(c.size) || c.size < 0) throw new RangeError('checkpoint size must be a non-negative safe integer');
  if (c.root.length !== 32) throw new RangeError('checkpoint root must be 32 bytes');
  if (!c.origin || /[\n]/.test(c.origin)) throw new RangeError('checkpoint origin must be one non-empty line');
  return `${c.origin}\n${c.size}\n${b64(c.root)}\n`;
}

/** Strict: exactly origin, size (decimal, no leading zeros) and a 32-byte base64 root; no extension lines. */
export function parseCheckpointBody(body: string): Checkpoint {
  const lines = body.split('\n');
  if (lines.length !== 4 || lines[3] !== '') throw new CheckpointError('checkpoint body must be exactly three newline-terminated lines');
  const [origin, size, root] = lines as [string, string, string];
  if (!origin) throw new CheckpointError('checkpoint origin is empty');
  if (!/^(?:0|[1-9][0-9]{0,15})$/.test(size) || !Number.isSafeInteger(Number(size))) throw new CheckpointError(`checkpoint size "${size.slice(0, 20)}" is not a decimal integer`);
  if (!B64.test(root)) throw new CheckpointError('checkpoint root is not base64');
  const r = new Uint8Array(Buffer.from(root, 'base64'));
  if (r.length !== 32) throw new CheckpointError('checkpoint root is not 32 bytes');
  return { origin, size: Number(size), root: r };
}

/** C2SP signed-note key ID of an Ed25519 key: SHA-256(name ‖ "\n" ‖ 0x01 ‖ key)[:4]. */
export function noteKeyId(name: string, publicKey: Uint8Array): Uint8Array {
  const n = utf8(name);
  const m = new Uint8Array(n.length + 2 + publicKey.length);
  m.set(n);
  m[n.length] = 0x0a;
  m[n.length + 1] = 0x01;
  m.set(publicKey, n.length + 2);
  return sha256(m).subarray(0, 4);
}

const validName = (name: string) => name.length > 0 && !/[\s+]/.test(name);

export function signatureLine(name: string, publicKey: Uint8Array, signature: Uint8Array): string {
  if (!validName(name)) throw new RangeError(`bad key name "${name}"`);
  const blob = new Uint8Array(4 + signature.length);
  blob.set(noteKeyId(name, publicKey));
  blob.set(signature, 4);
  return `${EM_DASH} ${name} ${b64(blob)}\n`;
}

/** A note with one signature line per signer (each signs the body bytes). */
export function signNote(body: string, signers: { name: string; publicKey: Uint8Array; sign: Signer }[]): string {
  if (!body.endsWith('\n')) throw new RangeError('note text must end with a newline');
  return body + '\n' + signers.map((s) => signatureLine(s.name, s.publicKey, s.sign(utf8(body)))).join('');
}

/** Split a signed note into body and signature lines (C2SP signed-note grammar). Throws CheckpointError. */
export function parseNote(text: string): { body: string; signatures: NoteSignature[] } {
  const at = text.lastIndexOf('\n\n');
  if (at < 0) throw new CheckpointError('note has no signature block');
  const body = text.slice(0, at + 1);
  const block = text.slice(at + 2);
  if (!block.endsWith('\n')) throw new CheckpointError('note signature block must end with a newline');
  const signatures: NoteSignature[] = [];
  for (const line of block.slice(0, -1).split('\n')) {
    const m = /^\u2014 (\S+) (\S+)$/.exec(line);
    if (!m || !validName(m[1]!) || !B64.test(m[2]!)) throw new CheckpointError(`malformed signature line "${line.slice(0, 80)}"`);
    const blob = new Uint8Array(Buffer.from(m[2]!, 'base64'));
    if (blob.length < 5) throw new CheckpointError('signature line too short');
    signatures.push({ name: m[1]!, keyId: blob.slice(0, 4), signature: blob.slice(4) });
  }
  if (signatures.length === 0) throw new CheckpointError('note has no signatures');
  return { body, signatures };
}

/**
 * Verify a note against known keys. Lines of unknown keys are ignored (C2SP); a line of a known key
 * that does not verify is an error. Returns the names whose signatures verified.
 */
export function verifyNote(text: string, keys: readonly NoteKey[]): { body: string; verified: string[] } {
  const { body, signatures } = parseNote(text);
  const verified: string[] = [];
  for (const s of signatures) {
    const k = keys.find((x) => x.name === s.name && equalBytes(noteKeyId(x.name, x.publicKey), s.keyId));
    if (!k) continue;
    if (s.signature.length !== 64 || !verifyEd25519(k.publicKey, utf8(body), s.signature)) throw new CheckpointError(`signature of ${s.name} does not verify`);
    if (!verified.includes(s.name)) verified.push(s.name);
  }
  return { body, verified };
}

/** The keys that can sign potluck checkpoints: every origin name maps to its peer's identity key. */
export function originKey(origin: string): NoteKey | undefined {
  try {
    const pk = publicKeyOfPeer(parseOrigin(origin).peerId);
    return pk ? { name: origin, publicKey: pk } : undefined;
  } catch {
    return undefined;
  }
}

/** Parse a signed checkpoint whose author (the origin's peer) signed it. Returns the checkpoint and who signed. */
export function openCheckpoint(text: string, extraKeys: readonly NoteKey[] = []): { checkpoint: Checkpoint; verified: string[] } {
  const { body, signatures } = parseNote(text);
  const checkpoint = parseCheckpointBody(body);
  const author = originKey(checkpoint.origin);
  if (!author) throw new CheckpointError(`origin ${checkpoint.origin} names no Ed25519 peer`);
  const others = signatures.map((s) => originKey(s.name)).filter((k): k is NoteKey => k !== undefined);
  const { verified } = verifyNote(text, [author, ...others, ...extraKeys]);
  if (!verified.includes(author.name)) throw new CheckpointError(`checkpoint of ${checkpoint.origin} is not signed by its author`);
  return { checkpoint, verified };
}

export interface CosignOptions {
  /** The witness's own origin (its key name) and signer. */
  name: string;
  publicKey: Uint8Array;
  sign: Signer;
  /** The last checkpoint of this log the witness cosigned, and a consistency proof from it to this one. */
  previous?: { size: number; root: Uint8Array; proof: readonly Uint8Array[] };
}

/**
 * Witness side (C2SP tlog-witness): verify the author's signature and consistency with the last
 * cosigned checkpoint, then add this peer's line. Returns the new note and the raw signatures.
 * Throws CheckpointError.
 */
export function cosignCheckpoint(text: string, w: CosignOptions): { note: string; checkpoint: Checkpoint; authorSignature: Uint8Array; cosignature: Uint8Array } {
  const { checkpoint } = openCheckpoint(text);
  const { body, signatures } = parseNote(text);
  const author = originKey(checkpoint.origin)!;
  const authorSignature = signatures.find((s) => s.name === author.name && equalBytes(s.keyId, noteKeyId(author.name, author.publicKey)))!.signature;
  const p = w.previous;
  if (p && !verifyConsistency(p.size, checkpoint.size, p.root, checkpoint.root, p.proof))
    throw new CheckpointError(`checkpoint of ${checkpoint.origin} at size ${checkpoint.size} is not consistent with the one cosigned at size ${p.size}`);
  const cosignature = w.sign(utf8(body));
  return { note: text + signatureLine(w.name, w.publicKey, cosignature), checkpoint, authorSignature, cosignature };
}

/** Rebuild the note of an AuditCosignature record (author line, then the witness's). */
export function noteOfCosignature(c: { origin: string; size: number; root: Uint8Array; authorSignature: Uint8Array; cosignature: Uint8Array }, witnessOrigin: string): string {
  const author = originKey(c.origin);
  const witness = originKey(witnessOrigin);
  if (!author || !witness) throw new CheckpointError('origin names no Ed25519 peer');
  return checkpointBody(c) + '\n' + signatureLine(author.name, author.publicKey, c.authorSignature) + signatureLine(witness.name, witness.publicKey, c.cosignature);
}
