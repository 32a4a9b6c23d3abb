import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CrlError, certificateSerial, createCrl, type RevocationReason } from '../api/crl.ts';
import { createLocalCa, issueCertificate, isIssuedBy, TlsCertError, writeTlsFiles, type PemPair } from '../api/tls-certs.ts';
import { CliError, EXIT } from './errors.ts';
import { writeFileAtomic } from './files.ts';
import type { Args } from './config.ts';

/** `potluck tls ca|issue|revoke`: the local CA of src/api/tls-certs.ts, like op-signer's gen-local-creds.sh, and its CRL. */
const certError = (e: unknown): never => {
  if (e instanceof TlsCertError) throw new CliError(e.message);
  throw e;
};

function readCa(a: Args): PemPair {
  const caDir = a.str('ca')!;
  const files = { cert: join(caDir, 'ca.crt'), key: join(caDir, 'ca.key') };
  for (const f of Object.values(files)) if (!existsSync(f)) throw new CliError(`${f} does not exist: ${a.origin('ca')} must be a directory made by "potluck tls ca"`);
  return { certPem: readFileSync(files.cert, 'utf8'), keyPem: readFileSync(files.key, 'utf8') };
}

export async function tlsCa(a: Args): Promise<void> {
  const dir = a.str('out')!;
  if (existsSync(join(dir, 'ca.key'))) throw new CliError(`${join(dir, 'ca.key')} already exists; refusing to overwrite a CA key (choose another ${a.origin('out')})`);
  const ca = await createLocalCa(a.str('name')!, { days: a.num('days')! }).catch(certError);
  const { certPath, keyPath } = writeTlsFiles(dir, 'ca', ca);
  console.log(JSON.stringify({ ca: certPath, key: keyPath, days: a.num('days') }));
}

export async function tlsIssue(a: Args): Promise<void> {
  const out = a.str('out')!, usage = a.str('usage') as 'server' | 'client', name = a.str('name')!;
  const ca = readCa(a);
  const files = { cert: join(a.str('ca')!, 'ca.crt') };
  // A client's identity is its first DNS name (system-anchors §1.2).
  const dns = usage === 'client' ? [name, ...a.list('dns').filter((d) => d !== name)] : a.list('dns');
  const pair = await issueCertificate(ca, { commonName: name, dnsNames: dns, ipAddresses: a.list('ip'), usage, days: a.num('days')! }).catch(certError);
  const { certPath, keyPath } = writeTlsFiles(out, usage === 'server' ? 'server' : name, pair);
  const caCopy = join(out, 'ca.crt');
  if (resolve(caCopy) !== resolve(files.cert)) writeFileSync(caCopy, ca.certPem, { mode: 0o644 });
  console.log(JSON.stringify({ usage, cert: certPath, key: keyPath, ca: caCopy, dns, ip: a.list('ip'), days: a.num('days') }));
}

/**
 * `potluck tls revoke`: the CA's CRL at `<ca>/ca.crl`, rewritten with the previous entries plus the
 * certificates given (by file or serial), numbered one up, valid for --days. Nothing given: renewed.
 */
export async function tlsRevoke(a: Args): Promise<void> {
  const ca = readCa(a);
  const crlPath = join(a.str('ca')!, 'ca.crl');
  const reason = a.str('reason') as RevocationReason;
  const revoke: { serial: string; reason: RevocationReason }[] = [];
  for (const file of a.list('cert')) {
    if (!existsSync(file)) throw new CliError(`${a.origin('cert')} ${file} does not exist`);
    const pem = readFileSync(file, 'utf8');
    let issued: boolean;
    try {
      issued = await isIssuedBy(pem, ca.certPem);
    } catch {
      throw new CliError(`${file} is not a PEM certificate`);
    }
    if (!issued) throw new CliError(`${file} was not issued by the CA in ${a.str('ca')} (revoke it with its own CA)`);
    revoke.push({ serial: certificateSerial(pem), reason });
  }
  for (const serial of a.list('serial')) {
    if (!/^(0x)?[0-9a-fA-F]{1,40}$/.test(serial)) throw new CliError(`${a.origin('serial')} must be a hex serial number (as "openssl x509 -serial" prints it), got "${serial}"`);
    revoke.push({ serial, reason });
  }
  const previous = existsSync(crlPath) ? readFileSync(crlPath, 'utf8') : undefined;
  const crl = await createCrl(ca, { revoke, days: a.num('days')!, ...(previous !== undefined ? { previous } : {}) }).catch((e: unknown) => {
    if (e instanceof CrlError) throw new CliError(previous !== undefined && /previous CRL/.test(e.message) ? `${crlPath}: ${e.message}` : e.message, EXIT.failed);
    throw e;
  });
  writeFileAtomic(crlPath, crl.pem);
  console.log(JSON.stringify({
    crl: crlPath, number: Number(crl.number), nextUpdate: crl.nextUpdate.toISOString(),
    revoked: crl.entries.map((e) => ({ serial: e.serial, reason: e.reason, date: e.date.toISOString() })),
  }));
}
