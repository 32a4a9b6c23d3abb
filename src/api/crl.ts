/**
 * Certificate revocation lists for the signing API's client certificates (issue 11, mTLS): the
 * local CA of `tls-certs.ts` issues them (`potluck tls revoke`), the API server loads them
 * (`<tls-dir>/ca.crl`) and reloads them on SIGHUP.
 *
 * A CRL here is X.509 v2 (RFC 5280 §5), signed by the CA that issued the certificates it lists,
 * with a CRL number and the CA's key identifier. It is cumulative: each new one repeats every entry
 * of the previous one. A CRL past its nextUpdate makes OpenSSL refuse every client certificate of
 * its CA, so loading one that has expired is an error, and `potluck tls revoke` with no new
 * certificate renews it.
 */
// tls-certs.ts loads reflect-metadata and sets @peculiar/x509's crypto provider.
import { importSigningKey, type PemPair } from './tls-certs.ts';
import * as x509 from '@peculiar/x509';

const DAY_MS = 86_400_000;
/** RFC 5280 §5.2.3 cRLNumber. */
const CRL_NUMBER_OID = '2.5.29.20';
/** A CRL this large is not one we made (each entry is ~40 bytes: a million revocations is 40 MB). */
const MAX_CRL_BYTES = 4 * 1024 * 1024;

/** A CRL that cannot be made or used; names the file's problem. */
export class CrlError extends Error {
  override readonly name = 'CrlError';
}

export const REVOCATION_REASONS = ['unspecified', 'keyCompromise', 'affiliationChanged', 'superseded', 'cessationOfOperation'] as const;
export type RevocationReason = (typeof REVOCATION_REASONS)[number];

export interface Revocation {
  /** Hex, as the certificate carries it (leading zeros do not matter). */
  serial: string;
  reason: RevocationReason;
  date: Date;
}

export interface CrlInfo {
  pem: string;
  number: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  entries: Revocation[];
}

/** Serial numbers compare as numbers: "00ab" and "AB" are one serial. */
export const normalizeSerial = (hex: string): string => BigInt(`0x${hex.replace(/^0x/i, '') || '0'}`).toString(16);

/** The serial number of a PEM or DER certificate, normalized. */
export function certificateSerial(cert: string | Uint8Array): string {
  return normalizeSerial(new x509.X509Certificate(typeof cert === 'string' ? cert : new Uint8Array(cert)).serialNumber);
}

/** DER INTEGER of a non-negative bigint (the cRLNumber extension's value). */
function derInteger(n: bigint): Uint8Array<ArrayBuffer> {
  const body = Buffer.from(derSerialHex(n.toString(16)), 'hex');
  return new Uint8Array([0x02, body.length, ...body]);
}

/** A normalized serial as the hex of its DER INTEGER body (even length, a 00 byte before a set top bit). */
function derSerialHex(serial: string): string {
  const hex = serial.length % 2 ? `0${serial}` : serial;
  return parseInt(hex.slice(0, 2), 16) & 0x80 ? `00${hex}` : hex;
}

function crlNumber(crl: x509.X509Crl): bigint {
  const ext = crl.extensions.find((e) => e.type === CRL_NUMBER_OID);
  if (!ext) return 0n;
  const v = new Uint8Array(ext.value);
  if (v[0] !== 0x02 || v[1] !== v.length - 2) throw new CrlError('the CRL number extension is not a DER INTEGER');
  return BigInt(`0x${Buffer.from(v.subarray(2)).toString('hex') || '0'}`);
}

function reasonName(r: x509.X509CrlReason | undefined): RevocationReason {
  const name = r === undefined ? 'unspecified' : x509.X509CrlReason[r];
  return (REVOCATION_REASONS as readonly string[]).includes(name ?? '') ? (name as RevocationReason) : 'unspecified';
}

/** The CA certificate in `caPem` (one or several PEM certificates) that signed `crl`, or a CrlError. */
async function issuerOf(crl: x509.X509Crl, caPem: string, what: string): Promise<x509.X509Certificate> {
  const cas = x509.PemConverter.decode(caPem).map((der) => new x509.X509Certificate(der));
  for (const ca of cas.filter((c) => c.subject === crl.issuer)) {
    if (await crl.verify({ publicKey: ca })) return ca;
  }
  throw new CrlError(`${what}: not signed by the CA in ca.crt (its issuer is "${crl.issuer}")`);
}

function parseCrls(text: string, what: string): x509.X509Crl[] {
  if (Buffer.byteLength(text) > MAX_CRL_BYTES) throw new CrlError(`${what}: larger than ${MAX_CRL_BYTES} bytes`);
  const blocks = text.match(/-----BEGIN (X509 )?CRL-----[^-]+-----END (X509 )?CRL-----/g) ?? [];
  if (blocks.length === 0) throw new CrlError(`${what}: no PEM CRL in it (expected "-----BEGIN X509 CRL-----")`);
  return blocks.map((b, i) => {
    try {
      return new x509.X509Crl(b);
    } catch {
      throw new CrlError(`${what}: CRL ${i + 1} is not a readable X.509 CRL`);
    }
  });
}

