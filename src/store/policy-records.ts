/**
 * The stateful half of each org's batch policy (issue 4), in the peer's SQLite database
 * (`PeerStore.db`, WAL + synchronous=FULL): the anti-equivocation record per (chainId, from,
 * nonce) (system-anchors §1.4), evidence of refused equivocation attempts, every verdict, and an
 * export/import of the records modelled on EIP-3076 (Web3Signer's slashing protection). Nothing is
 * cached in memory: every decision reads the slot inside its own write transaction, so another
 * process (an import) can never interleave with it.
 */
import type Database from 'better-sqlite3';
import { isObj, JsonProblems, show as showValue } from '../policy/json-problems.ts';
import { getAddress, isAddress, keccak256, serializeTransaction, type Address, type Hex } from 'viem';
import { contentKey, raiseFloor, recordAfterApproval, slotKey } from '../policy/equivocation.ts';
import { toSerializable, type BatchTransaction } from '../policy/transaction-args.ts';
import type { Reason, Verdict } from '../policy/verdict.ts';

export class PolicyRecordsError extends Error {
  override readonly name: string = 'PolicyRecordsError';
}

/** A malformed interchange file: `problems` name the JSON path of each bad field (`data[0].records[2].nonce: …`). */
export class InterchangeError extends PolicyRecordsError {
  override readonly name = 'InterchangeError';
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`invalid nonce-record interchange: ${problems.join('; ')}`);
    this.problems = problems;
  }
}

/** An import that would replace recorded content at some slots; nothing was written. */
export class InterchangeConflictError extends PolicyRecordsError {
  override readonly name = 'InterchangeConflictError';
  /** `chainId/from/nonce` of every conflicting slot. */
  readonly slots: readonly string[];
  constructor(conflicts: readonly { slot: string; local: Hex; imported: Hex }[]) {
    super(`import refused, nothing written: ${conflicts.length} slot(s) hold other content locally: ${conflicts.map((c) => `${c.slot} (local ${c.local}, imported ${c.imported})`).join(', ')}`);
    this.slots = conflicts.map((c) => c.slot);
  }
}

// ---- canonical JSON of a BatchTransaction ----

/** Field order of the canonical form; bigints as decimal strings, addresses EIP-55. */
export function batchTxToJson(tx: BatchTransaction): Record<string, unknown> {
  return {
    type: tx.type, chainId: tx.chainId, from: tx.from, to: tx.to, nonce: tx.nonce,
    gas: tx.gas.toString(), maxFeePerGas: tx.maxFeePerGas.toString(), maxPriorityFeePerGas: tx.maxPriorityFeePerGas.toString(),
    maxFeePerBlobGas: tx.maxFeePerBlobGas === null ? null : tx.maxFeePerBlobGas.toString(),
    value: tx.value.toString(), data: tx.data,
    accessList: tx.accessList.map((e) => ({ address: e.address, storageKeys: [...(e.storageKeys ?? [])] })),
    blobVersionedHashes: tx.blobVersionedHashes === null ? null : [...tx.blobVersionedHashes],
  };
}

export const serializeBatchTx = (tx: BatchTransaction): string => JSON.stringify(batchTxToJson(tx));

const DECIMAL = /^(?:0|[1-9][0-9]*)$/;
const BYTES = /^0x(?:[0-9a-f]{2})*$/;
const HASH32 = /^0x[0-9a-f]{64}$/;
const TX_KEYS = Object.keys(batchTxToJson({
  type: 'eip1559', chainId: 1, from: '0x0000000000000000000000000000000000000000', to: null, nonce: 0, gas: 0n, maxFeePerGas: 0n,
  maxPriorityFeePerGas: 0n, maxFeePerBlobGas: null, value: 0n, data: '0x', accessList: [], blobVersionedHashes: null,
}));
const show = (v: unknown): string => showValue(v, 70);

/** The interchange readers on top of the shared problem collector. */
class Problems extends JsonProblems {
  big(v: unknown, path: string, bits: number): bigint | undefined {
    if (typeof v !== 'string' || !DECIMAL.test(v)) return this.bad(path, `must be a decimal string, got ${show(v)}`);
    const x = BigInt(v);
    return x < 1n << BigInt(bits) ? x : this.bad(path, `exceeds ${bits} bits`);
  }
  int(v: unknown, path: string, min: number): number | undefined {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) return this.bad(path, `must be a whole number ≥ ${min} and ≤ 2^53-1, got ${show(v)}`);
    return v;
  }
  address(v: unknown, path: string): Address | undefined {
    if (typeof v !== 'string' || !isAddress(v)) return this.bad(path, `not an address (valid EIP-55 checksum if mixed case): ${show(v)}`);
    return getAddress(v);
  }
}

