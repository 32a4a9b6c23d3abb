import { closeSync, existsSync, openSync } from 'node:fs';
import Database from 'better-sqlite3';

/**
 * The peer's embedded database (issue 3): SQLite through better-sqlite3, in WAL mode with
 * synchronous=FULL so that every committed transaction is fsync'd before the call returns.
 * It holds presignatures and their used marks, burned pairs and session records. Why SQLite
 * and not LMDB: docs/decisions.md.
 */
export class StoreError extends Error {
  override readonly name = 'StoreError';
}

export interface StoredPresignature {
  sigSid: Uint8Array;
  keyId: string;
  epoch: number;
  signers: number[];
  /** Key index of the only party that may spend it (spec §2.9: one requester per presignature). */
  owner: number;
  /** Sealed presignature bytes (the caller encrypts them). */
  blob: Uint8Array;
  used: boolean;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS presignatures (
  sig_sid BLOB PRIMARY KEY,
  key_id TEXT NOT NULL,
  epoch INTEGER NOT NULL,
  signers TEXT NOT NULL,
  owner INTEGER NOT NULL,
  blob BLOB NOT NULL,
  used INTEGER NOT NULL DEFAULT 0 CHECK (used IN (0, 1))
) STRICT;
CREATE INDEX IF NOT EXISTS presignatures_pool ON presignatures (key_id, epoch, signers, owner, used);
CREATE TABLE IF NOT EXISTS incidents (
  key_id TEXT NOT NULL,
  peer INTEGER NOT NULL,
  reason TEXT NOT NULL,
  evidence BLOB,
  at TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS sessions (
  id BLOB PRIMARY KEY,
  kind TEXT NOT NULL,
  key_id TEXT NOT NULL,
  signers TEXT NOT NULL,
  requester TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
  detail TEXT NOT NULL DEFAULT '',
  started TEXT NOT NULL,
  ended TEXT
) STRICT;
CREATE TABLE IF NOT EXISTS burned_pairs (
  key_id TEXT NOT NULL,
  peer INTEGER NOT NULL,
  reason TEXT NOT NULL,
  evidence BLOB,
  at TEXT NOT NULL,
  PRIMARY KEY (key_id, peer)
) STRICT;
`;
const SCHEMA_VERSION = '2';

export class PeerStore {
  /** The open database, for stores of other layers that keep their own tables in it (policy records). */
  readonly db: Database.Database;

  constructor(path: string) {
    try {
      // 0600 like the shares: it holds sealed presignatures and the nonce records (SQLite gives
      // the -wal and -shm files the same mode).
      if (!existsSync(path)) closeSync(openSync(path, 'a', 0o600));
      this.db = new Database(path);
    } catch (e) {
      throw new StoreError(`cannot open database ${path}: ${(e as Error).message}`);
    }
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('foreign_keys = ON');
    this.db.exec(SCHEMA);
    const v = this.db.prepare('SELECT value FROM meta WHERE key = ?').get('schema') as { value: string } | undefined;
    if (!v) this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run('schema', SCHEMA_VERSION);
    else if (v.value !== SCHEMA_VERSION) throw new StoreError(`database ${path} has schema ${v.value}; this Potluck expects ${SCHEMA_VERSION}`);
  }

  /** Insert a presignature; `used: true` stores it already spent (a request that presigned for itself). */
  addPresignature(p: Omit<StoredPresignature, 'used' | 'owner'> & { owner?: number; used?: boolean }): void {
    this.db.prepare('INSERT INTO presignatures (sig_sid, key_id, epoch, signers, owner, blob, used) VALUES (?, ?, ?, ?, ?, ?, ?)').run(p.sigSid, p.keyId, p.epoch, p.signers.join(','), p.owner ?? 0, p.blob, p.used ? 1 : 0);
  }

  getPresignature(sigSid: Uint8Array): StoredPresignature | undefined {
    const r = this.db.prepare('SELECT * FROM presignatures WHERE sig_sid = ?').get(sigSid) as { key_id: string; epoch: number; signers: string; owner: number; blob: Buffer; used: number } | undefined;
    if (!r) return undefined;
    return { sigSid, keyId: r.key_id, epoch: r.epoch, signers: r.signers.split(',').map(Number), owner: r.owner, blob: new Uint8Array(r.blob), used: r.used === 1 };
  }

  /** Unused presignatures for (key, epoch, signer set) spendable by `owner`. */
  countOwned(keyId: string, epoch: number, signers: number[], owner: number): number {
    return (this.db.prepare('SELECT count(*) AS c FROM presignatures WHERE key_id = ? AND epoch = ? AND signers = ? AND owner = ? AND used = 0').get(keyId, epoch, signers.join(','), owner) as { c: number }).c;
  }

  /** Unused presignatures of a key, by signer set and owner. */
  poolBySet(keyId: string, epoch: number): { signers: string; owner: number; count: number }[] {
    return this.db.prepare('SELECT signers, owner, count(*) AS count FROM presignatures WHERE key_id = ? AND epoch = ? AND used = 0 GROUP BY signers, owner ORDER BY signers, owner').all(keyId, epoch) as { signers: string; owner: number; count: number }[];
  }

  /** Session records (crash-safe): started before any message leaves, ended with its outcome. */
  sessionStarted(id: Uint8Array, kind: string, keyId: string, signers: number[], requester: string): void {
    this.db.prepare("INSERT OR REPLACE INTO sessions (id, kind, key_id, signers, requester, status, started) VALUES (?, ?, ?, ?, ?, 'running', ?)").run(id, kind, keyId, signers.join(','), requester, new Date().toISOString());
  }
  sessionEnded(id: Uint8Array, ok: boolean, detail: string): void {
    this.db.prepare('UPDATE sessions SET status = ?, detail = ?, ended = ? WHERE id = ?').run(ok ? 'done' : 'failed', detail, new Date().toISOString(), id);
  }
  sessionCounts(): Record<string, number> {
    const rows = this.db.prepare('SELECT kind, status, count(*) AS c FROM sessions GROUP BY kind, status').all() as { kind: string; status: string; c: number }[];
    return Object.fromEntries(rows.map((r) => [`${r.kind}.${r.status}`, r.c]));
  }
  /** Sessions left "running" by a crash are failed at start-up. */
  failInterruptedSessions(): number {
    return this.db.prepare("UPDATE sessions SET status = 'failed', detail = 'interrupted (restart)', ended = ? WHERE status = 'running'").run(new Date().toISOString()).changes;
  }

  /**
   * Take one unused presignature for (key, epoch, signer set) and mark it used in the same
   * fsync'd transaction, before anything is computed from it (spec §2.9); `also` writes in the
   * same transaction (the nonce slot's fee floor). Returns undefined if the pool is empty.
   */
  takePresignature(keyId: string, epoch: number, signers: number[], owner = 0, also?: () => void): StoredPresignature | undefined {
    return this.db.transaction(() => {
      const row = this.db.prepare('SELECT sig_sid, blob FROM presignatures WHERE key_id = ? AND epoch = ? AND signers = ? AND owner = ? AND used = 0 LIMIT 1').get(keyId, epoch, signers.join(','), owner) as { sig_sid: Buffer; blob: Buffer } | undefined;
      if (!row) return undefined;
      const res = this.db.prepare('UPDATE presignatures SET used = 1 WHERE sig_sid = ? AND used = 0').run(row.sig_sid);
      if (res.changes !== 1) throw new StoreError('presignature was taken concurrently');
      also?.();
      return { sigSid: new Uint8Array(row.sig_sid), keyId, epoch, signers, owner, blob: new Uint8Array(row.blob), used: true };
    }).immediate();
  }

  /**
   * Mark a specific presignature used; false if it was already used (never sign with it then).
   * With `session`, the session record is written in the same transaction (one fsync); so is
   * whatever `also` writes (the nonce slot's fee floor, issue 11).
   */
  markUsed(sigSid: Uint8Array, session?: { kind: string; keyId: string; signers: number[]; requester: string }, also?: () => void): boolean {
    return this.db.transaction(() => {
      const ok = this.db.prepare('UPDATE presignatures SET used = 1 WHERE sig_sid = ? AND used = 0').run(sigSid).changes === 1;
      if (ok && session) this.sessionStarted(sigSid, session.kind, session.keyId, session.signers, session.requester);
      if (ok) also?.();
      return ok;
    }).immediate();
  }

  /**
   * Issue 11, rollback safety: at every start, every presignature already stored is discarded,
   * so a row restored from an older copy of this file (a VM snapshot, a wrong backup) can never
   * sign a second message: to this process it is unknown, as it is to a peer that never had it.
   * Returns how many were still unused.
   */
  discardPresignatures(): number {
    return this.db.transaction(() => {
      const unused = (this.db.prepare('SELECT count(*) AS c FROM presignatures WHERE used = 0').get() as { c: number }).c;
      this.db.prepare('DELETE FROM presignatures').run();
      return unused;
    }).immediate();
  }

  isUsed(sigSid: Uint8Array): boolean | undefined {
    const row = this.db.prepare('SELECT used FROM presignatures WHERE sig_sid = ?').get(sigSid) as { used: number } | undefined;
    return row === undefined ? undefined : row.used === 1;
  }

  poolSize(keyId: string, epoch: number): number {
    return (this.db.prepare('SELECT count(*) AS c FROM presignatures WHERE key_id = ? AND epoch = ? AND used = 0').get(keyId, epoch) as { c: number }).c;
  }

  /** Delete unused presignatures of a key (refresh, reshare, epoch change) or with one peer (ban). */
  deletePresignatures(keyId: string, withPeer?: number): number {
    const rows = this.db.prepare('SELECT sig_sid, signers FROM presignatures WHERE key_id = ?').all(keyId) as { sig_sid: Buffer; signers: string }[];
    const del = this.db.prepare('DELETE FROM presignatures WHERE sig_sid = ?');
    let n = 0;
    this.db.transaction(() => {
      for (const r of rows) if (withPeer === undefined || r.signers.split(',').map(Number).includes(withPeer)) n += del.run(r.sig_sid).changes;
    })();
    return n;
  }

  /** Burn the pair with `peer` (spec §2.10): persistently, and drop every presignature with it. */
  burnPair(keyId: string, peer: number, reason: string, evidence?: Uint8Array): void {
    this.db.transaction(() => {
      const at = new Date().toISOString();
      this.db.prepare('INSERT OR REPLACE INTO burned_pairs (key_id, peer, reason, evidence, at) VALUES (?, ?, ?, ?, ?)').run(keyId, peer, reason, evidence ?? null, at);
      this.db.prepare('INSERT INTO incidents (key_id, peer, reason, evidence, at) VALUES (?, ?, ?, ?, ?)').run(keyId, peer, reason, evidence ?? null, at);
      this.deletePresignatures(keyId, peer);
    })();
  }

  burnedPeers(keyId: string): Set<number> {
    return new Set((this.db.prepare('SELECT peer FROM burned_pairs WHERE key_id = ?').all(keyId) as { peer: number }[]).map((r) => r.peer));
  }

  /** How many times the pair with `peer` was burned (spec §2.10 rule 3: repeat offenders). */
  incidentCount(keyId: string, peer: number): number {
    return (this.db.prepare('SELECT count(*) AS c FROM incidents WHERE key_id = ? AND peer = ?').get(keyId, peer) as { c: number }).c;
  }

  /** After a fresh OT setup with the peer. */
  unburnPair(keyId: string, peer: number): void {
    this.db.prepare('DELETE FROM burned_pairs WHERE key_id = ? AND peer = ?').run(keyId, peer);
  }

  close(): void {
    this.db.close();
  }
}
