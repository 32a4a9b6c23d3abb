import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { policyCheck, policyCommand, policyExport, policyImport } from '../../src/cli/policy-command.ts';
import { CliError } from '../../src/cli/errors.ts';
import { parsePolicy, toTxPolicy } from '../../src/policy/policy-file.ts';
import { decodeOrThrow } from '../../src/policy/transaction-args.ts';
import { evaluateTransaction } from '../../src/policy/tx-policy.ts';
import { PeerStore } from '../../src/store/database.ts';
import { PolicyRecords } from '../../src/store/policy-records.ts';
import { CLUSTER, INBOX, type2Request } from '../policy/helpers.ts';

const POLICY_JSON = {
  version: 1,
  transactions: { chainIds: [900], batchInbox: INBOX, caps: { gas: '30000000', maxFeePerGas: '500000000000', maxPriorityFeePerGas: '50000000000', maxFeePerBlobGas: '100000000000', maxBlobs: 6 } },
  quorum: { distinctOrgs: 2, otherOrgs: 1 },
  clients: [{ name: 'batcher', maxRequestsPerMinute: 600 }],
};
const POLICY = toTxPolicy(parsePolicy(POLICY_JSON), CLUSTER);

/** A peer home with a database holding records at nonces 42 and 43. */
function home(): string {
  const dir = mkdtempSync(join(tmpdir(), 'potluck-policy-cli-'));
  const store = new PeerStore(join(dir, 'potluck.db'));
  const rec = new PolicyRecords(store.db);
  for (const nonce of ['0x2a', '0x2b']) {
    const req = type2Request({ nonce });
    rec.decideTransaction(decodeOrThrow(req), (recorded) => evaluateTransaction(POLICY, req, { recorded }), { session: null, requester: 'acme', client: 'batcher' });
  }
  store.close();
  return dir;
}

const logs = (t: TestContext) => t.mock.method(console, 'log', () => undefined);

test('policy check prints a summary, and names every problem as a CliError (exit 1)', (t) => {
  const log = logs(t);
  const dir = mkdtempSync(join(tmpdir(), 'potluck-policy-cli-'));
  const path = join(dir, 'policy.json');
  writeFileSync(path, JSON.stringify(POLICY_JSON));
  policyCheck(path);
  assert.deepEqual(JSON.parse(log.mock.calls[0]!.arguments[0] as string), {
    file: path, valid: true,
    transactions: { chainIds: [900], batchInbox: '0xFf00000000000000000000000000000000000901', caps: { gas: '30000000', maxFeePerGas: '500000000000', maxPriorityFeePerGas: '50000000000', maxFeePerBlobGas: '100000000000', maxBlobs: '6' }, allowBlobsWithoutContent: false },
    blockPayloads: null, quorum: { distinctOrgs: 2, otherOrgs: 1 }, clients: [{ name: 'batcher', maxRequestsPerMinute: 600 }], rawDigests: false,
  });
  writeFileSync(path, JSON.stringify({ ...POLICY_JSON, quorum: { distinctOrgs: 2 }, rawDigest: true }));
  assert.throws(() => policyCommand(['check', '--file', path]), (e: unknown) => {
    assert.equal((e as Error).constructor, CliError);
    assert.equal((e as CliError).exitCode, 1);
    assert.equal((e as Error).message, `policy file ${path}: rawDigest: unknown key; quorum.otherOrgs: required`);
    return true;
  });
  assert.throws(() => policyCommand(['check']), { name: 'CliError', message: '--file is required (the org policy, e.g. DIR/policy.json)' });
  assert.throws(() => policyCommand(['verify']), { name: 'CliError', message: /^unknown policy command "verify"/ });
});

test('export then import into another home, counts printed; a second import changes nothing', (t) => {
  const log = logs(t);
  const a = home(), b = mkdtempSync(join(tmpdir(), 'potluck-policy-cli-'));
  const out = join(a, 'records.json');
  assert.deepEqual(policyExport(a, out), { slots: 2, keys: 1 });
  assert.deepEqual(JSON.parse(log.mock.calls[0]!.arguments[0] as string), { exported: out, slots: 2, keys: 1 });
  assert.equal(JSON.parse(readFileSync(out, 'utf8')).data[0].records.length, 2);
  policyCommand(['import', '--home', b, '--in', out, '--cluster', CLUSTER]);
  assert.deepEqual(JSON.parse(log.mock.calls[1]!.arguments[0] as string), { imported: out, inserted: 2, raised: 0, unchanged: 0 });
  assert.deepEqual(policyImport(b, out), { inserted: 0, raised: 0, unchanged: 2 });
  const again = join(b, 'again.json');
  policyExport(b, again);
  assert.deepEqual(JSON.parse(readFileSync(again, 'utf8')).data, JSON.parse(readFileSync(out, 'utf8')).data);
});

test('usage and file errors are CliErrors', (t) => {
  logs(t);
  const a = home();
  const empty = mkdtempSync(join(tmpdir(), 'potluck-policy-cli-'));
  assert.throws(() => policyExport(empty, join(empty, 'x.json')), { name: 'CliError', message: `no database ${join(empty, 'potluck.db')}: this peer has recorded nothing yet` });
  assert.throws(() => policyImport(a, join(a, 'missing.json')), { name: 'CliError', message: `cannot read interchange file ${join(a, 'missing.json')}: ENOENT` });
  writeFileSync(join(a, 'bad.json'), '{"metadata": ');
  assert.throws(() => policyImport(a, join(a, 'bad.json')), { name: 'CliError', message: /is not JSON/ });
  writeFileSync(join(a, 'bad.json'), '{"metadata": {}, "data": []}');
  assert.throws(() => policyImport(a, join(a, 'bad.json')), (e: unknown) => e instanceof CliError && e.exitCode === 1 && e.message.startsWith('invalid nonce-record interchange: metadata.interchange_format: '));
  assert.throws(() => policyCommand(['export', '--home', a, '--out', 'x', '--cluster', '0x12']), { name: 'CliError', message: '--cluster must be an address (0x + 40 hex), got "0x12"' });
});

test('import while another process (the daemon) holds the write lock waits for it instead of failing', async (t) => {
  logs(t);
  const a = home(), b = home();
  const out = join(a, 'records.json');
  policyExport(a, out);
  // A second process takes the write lock on b's database for 300 ms.
  const child = spawn(process.execPath, ['-e', `
    const Database = require('better-sqlite3');
    const db = new Database(${JSON.stringify(join(b, 'potluck.db'))});
    db.exec('BEGIN IMMEDIATE');
    process.stdout.write('locked\\n');
    setTimeout(() => { db.exec('COMMIT'); db.close(); }, 300);
  `], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'inherit'] });
  await once(child.stdout!, 'data');
  const started = Date.now();
  assert.deepEqual(policyImport(b, out), { inserted: 0, raised: 0, unchanged: 2 });
  assert.ok(Date.now() - started >= 200, 'the import waited for the lock');
  await once(child, 'exit');
});