/** Strict decoding of the canonical JSON object; invariants as `decodeTransactionArgs` enforces them. */
function batchTxFromJson(v: unknown, path: string, p: Problems): BatchTransaction | undefined {
  if (!isObj(v)) return p.bad(path, `must be an object, got ${show(v)}`);
  const before = p.problems.length;
  p.keys(v, path, TX_KEYS);
  const type = v.type;
  if (type !== 'eip1559' && type !== 'eip4844') p.bad(`${path}.type`, `must be "eip1559" or "eip4844", got ${show(type)}`);
  const blob = type === 'eip4844';
  const chainId = p.int(v.chainId, `${path}.chainId`, 1);
  const from = p.address(v.from, `${path}.from`);
  const to = v.to === null ? null : p.address(v.to, `${path}.to`);
  if (blob && v.to === null) p.bad(`${path}.to`, 'required for eip4844');
  const nonce = p.int(v.nonce, `${path}.nonce`, 0);
  const gas = p.big(v.gas, `${path}.gas`, 64);
  const maxFeePerGas = p.big(v.maxFeePerGas, `${path}.maxFeePerGas`, 256);
  const maxPriorityFeePerGas = p.big(v.maxPriorityFeePerGas, `${path}.maxPriorityFeePerGas`, 256);
  if (maxFeePerGas !== undefined && maxPriorityFeePerGas !== undefined && maxFeePerGas < maxPriorityFeePerGas) p.bad(`${path}.maxFeePerGas`, 'below maxPriorityFeePerGas');
  const maxFeePerBlobGas = v.maxFeePerBlobGas === null ? null : p.big(v.maxFeePerBlobGas, `${path}.maxFeePerBlobGas`, 256);
  if (blob !== (v.maxFeePerBlobGas !== null)) p.bad(`${path}.maxFeePerBlobGas`, blob ? 'required for eip4844' : 'must be null for eip1559');
  const value = p.big(v.value, `${path}.value`, 256);
  const data = v.data;
  if (typeof data !== 'string' || !BYTES.test(data)) p.bad(`${path}.data`, `not lowercase 0x-hex bytes: ${show(data)}`);
  const accessList: { address: Address; storageKeys: Hex[] }[] = [];
  if (!Array.isArray(v.accessList)) p.bad(`${path}.accessList`, `must be an array, got ${show(v.accessList)}`);
  else v.accessList.forEach((e: unknown, i) => {
    const at = `${path}.accessList[${i}]`;
    if (!isObj(e)) return p.bad(at, `must be an object, got ${show(e)}`);
    p.keys(e, at, ['address', 'storageKeys']);
    const address = p.address(e.address, `${at}.address`);
    const keys = Array.isArray(e.storageKeys) ? e.storageKeys : p.bad(`${at}.storageKeys`, 'must be an array');
    keys?.forEach((k: unknown, j) => { if (typeof k !== 'string' || !HASH32.test(k)) p.bad(`${at}.storageKeys[${j}]`, `not a lowercase 32-byte hash: ${show(k)}`); });
    if (address && keys) accessList.push({ address, storageKeys: keys as Hex[] });
  });
  let blobVersionedHashes: Hex[] | null = null;
  if (blob !== (v.blobVersionedHashes !== null)) p.bad(`${path}.blobVersionedHashes`, blob ? 'required for eip4844' : 'must be null for eip1559');
  else if (blob) {
    const h = v.blobVersionedHashes;
    if (!Array.isArray(h) || h.length === 0) p.bad(`${path}.blobVersionedHashes`, 'must be a non-empty array');
    else {
      h.forEach((x: unknown, i) => { if (typeof x !== 'string' || !HASH32.test(x) || !x.startsWith('0x01')) p.bad(`${path}.blobVersionedHashes[${i}]`, `not a lowercase version-0x01 hash: ${show(x)}`); });
      blobVersionedHashes = h as Hex[];
    }
  }
  if (p.problems.length > before) return undefined;
  return {
    type: type as BatchTransaction['type'], chainId: chainId!, from: from!, to: to ?? null, nonce: nonce!, gas: gas!, maxFeePerGas: maxFeePerGas!,
    maxPriorityFeePerGas: maxPriorityFeePerGas!, maxFeePerBlobGas: maxFeePerBlobGas ?? null, value: value!, data: data as Hex, accessList, blobVersionedHashes,
  };
}

