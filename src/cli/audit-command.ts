import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { decodeBundle, encodeBundle, exportBundle, verifyBundle } from '../audit/bundle.ts';
import { AuditError } from '../audit/entry.ts';
import { formatReport, verifyAudit, type AuditReport } from '../audit/verify.ts';
import { parseDefinition, type ClusterDefinition } from '../cluster/definition.ts';
import { CliError } from './errors.ts';

/**
 * `potluck audit` (issue 5): offline, from files only. Exit 0 only if every check holds; 1 if a
 * check fails (the report names the log, entry and rule); 2 on bad arguments.
 */
export const AUDIT_USAGE = `potluck audit verify --cluster FILE LOG... [--checkpoint NOTE]... [--json]
potluck audit export --session ID --out FILE LOG...
potluck audit verify-bundle --cluster FILE BUNDLE [--json]`;

function definitionOf(path: string | undefined): ClusterDefinition {
  if (!path) throw new CliError('--cluster FILE is required (the signed cluster definition)', 2);
  if (!existsSync(path)) throw new CliError(`--cluster ${path} does not exist`, 2);
  return parseDefinition(readFileSync(path, 'utf8'), path);
}

function logsOf(paths: string[]): { name: string; bytes: Uint8Array }[] {
  if (paths.length === 0) throw new CliError('give at least one audit log (<home>/audit.log of a peer)', 2);
  return paths.map((p) => {
    if (!existsSync(p)) throw new CliError(`log ${p} does not exist`, 2);
    return { name: p, bytes: new Uint8Array(readFileSync(p)) };
  });
}

function report(r: AuditReport, json: boolean): void {
  if (json) console.log(JSON.stringify({ ok: r.ok, failures: r.failures.map((f) => ({ rule: f.rule, log: f.log, entry: f.entry, peer: f.peer, message: f.message })), sessions: r.sessions, logs: r.logs, notes: r.notes }));
  else process.stdout.write(formatReport(r));
  if (!r.ok) throw new CliError(`audit failed: ${r.failures.length} check(s) broke; the first: ${r.failures[0]!.message}`, 1);
}

export function auditCommand(argv: string[]): void {
  const [sub, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest, allowPositionals: true, strict: true,
    options: { cluster: { type: 'string' }, checkpoint: { type: 'string', multiple: true }, json: { type: 'boolean', default: false }, session: { type: 'string' }, out: { type: 'string' } },
  });
  try {
    switch (sub) {
      case 'verify': {
        const checkpoints = (values.checkpoint ?? []).map((p) => readFileSync(p, 'utf8'));
        return report(verifyAudit({ definition: definitionOf(values.cluster), logs: logsOf(positionals), checkpoints }), values.json!);
      }
      case 'export': {
        if (!values.session || !/^(0x)?[0-9a-fA-F]{64}$/.test(values.session)) throw new CliError('--session must be a 32-byte session id in hex (the sigSid printed by audit verify)', 2);
        if (!values.out) throw new CliError('--out FILE is required', 2);
        const bundle = exportBundle(logsOf(positionals), values.session);
        writeFileSync(values.out, encodeBundle(bundle));
        console.log(JSON.stringify({ bundle: values.out, session: bundle.session, logs: bundle.logs.length }));
        return;
      }
      case 'verify-bundle': {
        if (positionals.length !== 1) throw new CliError('give exactly one bundle file', 2);
        const bundle = decodeBundle(readFileSync(positionals[0]!, 'utf8'));
        return report(verifyBundle(definitionOf(values.cluster), bundle), values.json!);
      }
      default:
        throw new CliError(`unknown audit command "${sub ?? ''}"\n${AUDIT_USAGE}`, 2);
    }
  } catch (e) {
    if (e instanceof AuditError) throw new CliError(`${basename(e.log ?? '')} ${e.message}`.trim(), 1);
    throw e;
  }
}
