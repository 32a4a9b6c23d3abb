import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { basename } from 'node:path';
import { decodeBundle, encodeBundle, exportBundle, verifyBundle } from '../audit/bundle.ts';
import { AuditError } from '../audit/entry.ts';
import { formatReport, verifyAudit, type AuditReport } from '../audit/verify.ts';
import { parseDefinition, type ClusterDefinition } from '../cluster/definition.ts';
import { CliError, EXIT } from './errors.ts';
import type { Args } from './config.ts';

/**
 * `potluck audit` (issue 5): offline, from files only. Exit 0 only if every check holds; 1 if a
 * check fails (the report names the log, entry and rule); 2 on bad arguments.
 */
function definitionOf(a: Args): ClusterDefinition {
  const path = a.str('cluster')!;
  if (!existsSync(path)) throw new CliError(`${a.origin('cluster')} ${path} does not exist (the signed cluster definition, cluster.json in every home)`);
  return parseDefinition(readFileSync(path, 'utf8'), path);
}

function logsOf(paths: string[]): { name: string; bytes: Uint8Array }[] {
  if (paths.length === 0) throw new CliError('give at least one audit log (<home>/audit.log of a peer)');
  return paths.map((p) => {
    if (!existsSync(p)) throw new CliError(`log ${p} does not exist`);
    return { name: p, bytes: new Uint8Array(readFileSync(p)) };
  });
}

function report(r: AuditReport, json: boolean): void {
  if (json) console.log(JSON.stringify({ ok: r.ok, failures: r.failures.map((f) => ({ rule: f.rule, log: f.log, entry: f.entry, peer: f.peer, message: f.message })), sessions: r.sessions, equivocations: r.equivocations, logs: r.logs, notes: r.notes }));
  else process.stdout.write(formatReport(r));
  if (!r.ok) throw new CliError(`audit failed: ${r.failures.length} check(s) broke; the first: ${r.failures[0]!.message}`, EXIT.failed);
}

/** AuditError (a log that cannot be read at all) fails the audit: exit 1, naming the log. */
function audit<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof AuditError) throw new CliError(`${basename(e.log ?? '')} ${e.message}`.trim(), EXIT.failed);
    throw e;
  }
}

export function auditVerify(a: Args): void {
  audit(() => {
    const checkpoints = a.list('checkpoint').map((p) => {
      if (!existsSync(p)) throw new CliError(`${a.origin('checkpoint')} ${p} does not exist`);
      return readFileSync(p, 'utf8');
    });
    report(verifyAudit({ definition: definitionOf(a), logs: logsOf(a.positionals), checkpoints }), a.flag('json'));
  });
}

export function auditExport(a: Args): void {
  audit(() => {
    const session = a.str('session')!, out = a.str('out')!;
    if (!/^(0x)?[0-9a-fA-F]{64}$/.test(session)) throw new CliError(`${a.origin('session')} must be a 32-byte session id in hex (the sigSid printed by audit verify)`);
    const bundle = exportBundle(logsOf(a.positionals), session);
    writeFileSync(out, encodeBundle(bundle));
    console.log(JSON.stringify({ bundle: out, session: bundle.session, logs: bundle.logs.length }));
  });
}

export function auditVerifyBundle(a: Args): void {
  audit(() => {
    if (a.positionals.length !== 1) throw new CliError(`give exactly one bundle file, got ${a.positionals.length}`);
    const file = a.positionals[0]!;
    if (!existsSync(file)) throw new CliError(`bundle ${file} does not exist`);
    report(verifyBundle(definitionOf(a), decodeBundle(readFileSync(file, 'utf8'))), a.flag('json'));
  });
}
