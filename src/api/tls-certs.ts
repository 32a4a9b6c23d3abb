/**
 * A local certificate authority for dev, test and devnet mTLS (system-anchors §1.2): ECDSA P-256
 * keys, PKCS#8 PEM, X.509 v3 certificates that both Node's TLS and Go's crypto/tls accept
 * (op-batcher and op-node are Go). Like op-signer's `gen-local-creds.sh`, a client certificate
 * carries its client name as its first DNS SAN: that is the identity the API authorizes.
 *
 * Go's rules this follows: a SAN is present (Go ignores the CN for host names), the serial is a
 * positive random integer, the CA has basicConstraints CA=true and keyUsage keyCertSign, a leaf
 * has basicConstraints CA=false and the extended key usage its role needs (serverAuth or
 * clientAuth; Go's server checks clientAuth on client certificates).
 */
import { createPrivateKey, webcrypto } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
// @peculiar/x509's dependency injection (tsyringe) needs the Reflect metadata API at load time.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const subtle = webcrypto.subtle;
const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;
/** notBefore is backdated so a peer whose clock runs a little behind still accepts a fresh cert. */
const BACKDATE_MS = 5 * 60_000;
const DAY_MS = 86_400_000;
/** RFC 1035 labels, plus a leading `*.` wildcard; client names are plain host-like names. */
const DNS_NAME = /^(?:\*\.)?(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;

/** A certificate and its private key, both PEM (the key PKCS#8, `-----BEGIN PRIVATE KEY-----`). */
export interface PemPair {
  certPem: string;
  keyPem: string;
}

export interface IssueRequest {
  commonName: string;
  /** DNS SANs, in order; for a client certificate the first one is the client name (§1.2). */
  dnsNames: string[];
  ipAddresses?: string[];
  usage: 'server' | 'client';
  days: number;
}

/** A certificate request or input that cannot make a valid certificate; names what is wrong. */
export class TlsCertError extends Error {
  override readonly name = 'TlsCertError';
}

async function newKeyPair(): Promise<CryptoKeyPair> {
  return (await subtle.generateKey(EC_P256, true, ['sign', 'verify'])) as CryptoKeyPair;
}

async function keyPem(key: CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

/** A positive serial of 16 random bytes (RFC 5280 §4.1.2.2): top bit cleared, first byte non-zero so the DER stays 16 bytes. */
function randomSerial(): string {
  const b = webcrypto.getRandomValues(new Uint8Array(16));
  b[0] = (b[0]! & 0x7f) | 0x01;
  return Buffer.from(b).toString('hex');
}

function validity(days: number): { notBefore: Date; notAfter: Date } {
  if (!Number.isInteger(days) || days < 1) throw new TlsCertError(`days: must be a positive integer, got ${days}`);
  const now = Date.now();
  return { notBefore: new Date(now - BACKDATE_MS), notAfter: new Date(now + days * DAY_MS) };
}

function checkCommonName(cn: string): void {
  if (typeof cn !== 'string' || cn.length === 0 || cn.length > 64) throw new TlsCertError(`commonName: must be 1..64 characters, got ${JSON.stringify(cn)}`);
}

/** A self-signed CA (10 years by default): basicConstraints CA=true pathLen 0, keyCertSign + cRLSign. */
export async function createLocalCa(commonName: string, opts: { days?: number } = {}): Promise<PemPair> {
  checkCommonName(commonName);
  const keys = await newKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: [{ CN: [commonName] }],
    ...validity(opts.days ?? 3650),
    signingAlgorithm: SIGNING,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await keyPem(keys.privateKey) };
}

/** Issues a server or client certificate signed by `ca`. */
export async function issueCertificate(ca: PemPair, req: IssueRequest): Promise<PemPair> {
  checkCommonName(req.commonName);
  const dnsNames = req.dnsNames ?? [];
  const ips = req.ipAddresses ?? [];
  for (const d of dnsNames) if (typeof d !== 'string' || d.length > 253 || !DNS_NAME.test(d)) throw new TlsCertError(`dnsNames: not a DNS name: ${JSON.stringify(d)}`);
  for (const ip of ips) if (isIP(ip) === 0) throw new TlsCertError(`ipAddresses: not an IP address: ${JSON.stringify(ip)}`);
  if (req.usage !== 'server' && req.usage !== 'client') throw new TlsCertError(`usage: must be "server" or "client", got ${JSON.stringify(req.usage)}`);
  // op-signer identifies a client by its first DNS SAN and refuses a certificate without one (§1.2).
  if (req.usage === 'client' && dnsNames.length === 0) throw new TlsCertError('dnsNames: a client certificate needs at least one DNS name (its client name)');
  if (dnsNames.length + ips.length === 0) throw new TlsCertError('dnsNames, ipAddresses: a certificate needs at least one subject alternative name');

  const caCert = new x509.X509Certificate(ca.certPem);
  const caKey = await importSigningKey(ca.keyPem);
  const keys = await newKeyPair();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: [{ CN: [req.commonName] }],
    // The CA's encoded subject, byte for byte: Go matches issuer to subject on the raw bytes.
    issuer: caCert.subjectName,
    ...validity(req.days),
    signingAlgorithm: SIGNING,
    publicKey: keys.publicKey,
    signingKey: caKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([req.usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension([
        ...dnsNames.map((value) => ({ type: 'dns' as const, value })),
        ...ips.map((value) => ({ type: 'ip' as const, value })),
      ]),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await keyPem(keys.privateKey) };
}

/** Any PEM private key Node reads (PKCS#8 or SEC1), as a WebCrypto P-256 signing key. */
export async function importSigningKey(pem: string): Promise<CryptoKey> {
  let der: Buffer;
  try {
    der = createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });
  } catch {
    throw new TlsCertError('ca.keyPem: not a readable PEM private key');
  }
  try {
    return await subtle.importKey('pkcs8', der, EC_P256, false, ['sign']);
  } catch {
    throw new TlsCertError('ca.keyPem: not an ECDSA P-256 key');
  }
}

/** Whether PEM certificate `certPem` carries the subject of `caPem` as its issuer and verifies with its key. */
export async function isIssuedBy(certPem: string, caPem: string): Promise<boolean> {
  const cert = new x509.X509Certificate(certPem);
  const ca = new x509.X509Certificate(caPem);
  return cert.issuer === ca.subject && (await cert.verify({ publicKey: ca, signatureOnly: true }));
}

/** The DNS SANs of a DER certificate, in order (the first is the client name, §1.2). */
export function certificateDnsNames(der: Uint8Array): string[] {
  const cert = new x509.X509Certificate(new Uint8Array(der));
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  if (!san) return [];
  return san.names.items.filter((n) => n.type === 'dns').map((n) => n.value);
}

/** Writes `<dir>/<name>.crt` (0644) and `<dir>/<name>.key` (0600), synchronously; returns both paths. */
export function writeTlsFiles(dir: string, name: string, pair: PemPair): { certPath: string; keyPath: string } {
  if (!/^[A-Za-z0-9._-]+$/.test(name) || name.startsWith('.')) throw new TlsCertError(`name: must be a plain file name, got ${JSON.stringify(name)}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const certPath = join(dir, `${name}.crt`);
  const keyPath = join(dir, `${name}.key`);
  writeFileSync(certPath, pair.certPem, { mode: 0o644 });
  writeFileSync(keyPath, pair.keyPem, { mode: 0o600 });
  // `mode` applies only when a file is created; an existing key file keeps its mode otherwise.
  chmodSync(keyPath, 0o600);
  return { certPath, keyPath };
}
