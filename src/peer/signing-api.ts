import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { createApiMetrics } from '../api/metrics.ts';
import { API_KEEP_ALIVE_MS, startApiServer, type ApiTls } from '../api/server.ts';
import { loadIdentity } from '../cluster/identity.ts';
import type { SigningService } from './signing-service.ts';
import type { Daemon } from './daemon.ts';
import { attachPeerMetrics } from './peer-metrics.ts';

/**
 * Starts the op-signer compatible API of a running peer (issue 4) on the address in its
 * `peer.json` (`potluck init --api`), with the TLS files op-signer's layout uses:
 * `<tls-dir>/ca.crt` (the CA that issued the client certificates), `server.crt`, `server.key`,
 * and the CA's revocation list `<tls-dir>/ca.crl` when present (or `--api-crl FILE`).
 * Without a TLS dir the API stays off (an insecure mode would still need client certs, §1.2).
 * Metrics, if asked for, go to a separate plain-HTTP listener like op-signer's.
 */
export interface SigningApi {
  url: string;
  metricsUrl: string | null;
  /**
   * Reads the TLS files again (SIGHUP) and serves new connections with them; throws and keeps the
   * previous ones if they are not usable. Returns the CRL file in force and what it holds.
   */
  reloadTls(): Promise<{ crl: { file: string; revoked: number; nextUpdate: Date } | null }>;
  /** Open connections and signing calls in flight. */
  activity(): { connections: number; inFlight: number };
  close(): Promise<void>;
}

export interface SigningApiOptions {
  home: string;
  /** Default `<home>/tls`. */
  tlsDir?: string | undefined;
  /** A CRL file given explicitly (must exist); default `<tls-dir>/ca.crl` if it exists. */
  crlFile?: string | undefined;
  /** HOST:PORT of the plain-HTTP metrics listener. */
  metrics?: string | undefined;
  maxConnections?: number | undefined;
  maxCallsPerClient?: number | undefined;
  signer: SigningService;
  daemon: Daemon;
  log: Logger;
}

export class ApiConfigError extends Error {
  override readonly name = 'ApiConfigError';
}

export async function startSigningApi(o: SigningApiOptions): Promise<SigningApi | null> {
  const { home, signer, daemon, log } = o;
  const metricsAddr = o.metrics;
  const dir = o.tlsDir ?? join(home, 'tls');
  const files = { ca: join(dir, 'ca.crt'), cert: join(dir, 'server.crt'), key: join(dir, 'server.key') };
  if (!existsSync(dir)) {
    if (o.tlsDir) throw new ApiConfigError(`--tls-dir ${o.tlsDir} does not exist`);
    log.warn({ dir }, 'signing API off: no TLS directory (ca.crt, server.crt, server.key)');
    return null;
  }
  for (const [what, f] of Object.entries(files)) if (!existsSync(f)) throw new ApiConfigError(`TLS ${what} file ${f} is missing (expected ca.crt, server.crt, server.key in ${dir})`);
  if (o.crlFile && !existsSync(o.crlFile)) throw new ApiConfigError(`--api-crl ${o.crlFile} does not exist`);
  const crlFile = o.crlFile ?? join(dir, 'ca.crl');
  /** The CRL file in force, once one was: removing it would silently lift every revocation. */
  let crlInForce: string | null = null;
  const readTls = (): ApiTls => {
    const tls: ApiTls = { ca: readFileSync(files.ca), cert: readFileSync(files.cert), key: readFileSync(files.key) };
    if (existsSync(crlFile)) return { ...tls, crl: readFileSync(crlFile), crlName: crlFile };
    if (crlInForce) throw new ApiConfigError(`the CRL ${crlInForce} is in force but the file is gone; put it back (a CRL with no entries lifts every revocation)`);
    return tls;
  };
  const tls = readTls();
  const { info } = loadIdentity(home);
  const [host, port] = splitHostPort(info.api, 'peer.json api');
  // Issue 6: every series labelled by cluster and peer (org).
  const metrics = createApiMetrics({ labels: { cluster: daemon.definition.name, peer: daemon.self.org } });
  attachPeerMetrics(metrics.registry, daemon, signer);
  const server = await startApiServer({
    host, port, backend: signer, log, metrics, tls,
    // The signing service queues what it cannot run at once; the server only bounds what it holds open.
    maxConcurrent: 1024,
    ...(o.maxConnections !== undefined ? { maxConnections: o.maxConnections } : {}),
    ...(o.maxCallsPerClient !== undefined ? { maxCallsPerClient: o.maxCallsPerClient } : {}),
  });
  if (tls.crl) crlInForce = crlFile;
  let metricsServer: Server | null = null;
  let metricsUrl: string | null = null;
  if (metricsAddr) {
    const [mh, mp] = splitHostPort(metricsAddr, '--metrics');
    metricsServer = createServer({ keepAliveTimeout: API_KEEP_ALIVE_MS }, (req, res) => {
      if (req.method !== 'GET' || req.url !== '/metrics') {
        res.writeHead(404).end('only GET /metrics\n');
        return;
      }
      metrics.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        (e: Error) => res.writeHead(500).end(`${e.message}\n`),
      );
    });
    await new Promise<void>((res, rej) => {
      metricsServer!.once('error', rej);
      metricsServer!.listen(mp, mh, () => res());
    });
    metricsUrl = `http://${mh}:${(metricsServer.address() as { port: number }).port}/metrics`;
  }
  log.info({ api: server.url, metrics: metricsUrl, crl: crlInForce }, 'signing API listening');
  return {
    url: server.url,
    metricsUrl,
    async reloadTls() {
      const next = readTls();
      const r = await server.reloadTls(next);
      crlInForce = next.crl ? crlFile : null;
      return { crl: r.crl ? { file: crlFile, ...r.crl } : null };
    },
    activity: () => server.activity(),
    close: async () => {
      metricsServer?.close();
      await server.close();
    },
  };
}

function splitHostPort(v: string, what: string): [string, number] {
  const m = /^(.*):(\d{1,5})$/.exec(v);
  if (!m) throw new ApiConfigError(`${what} "${v}" must be HOST:PORT`);
  return [m[1]!.replace(/^\[(.*)\]$/, '$1'), Number(m[2])];
}
