/** Shared fixtures for the signing API tests: a local CA and certificates, a fake backend, raw HTTPS. */
import https from 'node:https';
import { webcrypto } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';
// Before @peculiar/x509, which needs Reflect metadata at load (see the shim).
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import type { Hex } from 'viem';
import type { CallContext, Readiness, SigningBackend } from '../../src/api/backend.ts';
import { createLocalCa, issueCertificate, type PemPair } from '../../src/api/tls-certs.ts';
import { createApiMetrics } from '../../src/api/metrics.ts';
import { startApiServer, type ApiServer } from '../../src/api/server.ts';

export const VERSION = 'potluck/0.1.0-test';
export const SIGNED_TX: Hex = '0x02f8720182038480843b9aca008477359400825208';
export const SIGNATURE_65: Hex = `0x${'ab'.repeat(64)}01`;

export interface Certs {
  ca: PemPair;
  server: PemPair;
  batcher: PemPair;
  proposer: PemPair;
  stranger: PemPair;
  noDnsSan: PemPair;
  otherCa: PemPair;
  fromOtherCa: PemPair;
  /** A server certificate for 127.0.0.1 issued by the other CA. */
  otherServer: PemPair;
}

let certs: Promise<Certs> | undefined;

/** One set of certificates per test file (P-256 keygen is fast, but there is no need to repeat it). */
export function testCerts(): Promise<Certs> {
  certs ??= (async () => {
    const ca = await createLocalCa('Potluck test CA');
    const otherCa = await createLocalCa('Some other CA');
    const client = (name: string, from = ca) => issueCertificate(from, { commonName: name, dnsNames: [name], usage: 'client', days: 3 });
    return {
      ca,
      server: await issueCertificate(ca, { commonName: 'localhost', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'], usage: 'server', days: 30 }),
      batcher: await client('batcher'),
      proposer: await client('proposer'),
      stranger: await client('stranger'),
      noDnsSan: await clientCertWithoutDnsSan(ca),
      otherCa,
      fromOtherCa: await client('batcher', otherCa),
      otherServer: await issueCertificate(otherCa, { commonName: 'localhost', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], usage: 'server', days: 30 }),
    };
  })();
  return certs;
}

/** A clientAuth certificate whose only SAN is an IP address: tls-certs.ts refuses to make one, so build it here. */
async function clientCertWithoutDnsSan(ca: PemPair): Promise<PemPair> {
  return clientCertBuilt(ca, 'no-dns', [{ type: 'ip', value: '10.0.0.7' }], new Date(Date.now() - 60_000), new Date(Date.now() + 86_400_000));
}

/** A client certificate valid only from `notBefore` to `notAfter` (tls-certs.ts issues from now on). */
export function clientCertValid(ca: PemPair, name: string, notBefore: Date, notAfter: Date): Promise<PemPair> {
  return clientCertBuilt(ca, name, [{ type: 'dns', value: name }], notBefore, notAfter);
}

async function clientCertBuilt(ca: PemPair, cn: string, san: x509.JsonGeneralName[], notBefore: Date, notAfter: Date): Promise<PemPair> {
  const subtle = webcrypto.subtle;
  const alg = { name: 'ECDSA', namedCurve: 'P-256' };
  const caCert = new x509.X509Certificate(ca.certPem);
  const caKey = await subtle.importKey('pkcs8', x509.PemConverter.decodeFirst(ca.keyPem), alg, false, ['sign']);
  const keys = (await subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.create({
    subject: `CN=${cn}`, issuer: caCert.subjectName, notBefore, notAfter,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' }, publicKey: keys.publicKey, signingKey: caKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension(san),
    ],
  });
  const keyPem = x509.PemConverter.encode(await subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY');
  return { certPem: cert.toString('pem'), keyPem };
}

export interface Call {
  method: 'signTransaction' | 'signBlockPayload' | 'provideBlobs';
  args: unknown;
  version?: 1 | 2;
  ctx: CallContext;
}

/** A SigningBackend that records its calls; each method's behaviour can be replaced per test. */
export class FakeBackend implements SigningBackend {
  readonly version = VERSION;
  clients = new Set(['batcher', 'proposer']);
  calls: Call[] = [];
  ready: Readiness = { ready: true };
  onSignTransaction: (args: unknown, ctx: CallContext) => Promise<Hex> = async () => SIGNED_TX;
  onSignBlockPayload: (args: unknown, version: 1 | 2, ctx: CallContext) => Promise<Hex> = async () => SIGNATURE_65;
  onProvideBlobs: (blobs: unknown, ctx: CallContext) => Promise<Hex[]> = async (blobs) =>
    (blobs as unknown[]).map((_, i) => `0x01${i.toString(16).padStart(62, '0')}` as Hex);

  isClient(name: string): boolean {
    return this.clients.has(name);
  }
  signTransaction(args: unknown, ctx: CallContext): Promise<Hex> {
    this.calls.push({ method: 'signTransaction', args, ctx });
    return this.onSignTransaction(args, ctx);
  }
  signBlockPayload(args: unknown, version: 1 | 2, ctx: CallContext): Promise<Hex> {
    this.calls.push({ method: 'signBlockPayload', args, version, ctx });
    return this.onSignBlockPayload(args, version, ctx);
  }
  provideBlobs(blobs: unknown, ctx: CallContext): Promise<Hex[]> {
    this.calls.push({ method: 'provideBlobs', args: blobs, ctx });
    return this.onProvideBlobs(blobs, ctx);
  }
  readiness(): Readiness {
    return this.ready;
  }
}

/** A pino logger that keeps its output: `text()` is every line, `records()` the parsed objects. */
export function captureLogger(): { log: Logger; text: () => string; records: () => Record<string, unknown>[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return {
    log: pino({ level: 'debug' }, stream),
    text: () => lines.join(''),
    records: () => lines.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

export interface RawReply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface RawRequest {
  port: number;
  method?: string;
  path?: string;
  body?: string | Buffer;
  headers?: Record<string, string>;
  /** The client certificate to present; null for none. */
  cert: PemPair | null;
  /** The CA to verify the server with. */
  ca: string;
}

/** One HTTPS request on a fresh connection (no agent), full control over headers and body. */
export function rawRequest(r: RawRequest): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1', port: r.port, method: r.method ?? 'POST', path: r.path ?? '/', agent: false,
      ca: r.ca, cert: r.cert?.certPem, key: r.cert?.keyPem, minVersion: 'TLSv1.3',
      headers: {
        ...(r.body === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(r.body)) }),
        ...r.headers,
      },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(r.body);
  });
}

/** POSTs a JSON-RPC body as `batcher` and parses the reply. */
export async function rpcAs(port: number, ca: string, cert: PemPair | null, body: unknown): Promise<{ status: number; json: unknown }> {
  const r = await rawRequest({ port, ca, cert, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: r.status, json: r.body === '' ? undefined : JSON.parse(r.body) };
}

/** An API server on an ephemeral port with the test certificates, a FakeBackend and a captured log. */
export async function startTestServer(): Promise<{ certs: Certs; backend: FakeBackend; api: ApiServer }> {
  const certs = await testCerts();
  const backend = new FakeBackend();
  const api = await startApiServer({
    host: '127.0.0.1', port: 0, tls: { ca: certs.ca.certPem, cert: certs.server.certPem, key: certs.server.keyPem },
    backend, log: captureLogger().log, metrics: createApiMetrics({ defaultMetrics: false }),
  });
  return { certs, backend, api };
}
