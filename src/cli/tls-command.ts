import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createLocalCa, issueCertificate, TlsCertError, writeTlsFiles, type PemPair } from '../api/tls-certs.ts';
import { CliError } from './errors.ts';
import type { Args } from './config.ts';

/** `potluck tls ca|issue`: the local CA of src/api/tls-certs.ts, like op-signer's gen-local-creds.sh. */
const certError = (e: unknown): never => {
  if (e instanceof TlsCertError) throw new CliError(e.message);
  throw e;
};

export async function tlsCa(a: Args): Promise<void> {
  const dir = a.str('out')!;
  if (existsSync(join(dir, 'ca.key'))) throw new CliError(`${join(dir, 'ca.key')} already exists; refusing to overwrite a CA key (choose another ${a.origin('out')})`);
  const ca = await createLocalCa(a.str('name')!, { days: a.num('days')! }).catch(certError);
  const { certPath, keyPath } = writeTlsFiles(dir, 'ca', ca);
  console.log(JSON.stringify({ ca: certPath, key: keyPath, days: a.num('days') }));
}

export async function tlsIssue(a: Args): Promise<void> {
  const caDir = a.str('ca')!, out = a.str('out')!, usage = a.str('usage') as 'server' | 'client', name = a.str('name')!;
  const files = { cert: join(caDir, 'ca.crt'), key: join(caDir, 'ca.key') };
  for (const f of Object.values(files)) if (!existsSync(f)) throw new CliError(`${f} does not exist: ${a.origin('ca')} must be a directory made by "potluck tls ca"`);
  const ca: PemPair = { certPem: readFileSync(files.cert, 'utf8'), keyPem: readFileSync(files.key, 'utf8') };
  // A client's identity is its first DNS name (system-anchors §1.2).
  const dns = usage === 'client' ? [name, ...a.list('dns').filter((d) => d !== name)] : a.list('dns');
  const pair = await issueCertificate(ca, { commonName: name, dnsNames: dns, ipAddresses: a.list('ip'), usage, days: a.num('days')! }).catch(certError);
  const { certPath, keyPath } = writeTlsFiles(out, usage === 'server' ? 'server' : name, pair);
  const caCopy = join(out, 'ca.crt');
  if (resolve(caCopy) !== resolve(files.cert)) writeFileSync(caCopy, ca.certPem, { mode: 0o644 });
  console.log(JSON.stringify({ usage, cert: certPath, key: keyPath, ca: caCopy, dns, ip: a.list('ip'), days: a.num('days') }));
}
