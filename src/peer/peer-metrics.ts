/**
 * The peer's Prometheus metrics (issue 6 "Observability"), on the signing API's registry
 * (`api/metrics.ts`), whose default labels add `cluster` and `peer` to every series.
 *
 * Two kinds: events counted where they happen, through the small sink interfaces below (the
 * daemon, the session host via the daemon, the request policy and the signing service each hold
 * an optional one), and state read at scrape time from one snapshot of `Daemon.status()`.
 * Labels carry names and rule ids only: no secret, no digest, tx hash or session id.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { DURATION_BUCKETS } from '../api/metrics.ts';
import type { Daemon } from './daemon.ts';
import type { SigningService } from './signing-service.ts';

/** JSON-RPC method names as in `potluck_api_requests_total`; `admin_sign` is the admin socket's raw digest (`potluck sign`). */
export type SignMethod = 'eth_signTransaction' | 'opsigner_signBlockPayload' | 'opsigner_signBlockPayloadV2' | 'admin_sign';
/** signed; refused by a policy rule (this org's or co-signers'); unavailable (no quorum, attempts failed, busy); error (anything else). */
export type SignOutcome = 'signed' | 'refused' | 'unavailable' | 'error';

export interface DaemonMetrics {
  /** A session's own machine aborted naming `culprit` (an org) for spec §4.3 `check`. */
  blame(culprit: string, check: string): void;
  /** BAN_PAIR with `remote` (an org): its pair is burned. */
  pairBurned(remote: string): void;
}
export interface PolicyMetrics {
  /** A verdict refused; `rule` is its first refusing rule, the one the requester is told. */
  policyRefusal(rule: string, role: 'requester' | 'approver' | 'cosigner'): void;
}
export interface SignMetrics {
  signed(method: SignMethod, outcome: SignOutcome, seconds: number): void;
}
export type PeerMetricsSink = DaemonMetrics & PolicyMetrics & SignMetrics;

/** What the gauges read at scrape time. */
export interface PeerSnapshot {
  ready: boolean;
  peers: { org: string; connected: boolean; software?: string; clockOffsetMs?: number }[];
  keys: { keyId: string; pool: number; burnedPairs: number }[];
  sessions: { active: number; completed: number; aborted: Readonly<Record<string, number>> };
}