/** Inverse of `serializeBatchTx`; throws `PolicyRecordsError` naming the bad field. */
export function parseBatchTx(text: string): BatchTransaction {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new PolicyRecordsError(`stored request is not JSON: ${(e as Error).message}`);
  }
  const p = new Problems();
  const tx = batchTxFromJson(v, 'request', p);
  if (!tx) throw new PolicyRecordsError(`stored request is malformed: ${p.problems.join('; ')}`);
  return tx;
}

// ---- schema ----

const SCHEMA_VERSION = 2;
const SCHEMA = `
CREATE TABLE IF NOT EXISTS policy_schema (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS nonce_records (
  chain_id INTEGER NOT NULL,
  sender TEXT NOT NULL,
  nonce INTEGER NOT NULL,
  content_key TEXT NOT NULL,
  request TEXT NOT NULL,
  first_approved_at TEXT NOT NULL,
  last_approved_at TEXT NOT NULL,
  PRIMARY KEY (chain_id, sender, nonce)
) STRICT;
CREATE TABLE IF NOT EXISTS verdicts (
  id INTEGER PRIMARY KEY,
  session TEXT,
  kind TEXT NOT NULL CHECK (kind IN ('transaction', 'block-payload', 'raw-digest')),
  role TEXT CHECK (role IN ('requester', 'approver')),
  requester TEXT NOT NULL,
  client TEXT,
  approve INTEGER NOT NULL CHECK (approve IN (0, 1)),
  reasons TEXT NOT NULL,
  digest TEXT,
  at TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS verdicts_at ON verdicts (at);
`;

// ---- types ----

export type VerdictKind = 'transaction' | 'block-payload' | 'raw-digest';

/** Who asked, for the verdict and evidence rows. */
export interface VerdictMeta {
  /** Session id as 0x-hex, or null (a requester decides before any session exists). */
  session: string | null;
  /** Org of the requesting peer. */
  requester: string;
  /** API client (certificate DNS SAN) when this peer's own client asked, else null. */
  client: string | null;
  role?: 'requester' | 'approver';
}

export interface VerdictRow {
  id: number;
  session: string | null;
  kind: VerdictKind;
  role: 'requester' | 'approver' | null;
  requester: string;
  client: string | null;
  approve: boolean;
  reasons: Reason[];
  /** 0x-hex digest of the request, null when the request did not decode. */
  digest: string | null;
  at: string;
}

export interface NonceRecord {
  chainId: number;
  /** Lowercase. */
  from: string;
  nonce: number;
  contentKey: Hex;
  /** The latest approved request: its fees are the floor at this slot. */
  request: BatchTransaction;
  firstApprovedAt: string;
  lastApprovedAt: string;
}

export interface InterchangeRecord {
  nonce: string;
  content_key: Hex;
  request: Record<string, unknown>;
  first_approved_at: string;
  last_approved_at: string;
}

/** EIP-3076's shape (metadata + data per key), with slots for its (pubkey, slot). Integers as decimal strings, as EIP-3076 does. */
export interface Interchange {
  metadata: { interchange_format: 'potluck.nonce-records'; interchange_format_version: '1'; exported_at: string; cluster: Address | null };
  data: { chain_id: string; from: string; records: InterchangeRecord[] }[];
}

export interface ImportResult {
  inserted: number;
  raised: number;
  unchanged: number;
}

interface RecordRow {
  chain_id: number; sender: string; nonce: number; content_key: string; request: string; first_approved_at: string; last_approved_at: string;
}

const INTERCHANGE_FORMAT = 'potluck.nonce-records';
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z$/;
const SESSION = /^0x[0-9a-fA-F]+$/;

const txDigest = (tx: BatchTransaction): Hex => keccak256(serializeTransaction(toSerializable(tx)));

export class PolicyRecords {
  private readonly db: Database.Database;
  private readonly now: () => number;

