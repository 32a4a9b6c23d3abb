/**
 * What this peer remembers as a witness of the other peers' audit logs, and about its own log's
 * rollbacks (issue 11), in the peer's SQLite database: per origin, the latest checkpoint it
 * cosigned (size, root and the author's own signature over it, which is the proof the author
 * once had that much log), and the rolled-back checkpoints of its own log an operator
 * acknowledged. Persisted, so a restart never makes this peer cosign without a consistency proof.
 */
import type Database from 'better-sqlite3';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS witnessed (
  origin TEXT PRIMARY KEY,
  size INTEGER NOT NULL,
  root BLOB NOT NULL,
  author_signature BLOB NOT NULL,
  at TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS rollback_acks (
  size INTEGER NOT NULL,
  root BLOB NOT NULL,
  reason TEXT NOT NULL,
  at TEXT NOT NULL,
  PRIMARY KEY (size, root)
) STRICT;
`;

export interface Witnessed {
  size: number;
  root: Uint8Array;
  authorSignature: Uint8Array;
}

export class WitnessRecords {
  private readonly db: Database.Database;

  constructor(db: Database.Database) {
    this.db = db;
    db.exec(SCHEMA);
  }

  last(origin: string): Witnessed | undefined {
    const r = this.db.prepare('SELECT size, root, author_signature FROM witnessed WHERE origin = ?').get(origin) as { size: number; root: Buffer; author_signature: Buffer } | undefined;
    return r ? { size: r.size, root: new Uint8Array(r.root), authorSignature: new Uint8Array(r.author_signature) } : undefined;
  }

  /** Record a cosigned checkpoint (fsync'd before the cosignature is sent). */
  cosigned(origin: string, w: Witnessed): void {
    this.db.prepare('INSERT OR REPLACE INTO witnessed (origin, size, root, author_signature, at) VALUES (?, ?, ?, ?, ?)').run(origin, w.size, w.root, w.authorSignature, new Date().toISOString());
  }

  /** Forget an origin's last checkpoint: its author acknowledged that its log no longer extends it. */
  reset(origin: string): void {
    this.db.prepare('DELETE FROM witnessed WHERE origin = ?').run(origin);
  }

  acknowledge(size: number, root: Uint8Array, reason: string): void {
    this.db.prepare('INSERT OR REPLACE INTO rollback_acks (size, root, reason, at) VALUES (?, ?, ?, ?)').run(size, root, reason, new Date().toISOString());
  }

  isAcknowledged(size: number, root: Uint8Array): boolean {
    return this.db.prepare('SELECT 1 FROM rollback_acks WHERE size = ? AND root = ?').get(size, root) !== undefined;
  }
}
