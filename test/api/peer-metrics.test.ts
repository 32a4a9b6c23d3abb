import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { createApiMetrics } from '../../src/api/metrics.ts';
import { RPC_ERRORS, RpcError } from '../../src/api/backend.ts';
import { BanPairError, AbortError, type ProtocolError } from '../../src/protocol/errors.ts';
import type { RoundMachine } from '../../src/protocol/machine.ts';
import type { Member } from '../../src/cluster/members.ts';
import { SignError, type Daemon, type SignResult } from '../../src/peer/daemon.ts';
import { createPeerMetrics, type PeerSnapshot } from '../../src/peer/peer-metrics.ts';
import { RequestPolicy } from '../../src/peer/request-policy.ts';
import { SessionHost } from '../../src/peer/session-host.ts';
import { encodeSigningRequest } from '../../src/peer/signing-request.ts';
import { SigningService } from '../../src/peer/signing-service.ts';
import { PeerStore } from '../../src/store/database.ts';

const L = 'cluster="seq1",peer="acme"';
const quiet = pino({ level: 'silent' });

function setup(snapshot: PeerSnapshot) {
  const api = createApiMetrics({ defaultMetrics: false, labels: { cluster: 'seq1', peer: 'acme' } });
  let reads = 0;
  const source = () => {
    reads++;
    return snapshot;
  };
  const sink = createPeerMetrics(api.registry, source);
  const lines = async () => (await api.registry.metrics()).split('\n').filter((l) => l && !l.startsWith('#'));
  return { api, sink, lines, reads: () => reads };
}

const SNAPSHOT: PeerSnapshot = {
  ready: true,
  peers: [
    { org: 'bravo', connected: true, software: '0.1.0', clockOffsetMs: 250 },
    { org: 'charlie', connected: false, software: '0.0.9', clockOffsetMs: -1500 },
    { org: 'delta', connected: true }, // an older peer: its hello had no version or time
    { org: 'echo', connected: false }, // never seen
  ],
  keys: [{ keyId: 'batcher', pool: 7, burnedPairs: 1 }],
  sessions: { active: 2, completed: 40, aborted: { SessionTimeoutError: 3, 'BanPairError:softspoken-check': 1 } },
};

