import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { scrypt } from '@noble/hashes/scrypt.js';
import type { Rng } from '../crypto/random.ts';
import { ethAddress } from '../protocol/sign.ts';
import { PeerStore } from './database.ts';
import { DEFAULT_SCRYPT, openKeyShare } from './key-share-vault.ts';
import { PolicyRecords, type Interchange } from './policy-records.ts';
import { writeDurable } from './share-file.ts';

/**
 * An org's backup (issue 6): everything a wiped machine needs to rejoin as the same peer, in one
 * file sealed under a passphrase (scrypt + XChaCha20-Poly1305, like the share vault): identity key,
 * peer.json, cluster.json, policy.json, the sealed shares, the TLS files, and the
 * anti-equivocation records (EIP-3076-style interchange, so a restored peer never signs a second
 * content at a nonce it approved). Never in a backup: presignatures (potluck.db; reusing one
 * leaks the key, spec §3.3) and the audit log (append-only; ship it to auditors as it grows).
 */
export const BACKUP_FORMAT = 'potluck-backup';
export const BACKUP_VERSION = 1;

export class BackupError extends Error {
  override readonly name = 'BackupError';
}

export interface BackupManifest {
  org: string;
  peerId: string;
  createdAt: string;
  files: string[];
  keys: { keyId: string; epoch: number; index: number; address: string }[];
  policyRecords: number;
}

interface Payload {
  manifest: BackupManifest;
  files: Record<string, string>;
  records: Interchange | null;
}

/** Files (relative to the home) a backup takes; directories are taken whole, one level deep. */
const TAKE = ['identity.key', 'peer.json', 'cluster.json', 'policy.json', 'keys', 'tls'];
const SECRET = (rel: string) => rel === 'identity.key' || rel.startsWith('keys/') || rel.endsWith('.key');
const KEY_SUFFIXES = ['.share'];

function collect(home: string): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const name of TAKE) {
    const p = join(home, name);
    if (!existsSync(p)) continue;
    if (statSync(p).isDirectory()) {
      for (const f of readdirSync(p).sort()) {
        const fp = join(p, f);
        // Only finished files: no ".next"/".pending" shares of a ceremony in flight, no temp files.
        if (!statSync(fp).isFile() || (name === 'keys' && !KEY_SUFFIXES.some((s) => f.endsWith(s)))) continue;
        out.set(`${name}/${f}`, new Uint8Array(readFileSync(fp)));
      }
    } else out.set(name, new Uint8Array(readFileSync(p)));
  }
  for (const need of ['identity.key', 'peer.json', 'cluster.json']) if (!out.has(need)) throw new BackupError(`${join(home, need)} is missing: is ${home} a peer home?`);
  return out;
}

function header(h: { scrypt: { logN: number; r: number; p: number }; salt: string; nonce: string; org: string; peerId: string; createdAt: string }): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ format: BACKUP_FORMAT, version: BACKUP_VERSION, org: h.org, peerId: h.peerId, createdAt: h.createdAt, scrypt: h.scrypt, salt: h.salt, nonce: h.nonce }));
}

function deriveKey(passphrase: string, salt: Uint8Array, c: { logN: number; r: number; p: number }): Uint8Array {
  if (passphrase.length < 8) throw new BackupError('the backup passphrase must be at least 8 characters');
  return scrypt(new TextEncoder().encode(passphrase.normalize('NFKC')), salt, { N: 2 ** c.logN, r: c.r, p: c.p, dkLen: 32, maxmem: 2 ** 31 });
}

const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');

/**
 * Seal `home` into a backup. `sharePassphrase` opens the shares (each is checked, so a backup
 * that could not be restored is never written); `passphrase` seals the backup itself.
 */
export function createBackup(home: string, o: { passphrase: string; sharePassphrase: string; rng: Rng; now?: Date; scryptLogN?: number }): { bytes: Uint8Array; manifest: BackupManifest } {
  const files = collect(home);
  const info = JSON.parse(new TextDecoder().decode(files.get('peer.json'))) as { org: string; peerId: string };
  const keys: BackupManifest['keys'] = [];
  for (const [rel, bytes] of files) {
    if (!rel.startsWith('keys/')) continue;
    let share;
    try {
      share = openKeyShare(bytes, o.sharePassphrase);
    } catch (e) {
      throw new BackupError(`${join(home, rel)} does not open with the share passphrase (${(e as Error).message}); no backup written`);
    }
    keys.push({ keyId: share.keyId, epoch: share.epoch, index: share.index, address: ethAddress(share.publicKey) });
  }
  let records: Interchange | null = null;
  const db = join(home, 'potluck.db');
  if (existsSync(db)) {
    const store = new PeerStore(db);
    try {
      records = new PolicyRecords(store.db).exportInterchange();
    } finally {
      store.close();
    }
  }
  const manifest: BackupManifest = {
    org: info.org, peerId: info.peerId, createdAt: (o.now ?? new Date()).toISOString(), files: [...files.keys()], keys,
    policyRecords: records ? records.data.reduce((n, k) => n + k.records.length, 0) : 0,
  };
  const payload: Payload = { manifest, files: Object.fromEntries([...files].map(([k, v]) => [k, b64(v)])), records };
  const plain = new TextEncoder().encode(JSON.stringify(payload));
  const cost = { ...DEFAULT_SCRYPT, logN: o.scryptLogN ?? DEFAULT_SCRYPT.logN };
  const salt = o.rng(32), nonce = o.rng(24);
  const h = { scrypt: cost, salt: b64(salt), nonce: b64(nonce), org: info.org, peerId: info.peerId, createdAt: manifest.createdAt };
  const key = deriveKey(o.passphrase, salt, cost);
  const ciphertext = xchacha20poly1305(key, nonce, header(h)).encrypt(plain);
  key.fill(0);
  plain.fill(0);
  const text = JSON.stringify({ format: BACKUP_FORMAT, version: BACKUP_VERSION, org: h.org, peerId: h.peerId, createdAt: h.createdAt, scrypt: cost, salt: h.salt, nonce: h.nonce, ciphertext: b64(ciphertext) }, null, 1) + '\n';
  return { bytes: new TextEncoder().encode(text), manifest };
}