/** RFC 7468's label, which OpenSSL reads (@peculiar/x509 writes "CRL"). */
const pemOf = (crl: x509.X509Crl): string => x509.PemConverter.encode(crl.rawData, 'X509 CRL');

function info(crl: x509.X509Crl): CrlInfo {
  return {
    pem: pemOf(crl),
    number: crlNumber(crl),
    thisUpdate: crl.thisUpdate,
    nextUpdate: crl.nextUpdate ?? new Date(0),
    entries: crl.entries.map((e) => ({ serial: normalizeSerial(e.serialNumber), reason: reasonName(e.reason), date: e.revocationDate })),
  };
}

/**
 * A new CRL of `ca`: the entries of `previous` (a CRL of this CA, if any) plus `revoke`, number one
 * above the previous one, valid for `days`. A serial already listed keeps its first entry.
 */
export async function createCrl(ca: PemPair, opts: { revoke: { serial: string; reason: RevocationReason }[]; previous?: string; days: number; now?: Date }): Promise<CrlInfo> {
  if (!Number.isInteger(opts.days) || opts.days < 1) throw new CrlError(`days: must be a positive integer, got ${opts.days}`);
  const caCert = new x509.X509Certificate(ca.certPem);
  const now = opts.now ?? new Date();
  let entries: Revocation[] = [];
  let number = 1n;
  if (opts.previous !== undefined) {
    const [prev] = parseCrls(opts.previous, 'the previous CRL');
    await issuerOf(prev!, ca.certPem, 'the previous CRL');
    const p = info(prev!);
    entries = p.entries;
    number = p.number + 1n;
  }
  for (const r of opts.revoke) {
    if (!/^(0x)?[0-9a-fA-F]{1,40}$/.test(r.serial)) throw new CrlError(`serial: not a hex serial number: ${JSON.stringify(r.serial)}`);
    const serial = normalizeSerial(r.serial);
    if (!entries.some((e) => e.serial === serial)) entries.push({ serial, reason: r.reason, date: now });
  }
  const crl = await x509.X509CrlGenerator.create({
    issuer: caCert.subjectName,
    thisUpdate: now,
    nextUpdate: new Date(now.getTime() + opts.days * DAY_MS),
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    signingKey: await importSigningKey(ca.keyPem),
    extensions: [
      new x509.Extension(CRL_NUMBER_OID, false, derInteger(number)),
      await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey),
    ],
    entries: entries.map((e) => ({
      serialNumber: derSerialHex(e.serial),
      revocationDate: e.date,
      ...(e.reason === 'unspecified' ? {} : { reason: x509.X509CrlReason[e.reason] }),
    })),
  });
  return info(crl);
}

/** What the API server holds of a loaded CRL file: its PEM blocks for OpenSSL, and a lookup for connections already open. */
export interface LoadedCrl {
  /** One PEM string per CRL (Node's `crl` option reads one CRL per string). */
  pems: string[];
  /** The earliest nextUpdate: past it OpenSSL refuses every client of that CA. */
  nextUpdate: Date;
  count: number;
  /** Whether a DER certificate is listed by the CRL of its issuer. */
  revokes(certDer: Uint8Array): boolean;
}

/**
 * Reads a CRL file for the API: one or more PEM CRLs, each signed by a CA in `caPem`, none past its
 * nextUpdate. `what` names the file in errors.
 */
export async function loadCrl(text: string, caPem: string, what: string, now: Date = new Date()): Promise<LoadedCrl> {
  const crls = parseCrls(text, what);
  const byIssuer = new Map<string, Set<string>>();
  let nextUpdate = new Date(8.64e15);
  let count = 0;
  for (const [i, crl] of crls.entries()) {
    const label = crls.length > 1 ? `${what} (CRL ${i + 1})` : what;
    await issuerOf(crl, caPem, label);
    if (!crl.nextUpdate) throw new CrlError(`${label}: has no nextUpdate`);
    if (crl.nextUpdate.getTime() <= now.getTime()) {
      throw new CrlError(`${label}: expired at ${crl.nextUpdate.toISOString()} (its nextUpdate); make a new one with "potluck tls revoke --ca DIR"`);
    }
    if (crl.nextUpdate < nextUpdate) nextUpdate = crl.nextUpdate;
    const serials = byIssuer.get(crl.issuer) ?? new Set<string>();
    for (const e of crl.entries) serials.add(normalizeSerial(e.serialNumber));
    byIssuer.set(crl.issuer, serials);
    count += crl.entries.length;
  }
  return {
    pems: crls.map(pemOf),
    nextUpdate,
    count,
    revokes(der) {
      const cert = new x509.X509Certificate(new Uint8Array(der));
      return byIssuer.get(cert.issuer)?.has(normalizeSerial(cert.serialNumber)) ?? false;
    },
  };
}