  /** `db`: an open database in WAL mode with synchronous=FULL (`PeerStore.db`). `now` in ms, for the timestamps. */
  constructor(db: Database.Database, opts: { now?: () => number } = {}) {
    this.db = db;
    this.now = opts.now ?? Date.now;
    db.exec(SCHEMA);
    let row = db.prepare('SELECT version FROM policy_schema WHERE id = 1').get() as { version: number } | undefined;
    if (!row) {
      db.prepare('INSERT OR IGNORE INTO policy_schema (id, version) VALUES (1, ?)').run(SCHEMA_VERSION);
      row = db.prepare('SELECT version FROM policy_schema WHERE id = 1').get() as { version: number };
    }
    if (row.version !== SCHEMA_VERSION) throw new PolicyRecordsError(`policy records have schema ${row.version}; this Potluck expects ${SCHEMA_VERSION}`);
  }

  private iso(): string {
    return new Date(this.now()).toISOString();
  }

  private insertVerdict(kind: VerdictKind, verdict: Verdict, meta: VerdictMeta, digest: string | null, at: string): number {
    if (meta.session !== null && !SESSION.test(meta.session)) throw new PolicyRecordsError('verdict session id must be 0x-hex or null');
    const reasons = JSON.stringify(verdict.reasons.map((r) => ({ rule: r.rule, ok: r.ok, detail: r.detail })));
    return Number(this.db.prepare('INSERT INTO verdicts (session, kind, role, requester, client, approve, reasons, digest, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(meta.session?.toLowerCase() ?? null, kind, meta.role ?? null, meta.requester, meta.client, verdict.approve ? 1 : 0, reasons, digest?.toLowerCase() ?? null, at).lastInsertRowid);
  }

  /** Records a verdict that touches no nonce record (block payloads, raw digests, undecodable requests); returns its row id. */
  recordVerdict(v: VerdictMeta & { kind: VerdictKind; verdict: Verdict; digest: string | null }): number {
    return this.insertVerdict(v.kind, v.verdict, v, v.digest, this.iso());
  }

  /**
   * Decides a decoded transaction against its slot in one `BEGIN IMMEDIATE` transaction: reads
   * the record, runs `evaluate(recorded)` (evaluateTransaction with `context.recorded`) and, only if
   * it approves, claims the slot and writes the verdict row. The commit is fsync'd
   * (synchronous=FULL) before this returns, so the claim exists before any approval or partial
   * leaves the process. A refusal writes nothing (issue 11: a member flooding refused requests
   * costs no disk). The first approval at a slot records its request, whose fees are the floor; a
   * later approval of the same content leaves the floor alone: only a signature raises it
   * (`raiseFloor`), so approvals at inflated fees that are never signed cannot lock out the
   * batcher's own fee bumps. An approval without an ok 'equivocation' reason throws.
   */
  decideTransaction(tx: BatchTransaction, evaluate: (recorded: BatchTransaction | null) => Verdict, meta: VerdictMeta & { digest?: string }): Verdict {
    return this.db.transaction((): Verdict => {
      const at = this.iso();
      const row = this.row(tx.chainId, tx.from, tx.nonce);
      const recorded = row ? parseBatchTx(row.request) : null;
      const verdict = evaluate(recorded);
      if (!verdict.approve) return verdict;
      const eq = verdict.reasons.find((r) => r.rule === 'equivocation');
      if (!eq?.ok) throw new PolicyRecordsError(`approved ${slotKey(tx)} without the equivocation rule: evaluate must pass context.recorded`);
      try {
        recordAfterApproval(recorded, tx);
      } catch (e) {
        throw new PolicyRecordsError(`verdict approved a request that equivocates at ${slotKey(tx)}: ${(e as Error).message}`);
      }
      if (!row)
        this.db.prepare('INSERT INTO nonce_records (chain_id, sender, nonce, content_key, request, first_approved_at, last_approved_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
          .run(tx.chainId, tx.from.toLowerCase(), tx.nonce, contentKey(tx), serializeBatchTx(tx), at, at);
      this.insertVerdict('transaction', verdict, meta, meta.digest ?? txDigest(tx), at);
      return verdict;
    }).immediate();
  }

  /**
   * A signature at this slot is about to leave (co-signer: before its partial; requester: before
   * it proposes): raise the floor to its fees. Call inside the transaction that marks the
   * presignature used, so both reach the disk in one fsync. Throws if the slot holds other content
   * (an approval always claims it first).
   */
  raiseFloor(tx: BatchTransaction): void {
    const row = this.row(tx.chainId, tx.from, tx.nonce);
    if (!row) throw new PolicyRecordsError(`no record at ${slotKey(tx)}: a signature needs this peer's approval first`);
    if (row.content_key !== contentKey(tx)) throw new PolicyRecordsError(`the record at ${slotKey(tx)} holds other content`);
    const mine = parseBatchTx(row.request);
    const merged = raiseFloor(mine, tx);
    this.db.prepare('UPDATE nonce_records SET request = ?, last_approved_at = ? WHERE chain_id = ? AND sender = ? AND nonce = ?')
      .run(serializeBatchTx(merged), this.iso(), tx.chainId, tx.from.toLowerCase(), tx.nonce);
  }

  /** A record in the interchange's JSON shape (for logs and incidents). */
  recordJson(r: NonceRecord): Record<string, unknown> {
    return { chain_id: String(r.chainId), from: r.from, nonce: String(r.nonce), content_key: r.contentKey, request: batchTxToJson(r.request), first_approved_at: r.firstApprovedAt, last_approved_at: r.lastApprovedAt };
  }

  /** The highest nonce with a record for (chainId, from), or null: the nonce window without an L1 (issue 11). */
  highestNonce(chainId: number, from: string): number | null {
    const r = this.db.prepare('SELECT max(nonce) AS n FROM nonce_records WHERE chain_id = ? AND sender = ?').get(chainId, from.toLowerCase()) as { n: number | null };
    return r.n;
  }

  /** Delete the record at a slot (`potluck policy release`); returns what was deleted, or null. */
  release(chainId: number, from: string, nonce: number): NonceRecord | null {
    return this.db.transaction(() => {
      const r = this.row(chainId, from, nonce);
      if (!r) return null;
      this.db.prepare('DELETE FROM nonce_records WHERE chain_id = ? AND sender = ? AND nonce = ?').run(chainId, from.toLowerCase(), nonce);
      return PolicyRecords.toRecord(r);
    }).immediate();
  }

  private row(chainId: number, from: string, nonce: number): RecordRow | undefined {
    return this.db.prepare('SELECT * FROM nonce_records WHERE chain_id = ? AND sender = ? AND nonce = ?').get(chainId, from.toLowerCase(), nonce) as RecordRow | undefined;
  }

  private static toRecord(r: RecordRow): NonceRecord {
    return {
      chainId: r.chain_id, from: r.sender, nonce: r.nonce, contentKey: r.content_key as Hex, request: parseBatchTx(r.request),
      firstApprovedAt: r.first_approved_at, lastApprovedAt: r.last_approved_at,
    };
  }

  /** The record at (chainId, from, nonce), or null. */
  recordAt(chainId: number, from: string, nonce: number): NonceRecord | null {
    const r = this.row(chainId, from, nonce);
    return r ? PolicyRecords.toRecord(r) : null;
  }

  /** Verdicts in insertion order, from `since` (ISO time or Date, inclusive); at most `limit` (default 1000). */
  verdicts(opts: { since?: string | Date; limit?: number } = {}): VerdictRow[] {
    const since = opts.since === undefined ? '' : new Date(opts.since).toISOString();
    const rows = this.db.prepare('SELECT * FROM verdicts WHERE at >= ? ORDER BY id LIMIT ?').all(since, opts.limit ?? 1000) as {
      id: number; session: string | null; kind: VerdictKind; role: 'requester' | 'approver' | null; requester: string; client: string | null; approve: number; reasons: string; digest: string | null; at: string;
    }[];
    return rows.map((r) => ({ ...r, approve: r.approve === 1, reasons: JSON.parse(r.reasons) as Reason[] }));
  }

  /** The records as an interchange file (EIP-3076 style), ordered by chain, sender and nonce; `clusterAddress` keeps only its records. */
  exportInterchange(opts: { clusterAddress?: string } = {}): Interchange {
    const cluster = opts.clusterAddress === undefined ? null : getAddress(opts.clusterAddress);
    // One read transaction: a consistent snapshot even while the daemon writes (WAL).
    const rows = this.db.transaction(() => (cluster
      ? this.db.prepare('SELECT * FROM nonce_records WHERE sender = ? ORDER BY chain_id, sender, nonce').all(cluster.toLowerCase())
      : this.db.prepare('SELECT * FROM nonce_records ORDER BY chain_id, sender, nonce').all()) as RecordRow[])();
    const data: Interchange['data'] = [];
    for (const r of rows) {
      let group = data.at(-1);
      if (!group || group.chain_id !== String(r.chain_id) || group.from !== r.sender) data.push(group = { chain_id: String(r.chain_id), from: r.sender, records: [] });
      group.records.push({
        nonce: String(r.nonce), content_key: r.content_key as Hex, request: batchTxToJson(parseBatchTx(r.request)),
        first_approved_at: r.first_approved_at, last_approved_at: r.last_approved_at,
      });
    }
    return { metadata: { interchange_format: INTERCHANGE_FORMAT, interchange_format_version: '1', exported_at: this.iso(), cluster }, data };
  }

  /**
   * Imports an interchange file, all or nothing, in one `BEGIN IMMEDIATE` transaction. Per slot:
   * absent locally → inserted; same content key → the fee floor is raised to the higher value of
   * each fee field, never lowered; other content → conflict. Any conflict refuses the whole
   * import, naming every conflicting slot (EIP-3076: an import must never weaken protection).
   */
  importInterchange(json: unknown, opts: { clusterAddress?: string } = {}): ImportResult {
    const records = parseInterchange(json, opts);
    return this.db.transaction((): ImportResult => {
      const res: ImportResult = { inserted: 0, raised: 0, unchanged: 0 };
      const conflicts: { slot: string; local: Hex; imported: Hex }[] = [];
      const writes: (() => void)[] = [];
      for (const rec of records) {
        const local = this.row(rec.request.chainId, rec.request.from, rec.request.nonce);
        const [chainId, from, nonce] = [rec.request.chainId, rec.request.from.toLowerCase(), rec.request.nonce];
        if (!local) {
          res.inserted++;
          writes.push(() => this.db.prepare('INSERT INTO nonce_records (chain_id, sender, nonce, content_key, request, first_approved_at, last_approved_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
            .run(chainId, from, nonce, rec.contentKey, serializeBatchTx(rec.request), rec.firstApprovedAt, rec.lastApprovedAt));
          continue;
        }
        if (local.content_key !== rec.contentKey) {
          conflicts.push({ slot: slotKey(rec.request), local: local.content_key as Hex, imported: rec.contentKey });
          continue;
        }
        const mine = parseBatchTx(local.request);
        const merged = raiseFloor(mine, rec.request);
        const raised = merged !== mine;
        const first = rec.firstApprovedAt < local.first_approved_at ? rec.firstApprovedAt : local.first_approved_at;
        const last = rec.lastApprovedAt > local.last_approved_at ? rec.lastApprovedAt : local.last_approved_at;
        if (raised) res.raised++;
        else res.unchanged++;
        if (raised || first !== local.first_approved_at || last !== local.last_approved_at) {
          writes.push(() => this.db.prepare('UPDATE nonce_records SET request = ?, first_approved_at = ?, last_approved_at = ? WHERE chain_id = ? AND sender = ? AND nonce = ?')
            .run(serializeBatchTx(merged), first, last, chainId, from, nonce));
        }
      }
      if (conflicts.length > 0) throw new InterchangeConflictError(conflicts);
      for (const w of writes) w();
      return res;
    }).immediate();
  }
}

interface ParsedRecord {
  contentKey: Hex;
  request: BatchTransaction;
  firstApprovedAt: string;
  lastApprovedAt: string;
}

/**
 * Validates an interchange file without touching the database; throws `InterchangeError` naming
 * the path of every bad field. Each record's content key is recomputed from its request.
 */
export function parseInterchange(json: unknown, opts: { clusterAddress?: string } = {}): ParsedRecord[] {
  const p = new Problems();
  const fail = (): never => { throw new InterchangeError(p.problems); };
  if (!isObj(json)) { p.bad('(file)', `must be an object, got ${show(json)}`); fail(); }
  const top = json as Record<string, unknown>;
  p.keys(top, '', ['metadata', 'data']);
  const m = top.metadata;
  let cluster: Address | null | undefined = null;
  if (!isObj(m)) p.bad('metadata', `must be an object, got ${show(m)}`);
  else {
    p.keys(m, 'metadata', ['interchange_format', 'interchange_format_version', 'exported_at', 'cluster']);
    if (m.interchange_format !== INTERCHANGE_FORMAT) p.bad('metadata.interchange_format', `must be "${INTERCHANGE_FORMAT}", got ${show(m.interchange_format)}`);
    if (m.interchange_format_version !== '1') p.bad('metadata.interchange_format_version', `must be "1", got ${show(m.interchange_format_version)}`);
    if (!isTime(m.exported_at)) p.bad('metadata.exported_at', `must be an ISO-8601 UTC time, got ${show(m.exported_at)}`);
    cluster = m.cluster === null ? null : p.address(m.cluster, 'metadata.cluster');
  }
  const expected = opts.clusterAddress === undefined ? null : getAddress(opts.clusterAddress);
  // As EIP-3076 refuses a file for another genesis_validators_root: refuse a file for another key.
  if (expected && cluster && cluster !== expected) p.bad('metadata.cluster', `file is for ${cluster}, this cluster is ${expected}`);
  const only = expected ?? cluster;

  const out: ParsedRecord[] = [];
  const seen = new Map<string, string>();
  if (!Array.isArray(top.data)) p.bad('data', `must be an array, got ${show(top.data)}`);
  else top.data.forEach((g: unknown, i) => {
    const gp = `data[${i}]`;
    if (!isObj(g)) return p.bad(gp, `must be an object, got ${show(g)}`);
    p.keys(g, gp, ['chain_id', 'from', 'records']);
    const chainId = typeof g.chain_id === 'string' && DECIMAL.test(g.chain_id) && g.chain_id !== '0' && Number.isSafeInteger(Number(g.chain_id))
      ? Number(g.chain_id) : p.bad(`${gp}.chain_id`, `must be a decimal string in 1..2^53-1, got ${show(g.chain_id)}`);
    const from = p.address(g.from, `${gp}.from`);
    if (from && only && from !== only) p.bad(`${gp}.from`, `${from.toLowerCase()} is not the cluster address ${only}`);
    if (!Array.isArray(g.records)) return p.bad(`${gp}.records`, `must be an array, got ${show(g.records)}`);
    g.records.forEach((r: unknown, j) => {
      const rp = `${gp}.records[${j}]`;
      if (!isObj(r)) return p.bad(rp, `must be an object, got ${show(r)}`);
      p.keys(r, rp, ['nonce', 'content_key', 'request', 'first_approved_at', 'last_approved_at']);
      const nonce = typeof r.nonce === 'string' && DECIMAL.test(r.nonce) && Number.isSafeInteger(Number(r.nonce))
        ? Number(r.nonce) : p.bad(`${rp}.nonce`, `must be a decimal string in 0..2^53-1, got ${show(r.nonce)}`);
      const key = typeof r.content_key === 'string' && HASH32.test(r.content_key) ? r.content_key as Hex : p.bad(`${rp}.content_key`, `must be a lowercase 0x-hex 32-byte hash, got ${show(r.content_key)}`);
      const first = isTime(r.first_approved_at) ? new Date(r.first_approved_at).toISOString() : p.bad(`${rp}.first_approved_at`, `must be an ISO-8601 UTC time, got ${show(r.first_approved_at)}`);
      const last = isTime(r.last_approved_at) ? new Date(r.last_approved_at).toISOString() : p.bad(`${rp}.last_approved_at`, `must be an ISO-8601 UTC time, got ${show(r.last_approved_at)}`);
      if (first && last && first > last) p.bad(`${rp}.last_approved_at`, 'before first_approved_at');
      const tx = batchTxFromJson(r.request, `${rp}.request`, p);
      if (!tx) return;
      if (chainId !== undefined && tx.chainId !== chainId) p.bad(`${rp}.request.chainId`, `${tx.chainId} is not the group's chain_id ${chainId}`);
      if (from && tx.from !== from) p.bad(`${rp}.request.from`, `${tx.from.toLowerCase()} is not the group's from ${from.toLowerCase()}`);
      if (nonce !== undefined && tx.nonce !== nonce) p.bad(`${rp}.request.nonce`, `${tx.nonce} is not the record's nonce ${nonce}`);
      const computed = contentKey(tx);
      if (key && key !== computed) p.bad(`${rp}.content_key`, `does not match its request (computed ${computed})`);
      const slot = slotKey(tx);
      const dup = seen.get(slot);
      if (dup) p.bad(rp, `duplicate slot ${slot} (also at ${dup})`);
      seen.set(slot, rp);
      if (key && first && last) out.push({ contentKey: key, request: tx, firstApprovedAt: first, lastApprovedAt: last });
    });
  });
  if (p.problems.length > 0) fail();
  return out;
}

function isTime(v: unknown): v is string {
  return typeof v === 'string' && ISO.test(v) && !Number.isNaN(new Date(v).getTime());
}
