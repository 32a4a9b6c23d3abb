import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { createApiMetrics } from '../api/metrics.ts';
import { startApiServer } from '../api/server.ts';
import { loadIdentity } from '../cluster/identity.ts';
import type { SigningService } from './signing-service.ts';
import type { Daemon } from './daemon.ts';
import { attachPeerMetrics } from './peer-metrics.ts';

/**
 * Starts the op-signer compatible API of a running peer (issue 4) on the address in its
 * `peer.json` (`potluck init --api`), with the TLS files op-signer's layout uses:
 * `<tls-dir>/ca.crt` (the CA that issued the client certificates), `server.crt`, `server.key`.
 * Without a TLS dir the API stays off (an insecure mode would still need client certs, §1.2).
 * Metrics, if asked for, go to a separate plain-HTTP listener like op-signer's.
 */
export interface SigningApi {
  url: string;
  metricsUrl: string | null;
  close(): Promise<void>;
}

export class ApiConfigError extends Error {
  override readonly name = 'ApiConfigError';
}

export async function startSigningApi(home: string, tlsDir: string | undefined, metricsAddr: string | undefined, signer: SigningService, daemon: Daemon, log: Logger): Promise<SigningApi | null> {
  const dir = tlsDir ?? join(home, 'tls');
  const files = { ca: join(dir, 'ca.crt'), cert: join(dir, 'server.crt'), key: join(dir, 'server.key') };
  if (!existsSync(dir)) {
    if (tlsDir) throw new ApiConfigError(`--tls-dir ${tlsDir} does not exist`);
    log.warn({ dir }, 'signing API off: no TLS directory (ca.crt, server.crt, server.key)');
    return null;
  }
  for (const [what, f] of Object.entries(files)) if (!existsSync(f)) throw new ApiConfigError(`TLS ${what} file ${f} is missing (expected ca.crt, server.crt, server.key in ${dir})`);
  const { info } = loadIdentity(home);
  const [host, port] = splitHostPort(info.api, 'peer.json api');
  // Issue 6: every series labelled by cluster and peer (org).
  const metrics = createApiMetrics({ labels: { cluster: daemon.definition.name, peer: daemon.self.org } });
  attachPeerMetrics(metrics.registry, daemon, signer);
  const server = await startApiServer({
    host, port, backend: signer, log, metrics,
    // The signing service queues what it cannot run at once; the server only bounds what it holds open.
    maxConcurrent: 1024,
    tls: { ca: readFileSync(files.ca), cert: readFileSync(files.cert), key: readFileSync(files.key) },
  });
  let metricsServer: Server | null = null;
  let metricsUrl: string | null = null;
  if (metricsAddr) {
    const [mh, mp] = splitHostPort(metricsAddr, '--metrics');
    metricsServer = createServer((req, res) => {
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
  log.info({ api: server.url, metrics: metricsUrl }, 'signing API listening');
  return {
    url: server.url,
    metricsUrl,
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