describe('peer metrics', () => {
  test('state read at scrape time: exact exposition lines, cluster and peer on every series', async () => {
    const { lines } = setup(SNAPSHOT);
    assert.deepEqual(await lines(), [
      // the API's own unlabelled series (server.ts): no connection dropped, no CRL
      `potluck_api_connections_dropped_total{${L}} 0`,
      `potluck_api_crl_next_update_seconds{${L}} 0`,
      `potluck_ready{${L}} 1`,
      `potluck_peers_connected{${L}} 2`,
      `potluck_peer_connected{remote="bravo",${L}} 1`,
      `potluck_peer_connected{remote="charlie",${L}} 0`,
      `potluck_peer_connected{remote="delta",${L}} 1`,
      `potluck_peer_connected{remote="echo",${L}} 0`,
      `potluck_peer_info{remote="bravo",version="0.1.0",${L}} 1`,
      `potluck_peer_info{remote="charlie",version="0.0.9",${L}} 1`,
      `potluck_peer_info{remote="delta",version="unknown",${L}} 1`,
      `potluck_peer_clock_offset_seconds{remote="bravo",${L}} 0.25`,
      `potluck_peer_clock_offset_seconds{remote="charlie",${L}} -1.5`,
      `potluck_presignature_pool{key="batcher",${L}} 7`,
      `potluck_burned_pairs{key="batcher",${L}} 1`,
      `potluck_sessions_active{${L}} 2`,
      `potluck_sessions_completed_total{${L}} 40`,
      `potluck_sessions_aborted_total{reason="SessionTimeoutError",${L}} 3`,
      `potluck_sessions_aborted_total{reason="BanPairError:softspoken-check",${L}} 1`,
      // Zero series for every member from the start, so increase() sees the first burn.
      `potluck_pair_burned_total{remote="bravo",${L}} 0`,
      `potluck_pair_burned_total{remote="charlie",${L}} 0`,
      `potluck_pair_burned_total{remote="delta",${L}} 0`,
      `potluck_pair_burned_total{remote="echo",${L}} 0`,
    ]);
  });

  test('one snapshot per scrape; series that went away are gone on the next scrape', async () => {
    const snap: PeerSnapshot = structuredClone(SNAPSHOT);
    const { lines, reads } = setup(snap);
    assert.equal(reads(), 1, 'one read at creation (the zero burn series)');
    await lines();
    assert.equal(reads(), 2);
    snap.peers[0] = { org: 'bravo', connected: false, software: '0.2.0' };
    snap.keys = [];
    snap.sessions = { active: 0, completed: 41, aborted: { SessionTimeoutError: 4 } };
    const after = await lines();
    assert.equal(reads(), 3);
    assert.deepEqual(after.filter((l) => /^potluck_(peer_info|peer_clock|presignature|burned_pairs|sessions)/.test(l)), [
      `potluck_peer_info{remote="bravo",version="0.2.0",${L}} 1`,
      `potluck_peer_info{remote="charlie",version="0.0.9",${L}} 1`,
      `potluck_peer_info{remote="delta",version="unknown",${L}} 1`,
      `potluck_peer_clock_offset_seconds{remote="charlie",${L}} -1.5`,
      `potluck_sessions_active{${L}} 0`,
      `potluck_sessions_completed_total{${L}} 41`,
      `potluck_sessions_aborted_total{reason="SessionTimeoutError",${L}} 4`,
    ]);
  });

  test('events: blame, burned pairs, policy refusals, sign latency', async () => {
    const { sink, lines } = setup({ ...SNAPSHOT, peers: [{ org: 'charlie', connected: true }] });
    sink.blame('charlie', 'softspoken-check');
    sink.blame('charlie', 'softspoken-check');
    sink.blame('charlie', 'decode');
    sink.pairBurned('charlie');
    sink.policyRefusal('to', 'requester');
    sink.policyRefusal('to', 'requester');
    sink.policyRefusal('no-policy', 'cosigner');
    sink.signed('eth_signTransaction', 'signed', 0.04);
    sink.signed('eth_signTransaction', 'signed', 0.2);
    sink.signed('opsigner_signBlockPayloadV2', 'refused', 0.001);
    const out = await lines();
    const events = out.filter((l) => /^potluck_(blame|pair_burned|policy_refusals)/.test(l));
    assert.deepEqual(events, [
      `potluck_blame_total{culprit="charlie",check="softspoken-check",${L}} 2`,
      `potluck_blame_total{culprit="charlie",check="decode",${L}} 1`,
      `potluck_pair_burned_total{remote="charlie",${L}} 1`,
      `potluck_policy_refusals_total{rule="to",role="requester",${L}} 2`,
      `potluck_policy_refusals_total{rule="no-policy",role="cosigner",${L}} 1`,
    ]);
    // prom-client puts the default labels before a histogram's own (after `le`).
    const tx = out.filter((l) => l.startsWith('potluck_sign_duration_seconds') && l.includes('method="eth_signTransaction"'));
    assert.deepEqual(tx, [
      `potluck_sign_duration_seconds_bucket{le="0.005",${L},method="eth_signTransaction",outcome="signed"} 0`,
      `potluck_sign_duration_seconds_bucket{le="0.01",${L},method="eth_signTransaction",outcome="signed"} 0`,
      `potluck_sign_duration_seconds_bucket{le="0.025",${L},method="eth_signTransaction",outcome="signed"} 0`,
      `potluck_sign_duration_seconds_bucket{le="0.05",${L},method="eth_signTransaction",outcome="signed"} 1`,
      `potluck_sign_duration_seconds_bucket{le="0.1",${L},method="eth_signTransaction",outcome="signed"} 1`,
      `potluck_sign_duration_seconds_bucket{le="0.25",${L},method="eth_signTransaction",outcome="signed"} 2`,
      `potluck_sign_duration_seconds_bucket{le="0.5",${L},method="eth_signTransaction",outcome="signed"} 2`,
      `potluck_sign_duration_seconds_bucket{le="1",${L},method="eth_signTransaction",outcome="signed"} 2`,
      `potluck_sign_duration_seconds_bucket{le="2.5",${L},method="eth_signTransaction",outcome="signed"} 2`,
      `potluck_sign_duration_seconds_bucket{le="5",${L},method="eth_signTransaction",outcome="signed"} 2`,
      `potluck_sign_duration_seconds_bucket{le="10",${L},method="eth_signTransaction",outcome="signed"} 2`,
      `potluck_sign_duration_seconds_bucket{le="30",${L},method="eth_signTransaction",outcome="signed"} 2`,
      `potluck_sign_duration_seconds_bucket{le="+Inf",${L},method="eth_signTransaction",outcome="signed"} 2`,
      `potluck_sign_duration_seconds_sum{${L},method="eth_signTransaction",outcome="signed"} 0.24000000000000002`,
      `potluck_sign_duration_seconds_count{${L},method="eth_signTransaction",outcome="signed"} 2`,
    ]);
    assert.ok(out.includes(`potluck_sign_duration_seconds_count{${L},method="opsigner_signBlockPayloadV2",outcome="refused"} 1`));
  });

  test("op-signer's metrics keep their own labels; the default labels come after them", async () => {
    const { api, lines } = setup(SNAPSHOT);
    api.signTransaction.inc({ client: 'batcher', status: 'success', error: '' });
    api.requests.inc({ method: 'eth_signTransaction', code: 'ok' });
    const out = await lines();
    assert.ok(out.includes(`signer_signtransaction_total{client="batcher",status="success",error="",${L}} 1`));
    assert.ok(out.includes(`potluck_api_requests_total{method="eth_signTransaction",code="ok",${L}} 1`));
  });

  test('no label outside the known, low-cardinality set', async () => {
    const { sink, lines } = setup(SNAPSHOT);
    sink.blame('bravo', 'echo');
    sink.policyRefusal('equivocation', 'cosigner');
    sink.signed('admin_sign', 'unavailable', 1);
    const allowed = new Set(['cluster', 'peer', 'remote', 'version', 'key', 'reason', 'culprit', 'check', 'rule', 'role', 'method', 'outcome', 'le']);
    for (const l of await lines()) for (const [, name] of l.matchAll(/[{,]([a-z_]+)="/g)) assert.ok(allowed.has(name!), `label ${name} in ${l}`);
  });
});

describe('counted at the source', () => {
  const member = (index: number, org: string): Member => ({ index, org, peerId: `peer-${org}`, publicKey: new Uint8Array(32).fill(index), addresses: [] });
  const members = [member(1, 'acme'), member(2, 'bravo'), member(3, 'charlie')];

  /** A machine that fails at start with `error`, or never finishes. */
  const machine = (error?: ProtocolError) => ({
    start: () => ({ out: [], ...(error ? { error } : {}) }),
    receive: () => ({ out: [] }),
    progress: () => ({ round: 1, rounds: 1, waitingFor: [] }),
    abort: () => undefined,
  }) as unknown as RoundMachine<unknown>;

  test("session host: blame names the culprit of the session's own machine, not the sessions aborted after BAN_PAIR", async () => {
    const blamed: string[] = [];
    const host: SessionHost = new SessionHost({
      self: members[0]!, secretKey: new Uint8Array(32), members, clusterHash: new Uint8Array(32), log: quiet, onControl: () => undefined,
      onBlame: (m, e) => blamed.push(`${m.org}:${e.check}`),
      onBan: (m, e) => host.abortWith(m.index, e),
    });
    const spec = (id: number, parties: [number, number][], m: RoundMachine<unknown>) =>
      ({ id: new Uint8Array(32).fill(id), protocol: 'test/v1', what: `test ${id}`, machine: m, parties: new Map(parties), deadline: Date.now() + 60_000, rng: (n: number) => new Uint8Array(n) });
    // Session 1 numbers charlie as party 1: read there, the ban's "party 2" would blame acme itself.
    const waiting = host.run(spec(1, [[1, 3], [2, 1]], machine()));
    const banned = host.run(spec(2, [[1, 1], [2, 3]], machine(new BanPairError('softspoken-check', 'bad', 2))));
    await assert.rejects(banned, BanPairError);
    await assert.rejects(waiting, BanPairError);
    await assert.rejects(host.run(spec(3, [[1, 1], [2, 2]], machine(new AbortError('decode', 'garbled', 2)))), AbortError);
    await assert.rejects(host.run(spec(4, [[1, 1], [2, 2]], machine(new AbortError('internal', 'nobody to blame')))), AbortError);
    assert.deepEqual(blamed, ['charlie:softspoken-check', 'bravo:decode']);
    assert.deepEqual(Object.fromEntries(host.stats.aborted), { 'BanPairError:softspoken-check': 2, 'AbortError:decode': 1, 'AbortError:internal': 1 });
  });

  test('request policy: the first refusing rule, by role', () => {
    const refusals: string[] = [];
    const sink = { policyRefusal: (rule: string, role: string) => refusals.push(`${rule}/${role}`) };
    const digest = new Uint8Array(32).fill(7);
    const request = { client: 'admin', body: { case: 'rawDigest' as const, digest } };
    const keyAddresses = ['0x00000000000000000000000000000000000000aa'];

    const bare = mkdtempSync(join(tmpdir(), 'potluck-metrics-'));
    const none = RequestPolicy.load(bare, new PeerStore(join(bare, 'potluck.db')).db, quiet);
    none.metrics = sink;
    assert.equal(none.evaluate({ request, role: 'requester', requesterOrg: 'acme', keyAddresses }).refusal?.rule, 'no-policy');
    assert.equal(none.evaluate({ request, role: 'approver', requesterOrg: 'bravo', session: new Uint8Array(32), keyAddresses }).refusal?.rule, 'no-policy');

    const home = mkdtempSync(join(tmpdir(), 'potluck-metrics-'));
    writeFileSync(join(home, 'policy.json'), JSON.stringify({
      version: 1,
      transactions: { chainIds: [900], batchInbox: '0xff00000000000000000000000000000000000901', caps: { gas: '30000000', maxFeePerGas: '500000000000', maxPriorityFeePerGas: '50000000000', maxFeePerBlobGas: '100000000000', maxBlobs: 6 } },
      quorum: { distinctOrgs: 2, otherOrgs: 1 },
      clients: [{ name: 'batcher', maxRequestsPerMinute: 600 }],
    }));
    const strict = RequestPolicy.load(home, new PeerStore(join(home, 'potluck.db')).db, quiet);
    strict.metrics = sink;
    assert.equal(strict.evaluate({ request, role: 'requester', requesterOrg: 'acme', keyAddresses }).refusal?.rule, 'raw-digest');
    assert.equal(strict.evaluate({ request: { client: 'batcher', body: { case: 'transaction', argsJson: '{', blobs: [] } }, role: 'requester', requesterOrg: 'acme', keyAddresses }).refusal?.rule, 'args');
    assert.deepEqual(refusals, ['no-policy/requester', 'no-policy/approver', 'raw-digest/requester', 'args/requester']);
  });

  test('signing service: one latency observation per call, with its method and outcome', async () => {
    const seen: string[] = [];
    const refuse = { verdict: { approve: false, reasons: [{ rule: 'to', ok: false, detail: 'no' }] }, refusal: { rule: 'to', detail: 'no', code: RPC_ERRORS.unauthorizedTransaction } };
    const approve = { verdict: { approve: true, reasons: [] }, digest: new Uint8Array(32) };
    let evaluation: object = refuse;
    let sign: () => Promise<SignResult> = async () => ({ r: '0x1', s: '0x2', yParity: 0 }) as SignResult;
    const daemon = {
      self: { org: 'acme' },
      policy: { evaluate: () => evaluation, isClient: () => true },
      audit: { verdict: () => undefined },
      keyAddresses: () => ['0x00000000000000000000000000000000000000aa'],
      threshold: () => 2,
      keyIdFor: () => 'batcher',
      sign: () => sign(),
    } as unknown as Daemon;
    const service = new SigningService(daemon, { version: 'test', log: quiet });
    service.metrics = { signed: (method, outcome, seconds) => { assert.ok(seconds >= 0 && seconds < 5); seen.push(`${method}/${outcome}`); } };
    const ctx = { client: 'batcher' };
    await assert.rejects(service.signTransaction({ from: '0x00000000000000000000000000000000000000aa' }, ctx), (e: unknown) => e instanceof RpcError && e.code === RPC_ERRORS.unauthorizedTransaction);
    await assert.rejects(service.signBlockPayload({}, 2, ctx), RpcError);
    await assert.rejects(service.signDigest(undefined, new Uint8Array(32)), SignError);
    evaluation = approve;
    assert.equal((await service.signDigest(undefined, new Uint8Array(32))).r, '0x1');
    sign = async () => { throw new SignError('no-quorum', 'nobody online'); };
    await assert.rejects(service.signBlockPayload({}, 1, ctx), (e: unknown) => e instanceof RpcError && e.code === RPC_ERRORS.unavailable);
    sign = async () => { throw new SignError('failed', 'declined', [{ org: 'bravo', reason: 'policy refused (to): no', code: 'policy' }]); };
    await assert.rejects(service.signDigest(undefined, new Uint8Array(32)), SignError);
    sign = async () => { throw new TypeError('bug'); };
    await assert.rejects(service.signDigest(undefined, new Uint8Array(32)), TypeError);
    assert.deepEqual(seen, [
      'eth_signTransaction/refused',
      'opsigner_signBlockPayloadV2/refused',
      'admin_sign/refused',
      'admin_sign/signed',
      'opsigner_signBlockPayload/unavailable',
      'admin_sign/refused',
      'admin_sign/error',
    ]);
  });
});
