/**
 * Prometheus metrics of the signing API, on a registry of their own (never prom-client's global
 * one, so several servers in one test process do not collide). The two `signer_*` counters keep
 * op-signer's names and labels (system-anchors §1.3 Metrics, `service/metrics.go`) so existing
 * dashboards work: `status` is "success" or "error", `error` is "" on success.
 * The peer layer registers its own metrics on `registry` (src/peer/peer-metrics.ts).
 * `labels` become the registry's default labels (issue 6: every series carries cluster and peer),
 * added after each metric's own labels, so op-signer's metric names keep theirs.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export { Registry };

export interface ApiMetrics {
  registry: Registry;
  /** op-signer `signer_signtransaction_total{client,status,error}`. */
  signTransaction: Counter<'client' | 'status' | 'error'>;
  /** op-signer `signer_signblockpayload_total{client,status,error}` (V1 and V2). */
  signBlockPayload: Counter<'client' | 'status' | 'error'>;
  /** Every JSON-RPC call and every request refused at the HTTP layer; see `server.ts` for the label values. */
  requests: Counter<'method' | 'code'>;
  requestDuration: Histogram<'method'>;
  /** Connections dropped at accept because the connection limit was reached. */
  connectionsDropped: Counter;
  /** The client-certificate CRL's nextUpdate (Unix seconds; 0: no CRL): past it every client of that CA is refused. */
  crlNextUpdate: Gauge;
}

/** Signing can take seconds (a threshold round; txmgr's 10 s network timeout, §1.4): buckets reach 30 s. */
export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export function createApiMetrics(opts: { defaultMetrics?: boolean; labels?: { cluster: string; peer: string } } = {}): ApiMetrics {
  const registry = new Registry();
  if (opts.labels) registry.setDefaultLabels({ cluster: opts.labels.cluster, peer: opts.labels.peer });
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'potluck_' });
  const registers = [registry];
  return {
    registry,
    signTransaction: new Counter({
      name: 'signer_signtransaction_total', help: 'eth_signTransaction calls by client, status and error (op-signer compatible)',
      labelNames: ['client', 'status', 'error'] as const, registers,
    }),
    signBlockPayload: new Counter({
      name: 'signer_signblockpayload_total', help: 'opsigner_signBlockPayload[V2] calls by client, status and error (op-signer compatible)',
      labelNames: ['client', 'status', 'error'] as const, registers,
    }),
    requests: new Counter({
      name: 'potluck_api_requests_total', help: 'Signing API calls by JSON-RPC method and outcome code ("ok", a JSON-RPC error code, or "http_<status>")',
      labelNames: ['method', 'code'] as const, registers,
    }),
    requestDuration: new Histogram({
      name: 'potluck_api_request_duration_seconds', help: 'Signing API call duration by JSON-RPC method',
      labelNames: ['method'] as const, buckets: DURATION_BUCKETS, registers,
    }),
    connectionsDropped: new Counter({
      name: 'potluck_api_connections_dropped_total', help: 'Signing API connections dropped at accept because the connection limit was reached', registers,
    }),
    crlNextUpdate: new Gauge({
      name: 'potluck_api_crl_next_update_seconds', help: 'nextUpdate of the client-certificate CRL as Unix seconds (0: no CRL); renew it before then', registers,
    }),
  };
}
