/** `potluck tls ca|issue|revoke` as an operator runs them: files, output and errors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { certificateSerial, loadCrl } from '../../src/api/crl.ts';

const bin = fileURLToPath(new URL('../../bin/potluck.mjs', import.meta.url));
const run = (args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> =>
  new Promise((res) => {
    const p = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    p.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (status) => res({ status, stdout, stderr }));
  });
const ok = async (args: string[]) => {
  const r = await run(args);
  assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
};
const hasOpenssl = (() => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

test('tls revoke: a cumulative, numbered CRL of the CA, renewed when nothing is given; OpenSSL refuses the revoked certificate', async () => {
  const root = mkdtempSync(join(tmpdir(), 'potluck-tls-'));
  const ca = join(root, 'ca');
  await ok(['tls', 'ca', '--out', ca]);
  await ok(['tls', 'issue', '--ca', ca, '--usage', 'client', '--name', 'batcher', '--out', join(root, 'batcher')]);
  await ok(['tls', 'issue', '--ca', ca, '--usage', 'client', '--name', 'proposer', '--out', join(root, 'proposer')]);
  const batcherCrt = join(root, 'batcher', 'batcher.crt');
  const serial = certificateSerial(readFileSync(batcherCrt, 'utf8'));

  const first = await ok(['tls', 'revoke', '--ca', ca, '--cert', batcherCrt, '--reason', 'keyCompromise', '--days', '30']);
  assert.deepEqual(Object.keys(first), ['crl', 'number', 'nextUpdate', 'revoked']);
  assert.equal(first.crl, join(ca, 'ca.crl'));
  assert.equal(first.number, 1);
  assert.deepEqual((first.revoked as { serial: string; reason: string }[]).map((e) => [e.serial, e.reason]), [[serial, 'keyCompromise']]);
  const days = (Date.parse(first.nextUpdate as string) - Date.now()) / 86_400_000;
  assert.ok(days > 29.9 && days <= 30, String(days));

  const second = await ok(['tls', 'revoke', '--ca', ca, '--serial', '0x0ABC']);
  assert.equal(second.number, 2);
  assert.deepEqual((second.revoked as { serial: string; reason: string }[]).map((e) => [e.serial, e.reason]), [[serial, 'keyCompromise'], ['abc', 'unspecified']]);
  const renewed = await ok(['tls', 'revoke', '--ca', ca]);
  assert.equal(renewed.number, 3);
  assert.equal((renewed.revoked as unknown[]).length, 2);

  const crl = await loadCrl(readFileSync(join(ca, 'ca.crl'), 'utf8'), readFileSync(join(ca, 'ca.crt'), 'utf8'), 'ca.crl');
  assert.equal(crl.count, 2);
  if (hasOpenssl) {
    const verify = (crt: string) => {
      try {
        return execFileSync('openssl', ['verify', '-crl_check', '-CAfile', join(ca, 'ca.crt'), '-CRLfile', join(ca, 'ca.crl'), crt], { encoding: 'utf8', stdio: 'pipe' });
      } catch (e) {
        return String((e as { stdout?: string }).stdout) + String((e as { stderr?: string }).stderr);
      }
    };
    assert.match(verify(batcherCrt), /certificate revoked/);
    assert.match(verify(join(root, 'proposer', 'proposer.crt')), /: OK/);
  }
});

test('tls revoke refuses what it cannot revoke, naming it', async () => {
  const root = mkdtempSync(join(tmpdir(), 'potluck-tls-'));
  const ca = join(root, 'ca');
  const other = join(root, 'other');
  await ok(['tls', 'ca', '--out', ca]);
  await ok(['tls', 'ca', '--out', other, '--name', 'Other CA']);
  await ok(['tls', 'issue', '--ca', other, '--usage', 'client', '--name', 'batcher', '--out', join(root, 'b')]);
  writeFileSync(join(root, 'junk.crt'), 'hello\n');
  const cases: [string[], number, RegExp][] = [
    [['tls', 'revoke', '--ca', join(root, 'nope')], 2, /nope\/ca\.crt does not exist: --ca must be a directory made by "potluck tls ca"/],
    [['tls', 'revoke', '--ca', ca, '--cert', join(root, 'missing.crt')], 2, /--cert .*missing\.crt does not exist/],
    [['tls', 'revoke', '--ca', ca, '--cert', join(root, 'junk.crt')], 2, /junk\.crt is not a PEM certificate/],
    [['tls', 'revoke', '--ca', ca, '--cert', join(root, 'b', 'batcher.crt')], 2, /batcher\.crt was not issued by the CA in .*ca \(revoke it with its own CA\)/],
    [['tls', 'revoke', '--ca', ca, '--serial', 'xyz'], 2, /--serial must be a hex serial number \(as "openssl x509 -serial" prints it\), got "xyz"/],
    [['tls', 'revoke', '--ca', ca, '--reason', 'boredom'], 2, /--reason/],
  ];
  for (const [args, code, re] of cases) {
    const r = await run(args);
    assert.equal(r.status, code, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re, args.join(' '));
  }
  // A ca.crl that is not this CA's is never silently replaced.
  await ok(['tls', 'revoke', '--ca', other]);
  writeFileSync(join(ca, 'ca.crl'), readFileSync(join(other, 'ca.crl')));
  const r = await run(['tls', 'revoke', '--ca', ca]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /ca\.crl: the previous CRL: not signed by the CA in ca\.crt \(its issuer is "CN=Other CA"\)/);
});
