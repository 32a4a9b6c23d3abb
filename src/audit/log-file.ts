import { closeSync, existsSync, fsyncSync, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import { DecodeError } from '../crypto/errors.ts';
import { checkpointBody, originOf, publicKeyOfPeer, signatureLine } from './checkpoint.ts';
import {
  AuditError, ZERO_HASH, decodeAuditEntry, decodeSignedEntry, entryLeafHash, signEntry, verifyEntry,
  type AuditEntry, type AuditRecordInput, type SignedAuditEntry, type Signer,
} from './entry.ts';
import { equalBytes, rootFromLeafHashes } from './merkle.ts';

/**
 * The append-only audit log file, `<home>/audit.log`: a sequence of records, each a 4-byte
 * big-endian length followed by that many bytes of SignedAuditEntry. Every append is fsync'd
 * before it returns. The Merkle tree (RFC 9162) is over the SignedAuditEntry bytes in file order.
 */
export const MAX_RECORD_BYTES = 8 << 20;

export interface LogRecord extends SignedAuditEntry {
  /** The SignedAuditEntry bytes (the Merkle leaf). */
  bytes: Uint8Array;
  /** Byte offset of the record's length prefix. */
  offset: number;
}

/** One record as stored: u32-BE length ‖ SignedAuditEntry bytes. */
export function encodeLogRecord(signed: Uint8Array): Uint8Array {
  if (signed.length === 0 || signed.length > MAX_RECORD_BYTES) throw new RangeError(`record of ${signed.length} bytes`);
  const out = new Uint8Array(4 + signed.length);
  new DataView(out.buffer).setUint32(0, signed.length);
  out.set(signed, 4);
  return out;
}

/** Where and why a log file stops parsing; `torn` = an incomplete last record (a crash during a write). */
export interface ScanProblem { index: number; offset: number; detail: string; torn: boolean }

/** Split a log file into records, stopping at the first bad one (everything after it is unframed). */
export function scanLogFile(bytes: Uint8Array): { records: LogRecord[]; problem?: ScanProblem } {
  const records: LogRecord[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  let off = 0;
  while (off < bytes.length) {
    const stop = (detail: string, torn: boolean) => ({ records, problem: { index: records.length, offset: off, detail, torn } });
    if (bytes.length - off < 4) return stop('truncated length prefix', true);
    const len = view.getUint32(off);
    if (len === 0 || len > MAX_RECORD_BYTES) return stop(`length ${len} out of range`, false);
    if (bytes.length - off - 4 < len) return stop(`record of ${len} bytes runs past the end of the file`, true);
    const rec = bytes.subarray(off + 4, off + 4 + len);
    try {
      records.push({ ...decodeSignedEntry(rec), bytes: rec, offset: off });
    } catch (e) {
      if (e instanceof DecodeError) return stop(e.message, false);
      throw e;
    }
    off += 4 + len;
  }
  return { records };
}

/**
 * Split a log file into records (strict). A bad record throws AuditError (rule 'decode') naming
 * its index and byte offset; with `allowTornTail`, an incomplete last record is reported as
 * `tornAt` instead.
 */
export function readLogFile(bytes: Uint8Array, opts: { name?: string; allowTornTail?: boolean } = {}): { records: LogRecord[]; tornAt?: number } {
  const { records, problem } = scanLogFile(bytes);
  if (!problem) return { records };
  if (problem.torn && opts.allowTornTail) return { records, tornAt: problem.offset };
  throw new AuditError('decode', `record ${problem.index} at byte offset ${problem.offset}: ${problem.detail}`, { entry: problem.index, log: opts.name ?? null });
}

/** The cluster definition hash of a log's first entry (undefined: no log, or an empty one). */
export function logClusterHash(path: string): Uint8Array | undefined {
  if (!existsSync(path)) return undefined;
  const { records } = readLogFile(new Uint8Array(readFileSync(path)), { name: path, allowTornTail: true });
  return records.length ? decodeAuditEntry(records[0]!.entry).clusterHash : undefined;
}

export interface AuditLogOptions {
  clusterHash: Uint8Array;
  peerId: string;
  /** Ed25519 signature by this peer's identity key (see entry.ts `signerOf`). */
  sign: Signer;
  /** Called when a torn last record is cut off on open. */
  onWarning?: (message: string) => void;
  /** RFC 3339 time of an entry (default: now). */
  now?: () => Date;
  /** Also verify every entry's signature on open (default false: structure only). */
  verifySignatures?: boolean;
}

export class AuditLog {
  readonly path: string;
  private readonly opts: AuditLogOptions;
  private fd: number;
  private readonly leaves: Uint8Array[];
  private prev: Uint8Array;

  private constructor(path: string, fd: number, opts: AuditLogOptions, leaves: Uint8Array[]) {
    this.path = path;
    this.fd = fd;
    this.opts = opts;
    this.leaves = leaves;
    this.prev = leaves.length ? leaves[leaves.length - 1]! : ZERO_HASH;
  }

  /**
   * Open (or create) the log and check its structure: every record decodes, is this peer's, for
   * this cluster, seq 0, 1, 2, … and prev the leaf hash of the record before. A torn last record
   * is truncated (with a warning); anything else wrong throws AuditError.
   */
  static open(path: string, opts: AuditLogOptions): AuditLog {
    const bytes = existsSync(path) ? new Uint8Array(readFileSync(path)) : new Uint8Array(0);
    const { records, tornAt } = readLogFile(bytes, { name: path, allowTornTail: true });
    const pub = opts.verifySignatures ? publicKeyOfPeer(opts.peerId) : undefined;
    const leaves: Uint8Array[] = [];
    for (const [i, r] of records.entries()) {
      const at = { entry: i, peer: opts.peerId, log: path };
      let e: AuditEntry;
      try {
        e = decodeAuditEntry(r.entry);
      } catch (err) {
        if (err instanceof DecodeError) throw new AuditError('decode', `record at byte offset ${r.offset}: ${err.message}`, at);
        throw err;
      }
      if (e.peerId !== opts.peerId) throw new AuditError('author', `entry written by ${e.peerId}`, at);
      if (pub && !verifyEntry(r, pub)) throw new AuditError('signature', 'entry signature does not verify', at);
      if (!equalBytes(e.clusterHash, opts.clusterHash)) throw new AuditError('cluster', 'entry is for another cluster definition', at);
      if (e.seq !== i) throw new AuditError('seq', `record ${i} has seq ${e.seq}`, at);
      if (!equalBytes(e.prev, i ? leaves[i - 1]! : ZERO_HASH)) throw new AuditError('prev', 'prev is not the leaf hash of the entry before', at);
      leaves.push(entryLeafHash(r.bytes));
    }
    const fd = openSync(path, existsSync(path) ? 'r+' : 'w+', 0o600);
    if (tornAt !== undefined) {
      opts.onWarning?.(`${path}: cut off a torn record at byte offset ${tornAt} (${bytes.length - tornAt} bytes) left by an interrupted write`);
      ftruncateSync(fd, tornAt);
      fsyncSync(fd);
    }
    closeSync(fd);
    return new AuditLog(path, openSync(path, 'a', 0o600), opts, leaves);
  }

  get size(): number {
    return this.leaves.length;
  }
  /** Leaf hashes in order (a copy). */
  leafHashes(): Uint8Array[] {
    return [...this.leaves];
  }
  get origin(): string {
    return originOf(this.opts.clusterHash, this.opts.peerId);
  }

  /** Sign, write and (unless `sync: false`) fsync one entry; returns its seq and leaf hash. */
  append(record: AuditRecordInput, opts: { sync?: boolean } = {}): { seq: number; leafHash: Uint8Array } {
    if (this.fd < 0) throw new Error('audit log is closed');
    const seq = this.leaves.length;
    const signed = signEntry({ clusterHash: this.opts.clusterHash, peerId: this.opts.peerId, seq, prev: this.prev, time: (this.opts.now?.() ?? new Date()).toISOString(), record }, this.opts.sign);
    const buf = encodeLogRecord(signed);
    let done = 0;
    while (done < buf.length) done += writeSync(this.fd, buf, done, buf.length - done);
    if (opts.sync !== false) fsyncSync(this.fd);
    const leafHash = entryLeafHash(signed);
    this.leaves.push(leafHash);
    this.prev = leafHash;
    return { seq, leafHash };
  }

  /** The current checkpoint as a C2SP signed note, signed by this peer under its origin. */
  checkpoint(publicKey?: Uint8Array): { size: number; root: Uint8Array; note: string } {
    const size = this.leaves.length;
    const root = rootFromLeafHashes(this.leaves);
    const body = checkpointBody({ origin: this.origin, size, root });
    const pk = publicKey ?? publicKeyOfPeer(this.opts.peerId);
    if (!pk) throw new RangeError(`peer id ${this.opts.peerId} has no Ed25519 key`);
    const sig = this.opts.sign(new TextEncoder().encode(body));
    return { size, root, note: body + '\n' + signatureLine(this.origin, pk, sig) };
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}
