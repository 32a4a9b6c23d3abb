/**
 * Who is calling the signing API (op-signer `auth.go`, system-anchors §1.2): the first DNS SAN of
 * a client certificate verified by the org's CA, not revoked by its CRL (`crl.ts`) and not expired.
 * Also the TLS files themselves: read, checked, and made into the server's secure context.
 */
import { createSecureContext, type SecureContextOptions, type TLSSocket } from 'node:tls';
import type { SigningBackend } from './backend.ts';
import { loadCrl, type LoadedCrl } from './crl.ts';
import { certificateDnsNames } from './tls-certs.ts';

/** PEM: the CA that issues client certificates, this server's certificate and key, and optionally the CA's CRL. */
export interface ApiTls {
  ca: string | Buffer;
  cert: string | Buffer;
  key: string | Buffer;
  crl?: string | Buffer;
  /** How errors name the CRL file (default "ca.crl"). */
  crlName?: string;
}

/** TLS files that do not make a usable server context; names what is wrong. */
export class TlsConfigError extends Error {
  override readonly name = 'TlsConfigError';
}

export interface PreparedTls {
  options: SecureContextOptions;
  crl: LoadedCrl | null;
}

/** Reads and checks the TLS files: the CRL against the CA, then the whole as a secure context. */
export async function prepareTls(tls: ApiTls): Promise<PreparedTls> {
  const crl = tls.crl === undefined ? null : await loadCrl(tls.crl.toString(), tls.ca.toString(), tls.crlName ?? 'ca.crl');
  const options: SecureContextOptions = { ca: tls.ca, cert: tls.cert, key: tls.key, minVersion: 'TLSv1.3', ...(crl ? { crl: crl.pems } : {}) };
  try {
    createSecureContext(options);
  } catch (e) {
    throw new TlsConfigError(`the TLS files do not make a usable server context: ${(e as Error).message}`);
  }
  return { options, crl };
}

/** What a connection's client certificate says, computed once per connection and CRL generation. */
interface CertFacts {
  names: string[] | null;
  notAfter: number;
  generation: number;
  revoked: boolean;
}

export type Identity = { ok: true; client: string } | { ok: false; status: 401 | 403; message: string };

export class ClientAuth {
  /** Bumped by every reload, so open connections are checked against the new CRL. */
  private generation = 0;
  /** Per connection: a TLS 1.3 peer certificate cannot change. */
  private readonly facts = new WeakMap<TLSSocket, CertFacts>();

  /** `now`: the clock that decides expiry of certificates already accepted (tests pass their own). */
  constructor(private readonly backend: SigningBackend, private tls: PreparedTls, private readonly now: () => number = Date.now) {}

  /** New TLS files (after `prepareTls`): connections already open are checked again on their next call. */
  use(tls: PreparedTls): void {
    this.tls = tls;
    this.generation++;
  }

  identify(socket: TLSSocket): Identity {
    const cert = socket.getPeerCertificate();
    if (!cert || !cert.raw) return { ok: false, status: 401, message: 'client certificate was not provided' };
    if (!socket.authorized) {
      return { ok: false, status: 401, message: `client certificate was not accepted: ${String(socket.authorizationError ?? 'not verified')}` };
    }
    let facts = this.facts.get(socket);
    if (!facts || facts.generation !== this.generation) {
      let names: string[] | null;
      try {
        names = facts?.names ?? certificateDnsNames(cert.raw);
      } catch {
        names = null;
      }
      facts = { names, notAfter: Date.parse(cert.valid_to), generation: this.generation, revoked: this.tls.crl?.revokes(cert.raw) ?? false };
      this.facts.set(socket, facts);
    }
    // OpenSSL's reason codes, as a new handshake would give them.
    if (facts.revoked) return { ok: false, status: 401, message: 'client certificate was not accepted: CERT_REVOKED' };
    if (!(this.now() < facts.notAfter)) return { ok: false, status: 401, message: 'client certificate was not accepted: CERT_HAS_EXPIRED' };
    if (facts.names === null) return { ok: false, status: 401, message: 'client certificate verified but its subject alternative names could not be read' };
    const client = facts.names[0];
    // op-signer's exact wording (auth.go).
    if (client === undefined) return { ok: false, status: 401, message: 'client certificate verified but did not contain DNS SAN extension' };
    if (!this.backend.isClient(client)) return { ok: false, status: 403, message: `client ${JSON.stringify(client)} is not authorized` };
    return { ok: true, client };
  }
}
