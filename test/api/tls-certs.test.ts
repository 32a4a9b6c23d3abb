/** The local CA (system-anchors §1.2): certificate contents, key form, files, and what it refuses. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  TlsCertError, certificateDnsNames, createLocalCa, issueCertificate, writeTlsFiles,
} from '../../src/api/tls-certs.ts';

const DAY = 86_400_000;
const hasOpenssl = (() => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('createLocalCa / issueCertificate', async () => {
  const ca = await createLocalCa('Potluck test CA');
  const caCert = new X509Certificate(ca.certPem);
  const server = await issueCertificate(ca, { commonName: 'signer', dnsNames: ['localhost', 'signer.local'], ipAddresses: ['127.0.0.1', '::1'], usage: 'server', days: 30 });
  const client = await issueCertificate(ca, { commonName: 'batcher', dnsNames: ['batcher'], usage: 'client', days: 3 });

  test('the CA is self-signed, a CA, with a positive serial', () => {
    assert.equal(caCert.ca, true);
    assert.equal(caCert.subject, 'CN=Potluck test CA');
    assert.equal(caCert.issuer, 'CN=Potluck test CA');
    assert.equal(caCert.verify(caCert.publicKey), true);
    assert.ok(Number.parseInt(caCert.serialNumber.slice(0, 2), 16) < 0x80, 'serial is positive');
    assert.equal(caCert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  });

  test('a server certificate: issued by the CA, not a CA, serverAuth, SAN with DNS names first then IPs', () => {
    const c = new X509Certificate(server.certPem);
    assert.equal(c.ca, false);
    assert.equal(c.checkIssued(caCert), true);
    assert.equal(c.verify(caCert.publicKey), true);
    assert.equal(c.subject, 'CN=signer');
    assert.equal(c.subjectAltName, 'DNS:localhost, DNS:signer.local, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    assert.deepEqual(c.keyUsage, ['1.3.6.1.5.5.7.3.1']);
    assert.equal(c.checkHost('localhost'), 'localhost');
    assert.equal(c.checkIP('127.0.0.1'), '127.0.0.1');
  });

  test('a client certificate: clientAuth, its name as the first DNS SAN, valid for the days asked', () => {
    const c = new X509Certificate(client.certPem);
    assert.equal(c.subjectAltName, 'DNS:batcher');
    assert.deepEqual(c.keyUsage, ['1.3.6.1.5.5.7.3.2']);
    assert.deepEqual(certificateDnsNames(c.raw), ['batcher']);
    const lifetime = Date.parse(c.validTo) - Date.now();
    assert.ok(lifetime > 3 * DAY - 60_000 && lifetime <= 3 * DAY, `valid for 3 days, got ${lifetime} ms`);
    assert.ok(Date.parse(c.validFrom) < Date.now() - 60_000, 'notBefore is backdated for clock skew');
  });

  test('serials are random', async () => {
    const again = await issueCertificate(ca, { commonName: 'batcher', dnsNames: ['batcher'], usage: 'client', days: 3 });
    assert.notEqual(new X509Certificate(again.certPem).serialNumber, new X509Certificate(client.certPem).serialNumber);
  });

  test('keys are PKCS#8 PEM, P-256, matching their certificate', () => {
    for (const pair of [ca, server, client]) {
      assert.match(pair.keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
      const key = createPrivateKey(pair.keyPem);
      assert.equal(key.asymmetricKeyDetails?.namedCurve, 'prime256v1');
      assert.equal(new X509Certificate(pair.certPem).checkPrivateKey(key), true);
    }
  });

  test('certificateDnsNames keeps the order', () => {
    assert.deepEqual(certificateDnsNames(new X509Certificate(server.certPem).raw), ['localhost', 'signer.local']);
    assert.deepEqual(certificateDnsNames(caCert.raw), []);
  });

  test('OpenSSL verifies the chain and each purpose, and refuses the wrong purpose', { skip: !hasOpenssl && 'no openssl binary' }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'potluck-tls-'));
    try {
      for (const [n, p] of [['ca', ca], ['server', server], ['client', client]] as const) writeFileSync(join(dir, `${n}.crt`), p.certPem);
      const verify = (purpose: string, file: string) =>
        execFileSync('openssl', ['verify', '-CAfile', join(dir, 'ca.crt'), '-purpose', purpose, join(dir, file)], { encoding: 'utf8', stdio: 'pipe' });
      assert.equal(verify('sslserver', 'server.crt').trim(), `${join(dir, 'server.crt')}: OK`);
      assert.equal(verify('sslclient', 'client.crt').trim(), `${join(dir, 'client.crt')}: OK`);
      assert.throws(() => verify('sslserver', 'client.crt'), /unsuitable certificate purpose/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('refuses requests that cannot make a usable certificate', async () => {
    const bad = async (req: Parameters<typeof issueCertificate>[1], message: string) =>
      assert.rejects(issueCertificate(ca, req), (e: unknown) => e instanceof TlsCertError && e.message === message);
    await bad({ commonName: 'x', dnsNames: [], ipAddresses: ['127.0.0.1'], usage: 'client', days: 1 },
      'dnsNames: a client certificate needs at least one DNS name (its client name)');
    await bad({ commonName: 'x', dnsNames: [], usage: 'server', days: 1 }, 'dnsNames, ipAddresses: a certificate needs at least one subject alternative name');
    await bad({ commonName: 'x', dnsNames: ['bad name'], usage: 'server', days: 1 }, 'dnsNames: not a DNS name: "bad name"');
    await bad({ commonName: 'x', dnsNames: ['a'], ipAddresses: ['300.1.1.1'], usage: 'server', days: 1 }, 'ipAddresses: not an IP address: "300.1.1.1"');
    await bad({ commonName: 'x', dnsNames: ['a'], usage: 'server', days: 0 }, 'days: must be a positive integer, got 0');
    await bad({ commonName: '', dnsNames: ['a'], usage: 'server', days: 1 }, 'commonName: must be 1..64 characters, got ""');
    await assert.rejects(issueCertificate({ certPem: ca.certPem, keyPem: 'nope' }, { commonName: 'x', dnsNames: ['a'], usage: 'server', days: 1 }),
      (e: unknown) => e instanceof TlsCertError && e.message === 'ca.keyPem: not a readable PEM private key');
  });
});

describe('writeTlsFiles', () => {
  test('writes <name>.crt 0644 and <name>.key 0600, also over an existing looser key file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'potluck-tls-'));
    try {
      const ca = await createLocalCa('files');
      writeFileSync(join(dir, 'ca.key'), 'old', { mode: 0o644 });
      const paths = writeTlsFiles(dir, 'ca', ca);
      assert.deepEqual(paths, { certPath: join(dir, 'ca.crt'), keyPath: join(dir, 'ca.key') });
      assert.equal(readFileSync(paths.certPath, 'utf8'), ca.certPem);
      assert.equal(readFileSync(paths.keyPath, 'utf8'), ca.keyPem);
      assert.equal(statSync(paths.keyPath).mode & 0o777, 0o600);
      assert.equal(statSync(paths.certPath).mode & 0o777, 0o644 & ~process.umask());
      assert.throws(() => writeTlsFiles(dir, '../x', ca), (e: unknown) => e instanceof TlsCertError && e.message === 'name: must be a plain file name, got "../x"');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
