import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { systemRng } from '../crypto/random.ts';
import type { KeyShare } from '../protocol/key-share.ts';
import { DEFAULT_SCRYPT, sealKeyShare } from './key-share-vault.ts';

/** Where a peer keeps its sealed share of key `keyId`. */
export const shareFile = (home: string, keyId: string) => join(home, 'keys', `${keyId}.share`);

/** Write, fsync, rename, fsync the directory: the file appears whole or not at all. */
export function writeDurable(path: string, bytes: Uint8Array, mode = 0o600): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, bytes, { mode });
    const fd = openSync(tmp, 'r');
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDir(path);
}

/** fsync the directory holding `path`, so a rename in it is durable. */
export function fsyncDir(path: string): void {
  const dfd = openSync(dirname(path), 'r');
  fsyncSync(dfd);
  closeSync(dfd);
}

/** Seal the share under the passphrase and replace the file atomically. */
export function writeShare(home: string, share: KeyShare, passphrase: string, scryptLogN: number = DEFAULT_SCRYPT.logN): string {
  const path = shareFile(home, share.keyId);
  writeDurable(path, sealKeyShare(share, passphrase, systemRng, { ...DEFAULT_SCRYPT, logN: scryptLogN }));
  return path;
}