export function createPeerMetrics(registry: Registry, source: () => PeerSnapshot): PeerMetricsSink {
  // One snapshot per scrape: prom-client runs every collect() synchronously in one loop, so a
  // snapshot dropped at the next microtask is shared by all of them (status() reads SQLite).
  let memo: PeerSnapshot | undefined;
  const snap = (): PeerSnapshot => {
    if (!memo) {
      memo = source();
      queueMicrotask(() => { memo = undefined; });
    }
    return memo;
  };
  const registers = [registry];

  new Gauge({ name: 'potluck_ready', help: '1 if a signer set can be formed with the peers online (as /readyz)', registers, collect() { this.set(snap().ready ? 1 : 0); } });
  new Gauge({ name: 'potluck_peers_connected', help: 'Cluster members this peer is connected to', registers, collect() { this.set(snap().peers.filter((p) => p.connected).length); } });
  new Gauge({
    name: 'potluck_peer_connected', help: '1 while the hello with this member passed on a live connection, else 0', labelNames: ['remote'] as const, registers,
    collect() { this.reset(); for (const p of snap().peers) this.set({ remote: p.org }, p.connected ? 1 : 0); },
  });
  new Gauge({
    name: 'potluck_peer_info', help: 'Software version from the member\'s last hello ("unknown" if it sent none)', labelNames: ['remote', 'version'] as const, registers,
    collect() { this.reset(); for (const p of snap().peers) if (p.software !== undefined || p.connected) this.set({ remote: p.org, version: p.software ?? 'unknown' }, 1); },
  });
  new Gauge({
    name: 'potluck_peer_clock_offset_seconds', help: 'The member\'s wall clock minus ours at its last hello, corrected by half the round trip', labelNames: ['remote'] as const, registers,
    collect() { this.reset(); for (const p of snap().peers) if (p.clockOffsetMs !== undefined) this.set({ remote: p.org }, p.clockOffsetMs / 1000); },
  });
  new Gauge({
    name: 'potluck_presignature_pool', help: 'Unused presignatures in the pool, per key', labelNames: ['key'] as const, registers,
    collect() { this.reset(); for (const k of snap().keys) this.set({ key: k.keyId }, k.pool); },
  });
  new Gauge({
    name: 'potluck_burned_pairs', help: 'Pairs burned until their OT setup is redone, per key', labelNames: ['key'] as const, registers,
    collect() { this.reset(); for (const k of snap().keys) this.set({ key: k.keyId }, k.burnedPairs); },
  });
  new Gauge({ name: 'potluck_sessions_active', help: 'Protocol sessions running', registers, collect() { this.set(snap().sessions.active); } });
  // The session host counts these already (stats); mirrored at scrape time, monotonic for the process.
  new Counter({ name: 'potluck_sessions_completed_total', help: 'Protocol sessions that produced their output', registers, collect() { this.reset(); this.inc(snap().sessions.completed); } });
  new Counter({
    name: 'potluck_sessions_aborted_total', help: 'Protocol sessions that ended without output, by reason (error name, and the spec §4.3 check for protocol errors)', labelNames: ['reason'] as const, registers,
    collect() { this.reset(); for (const [reason, n] of Object.entries(snap().sessions.aborted)) this.inc({ reason }, n); },
  });

  const blame = new Counter({ name: 'potluck_blame_total', help: 'Sessions aborted by their own protocol machine naming a culprit, by culprit org and spec §4.3 check', labelNames: ['culprit', 'check'] as const, registers });
  const burned = new Counter({ name: 'potluck_pair_burned_total', help: 'BAN_PAIR events: the pair with this member burned', labelNames: ['remote'] as const, registers });
  // Zero series for every member, so increase() sees the first burn.
  for (const p of source().peers) burned.inc({ remote: p.org }, 0);
  const refusals = new Counter({ name: 'potluck_policy_refusals_total', help: 'Policy verdicts that refused, by first refusing rule and this org\'s role', labelNames: ['rule', 'role'] as const, registers });
  const latency = new Histogram({
    name: 'potluck_sign_duration_seconds', help: 'Signing requests from arrival to signature (or refusal), by method and outcome', labelNames: ['method', 'outcome'] as const,
    buckets: DURATION_BUCKETS, registers,
  });

  return {
    blame: (culprit, check) => blame.inc({ culprit, check }),
    pairBurned: (remote) => burned.inc({ remote }),
    policyRefusal: (rule, role) => refusals.inc({ rule, role }),
    signed: (method, outcome, seconds) => latency.observe({ method, outcome }, seconds),
  };
}

/** The snapshot of a running daemon, from its `status()` (the same view `potluck status` prints). */
export function daemonSnapshot(daemon: Daemon): () => PeerSnapshot {
  type Status = {
    ready: { ready: boolean };
    peers: { org: string; connected: boolean; software?: string; clockOffsetMs?: number }[];
    keys: { keyId: string; pool: { unused: number }; burnedPairs: string[] }[];
    sessions: { active: number; completed: number; aborted: Record<string, number> };
  };
  return () => {
    const s = daemon.status() as unknown as Status;
    return {
      ready: s.ready.ready,
      peers: s.peers.map((p) => ({ org: p.org, connected: p.connected, ...(p.software !== undefined ? { software: p.software } : {}), ...(p.clockOffsetMs !== undefined ? { clockOffsetMs: p.clockOffsetMs } : {}) })),
      keys: s.keys.map((k) => ({ keyId: k.keyId, pool: k.pool.unused, burnedPairs: k.burnedPairs.length })),
      sessions: { active: s.sessions.active, completed: s.sessions.completed, aborted: s.sessions.aborted },
    };
  };
}

/** Registers the peer metrics and hands the sink to the daemon, its policy and the signing service. */
export function attachPeerMetrics(registry: Registry, daemon: Daemon, signer: SigningService): PeerMetricsSink {
  const sink = createPeerMetrics(registry, daemonSnapshot(daemon));
  daemon.metrics = sink;
  daemon.policy.metrics = sink;
  signer.metrics = sink;
  return sink;
}
