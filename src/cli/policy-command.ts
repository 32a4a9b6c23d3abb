import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { isAddress } from 'viem';
import { loadPolicyFile, PolicyFileError, type PolicyFile } from '../policy/policy-file.ts';
import { PeerStore, StoreError } from '../store/database.ts';
import { PolicyRecords, PolicyRecordsError, type ImportResult } from '../store/policy-records.ts';
import { CliError } from './errors.ts';
import { command } from './commands.ts';
import { resolveArgs, type Args } from './config.ts';
import { groupHelp } from './help.ts';
import { readText, writeFileAtomic } from './files.ts';

/**
 * `potluck policy check|export|import` (issue 4): validate the org policy file, and move the
 * anti-equivocation records between peers or hosts in the manner of EIP-3076 slashing-protection
 * interchange. Import is safe while the daemon runs: SQLite WAL, a busy timeout, and one
 * `BEGIN IMMEDIATE` transaction that the daemon's own decisions serialize with.
 */

/** Wait this long for the daemon's write transaction instead of failing with SQLITE_BUSY. */
const BUSY_TIMEOUT_MS = 10_000;

const fail = (e: unknown): never => {
  if (e instanceof PolicyFileError || e instanceof PolicyRecordsError || e instanceof StoreError) throw new CliError(e.message, 1);
  throw e;
};

function openRecords<T>(home: string, mustExist: boolean, use: (r: PolicyRecords) => T): T {
  if (!existsSync(home)) throw new CliError(`--home ${home} does not exist`, 1);
  const path = join(home, 'potluck.db');
  if (mustExist && !existsSync(path)) throw new CliError(`no database ${path}: this peer has recorded nothing yet`, 1);
  let store: PeerStore | undefined;
  try {
    store = new PeerStore(path);
    store.db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    return use(new PolicyRecords(store.db));
  } catch (e) {
    return fail(e);
  } finally {
    store?.close();
  }
}

const cluster = (a: Args): string | undefined => {
  const v = a.str('cluster');
  if (v !== undefined && !isAddress(v)) throw new CliError(`${a.origin('cluster')} must be an address (0x + 40 hex), got "${v}"`);
  return v;
};

/** Validates a policy file and prints a one-line JSON summary. Throws CliError (exit 1) listing every problem. */
export function policyCheck(path: string): PolicyFile {
  let p: PolicyFile;
  try {
    p = loadPolicyFile(path);
  } catch (e) {
    return fail(e);
  }
  const t = p.transactions;
  console.log(JSON.stringify({
    file: path, valid: true,
    transactions: { chainIds: t.chainIds, batchInbox: t.batchInbox, caps: Object.fromEntries(Object.entries(t.caps).map(([k, v]) => [k, String(v)])), allowBlobsWithoutContent: t.allowBlobsWithoutContent },
    blockPayloads: p.blockPayloads, quorum: p.quorum, clients: p.clients, rawDigests: p.rawDigests,
  }));
  return p;
}

/** Writes `<home>/potluck.db`'s nonce records to `outFile` (atomically) and prints the counts. */
export function policyExport(home: string, outFile: string, clusterAddress?: string): { slots: number; keys: number } {
  const file = openRecords(home, true, (r) => r.exportInterchange(clusterAddress === undefined ? {} : { clusterAddress }));
  writeFileAtomic(outFile, JSON.stringify(file, null, 2) + '\n');
  const res = { slots: file.data.reduce((n, g) => n + g.records.length, 0), keys: file.data.length };
  console.log(JSON.stringify({ exported: outFile, ...res }));
  return res;
}

/** Imports an interchange file into `<home>/potluck.db`, all or nothing, and prints the counts. */
export function policyImport(home: string, inFile: string, clusterAddress?: string): ImportResult {
  let json: unknown;
  try {
    json = JSON.parse(readText(inFile, 'interchange file'));
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError(`interchange file ${inFile} is not JSON: ${(e as Error).message}`, 1);
  }
  const res = openRecords(home, false, (r) => r.importInterchange(json, clusterAddress === undefined ? {} : { clusterAddress }));
  console.log(JSON.stringify({ imported: inFile, ...res }));
  return res;
}

export const policyCheckCommand = (a: Args): void => void policyCheck(a.str('file')!);
export const policyExportCommand = (a: Args): void => void policyExport(a.str('home')!, a.str('out')!, cluster(a));
export const policyImportCommand = (a: Args): void => void policyImport(a.str('home')!, a.str('in')!, cluster(a));

const RUN: Record<string, (a: Args) => void> = { check: policyCheckCommand, export: policyExportCommand, import: policyImportCommand };

/** `potluck policy <check|export|import> …` from argv, synchronously (as main.ts would run it). */
export function policyCommand(argv: string[]): void {
  const [sub, ...rest] = argv;
  const run = sub !== undefined && Object.hasOwn(RUN, sub) ? RUN[sub] : undefined;
  if (!run) throw new CliError(`unknown policy command "${sub ?? ''}"\n${groupHelp('policy')}`);
  run(resolveArgs(command(`policy ${sub}`), rest));
}