function field<T>(v: unknown, ok: (x: unknown) => boolean, name: string): T {
  if (!ok(v)) throw new BackupError(`not a Potluck backup: field "${name}" is missing or malformed`);
  return v as T;
}

/** Decrypt a backup (strict): the manifest, the files, the records. */
export function openBackup(bytes: Uint8Array, passphrase: string): Payload {
  let outer: Record<string, unknown>;
  try {
    outer = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) as Record<string, unknown>;
  } catch {
    throw new BackupError('not a Potluck backup: not JSON');
  }
  if (outer?.format !== BACKUP_FORMAT) throw new BackupError(`not a Potluck backup: format is ${JSON.stringify(outer?.format)}, expected "${BACKUP_FORMAT}"`);
  if (outer.version !== BACKUP_VERSION) throw new BackupError(`backup version ${JSON.stringify(outer.version)} is not supported (this build reads version ${BACKUP_VERSION})`);
  const str = (x: unknown) => typeof x === 'string';
  const cost = field<{ logN: number; r: number; p: number }>(outer.scrypt, (x) => {
    const c = x as { logN: unknown; r: unknown; p: unknown };
    return !!c && [c.logN, c.r, c.p].every(Number.isInteger) && (c.logN as number) >= 10 && (c.logN as number) <= 22 && (c.r as number) >= 1 && (c.r as number) <= 32 && (c.p as number) >= 1 && (c.p as number) <= 16;
  }, 'scrypt');
  const h = { scrypt: { logN: cost.logN, r: cost.r, p: cost.p }, salt: field<string>(outer.salt, str, 'salt'), nonce: field<string>(outer.nonce, str, 'nonce'), org: field<string>(outer.org, str, 'org'), peerId: field<string>(outer.peerId, str, 'peerId'), createdAt: field<string>(outer.createdAt, str, 'createdAt') };
  const salt = Buffer.from(h.salt, 'base64'), nonce = Buffer.from(h.nonce, 'base64');
  if (salt.length !== 32 || nonce.length !== 24) throw new BackupError('not a Potluck backup: salt or nonce has the wrong length');
  const key = deriveKey(passphrase, salt, cost);
  let plain: Uint8Array;
  try {
    plain = xchacha20poly1305(key, nonce, header(h)).decrypt(Buffer.from(field<string>(outer.ciphertext, str, 'ciphertext'), 'base64'));
  } catch {
    throw new BackupError(`cannot open the backup of ${h.org} (${h.createdAt}): wrong passphrase, or the file was altered`);
  } finally {
    key.fill(0);
  }
  const p = JSON.parse(new TextDecoder().decode(plain)) as Payload;
  plain.fill(0);
  if (p.manifest.peerId !== h.peerId || p.manifest.org !== h.org) throw new BackupError('the backup header does not match its contents');
  return p;
}

/**
 * Restore into `home`, which must not hold a peer already (never overwrite a live identity or
 * share). Files are written durably with their modes; the anti-equivocation records go into a
 * fresh potluck.db. The shares must open with `sharePassphrase` before anything is written.
 */
export function restoreBackup(bytes: Uint8Array, home: string, o: { passphrase: string; sharePassphrase: string }): BackupManifest {
  const p = openBackup(bytes, o.passphrase);
  for (const taken of ['identity.key', 'keys', 'potluck.db']) {
    const there = join(home, taken);
    if (existsSync(there) && (!statSync(there).isDirectory() || readdirSync(there).length)) throw new BackupError(`${there} exists: restore only into an empty home (move the old one away first)`);
  }
  for (const [rel, data] of Object.entries(p.files)) {
    if (!/^(identity\.key|peer\.json|cluster\.json|policy\.json|(keys|tls)\/[A-Za-z0-9._-]+)$/.test(rel) || rel.includes('..')) throw new BackupError(`the backup names an unexpected file "${rel}"`);
    if (rel.startsWith('keys/')) {
      try {
        openKeyShare(new Uint8Array(Buffer.from(data, 'base64')), o.sharePassphrase);
      } catch (e) {
        throw new BackupError(`${rel} in the backup does not open with the share passphrase (${(e as Error).message}); nothing restored`);
      }
    }
  }
  mkdirSync(home, { recursive: true, mode: 0o700 });
  for (const [rel, data] of Object.entries(p.files)) {
    const path = join(home, rel);
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    writeDurable(path, new Uint8Array(Buffer.from(data, 'base64')), SECRET(rel) ? 0o600 : 0o644);
  }
  if (p.records) {
    const store = new PeerStore(join(home, 'potluck.db'));
    try {
      new PolicyRecords(store.db).importInterchange(p.records);
    } finally {
      store.close();
    }
  }
  return p.manifest;
}
