import { existsSync, readFileSync } from 'node:fs';
import { systemRng } from '../crypto/random.ts';
import { BackupError, createBackup, restoreBackup, type BackupManifest } from '../store/backup.ts';
import type { Args } from './config.ts';
import { CliError, EXIT } from './errors.ts';
import { writeFileAtomic } from './files.ts';

/**
 * `potluck backup` / `potluck restore` (issue 6). The backup is sealed under
 * --backup-passphrase-file, else POTLUCK_BACKUP_PASSPHRASE, else the share passphrase.
 */
function fileText(a: Args, flag: string): string | undefined {
  const file = a.str(flag);
  if (!file) return undefined;
  if (!existsSync(file)) throw new CliError(`${a.origin(flag)} ${file} does not exist`);
  return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
}

function passphrases(a: Args): { passphrase: string; sharePassphrase: string } {
  const share = fileText(a, 'passphrase-file') ?? process.env.POTLUCK_PASSPHRASE;
  if (!share) throw new CliError('no passphrase: set POTLUCK_PASSPHRASE or pass --passphrase-file FILE (the shares are checked to open with it)');
  return { sharePassphrase: share, passphrase: fileText(a, 'backup-passphrase-file') ?? (process.env.POTLUCK_BACKUP_PASSPHRASE || share) };
}

const logN = () => (process.env.POTLUCK_SCRYPT_LOGN ? Number(process.env.POTLUCK_SCRYPT_LOGN) : undefined);

/** Prints the manifest (JSON): org, files, keys with epoch and address, nonce records. */
export function backupCommand(a: Args): BackupManifest {
  const out = a.str('out')!;
  if (existsSync(out)) throw new CliError(`${a.origin('out')} ${out} exists; choose a new file name (a backup never overwrites)`);
  try {
    const lg = logN();
    const { bytes, manifest } = createBackup(a.str('home')!, { ...passphrases(a), rng: systemRng, ...(lg ? { scryptLogN: lg } : {}) });
    writeFileAtomic(out, bytes, 0o600);
    console.log(JSON.stringify({ backup: out, ...manifest }));
    return manifest;
  } catch (e) {
    if (e instanceof BackupError) throw new CliError(e.message, EXIT.failed);
    throw e;
  }
}

export function restoreCommand(a: Args): BackupManifest {
  const from = a.str('in')!;
  if (!existsSync(from)) throw new CliError(`${a.origin('in')} ${from} does not exist`);
  try {
    const manifest = restoreBackup(new Uint8Array(readFileSync(from)), a.str('home')!, passphrases(a));
    console.log(JSON.stringify({ restored: a.str('home'), ...manifest }));
    return manifest;
  } catch (e) {
    if (e instanceof BackupError || (e as Error).name === 'InterchangeError' || (e as Error).name === 'StoreError') throw new CliError((e as Error).message, EXIT.failed);
    throw e;
  }
}
