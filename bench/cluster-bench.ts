/**
 * `npm run bench` (part 2): a 3-of-5 cluster of real peer processes over libp2p on loopback,
 * started through the CLI. Measures keygen wall time, request-to-signature latency (p50, p99)
 * with a cold pool (presign + online per request) and a warm pool (online only), sustained
 * signatures per second under concurrent load, and the libp2p round trip for comparison.
 * Latency is what a client of the admin socket sees. Options (env): CLUSTER_BENCH_SIGS (30),
 * CLUSTER_BENCH_LOAD_SECONDS (20), CLUSTER_BENCH_CONCURRENCY (8).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { privateKeyFromProtobuf, generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { lpStream } from '@libp2p/utils';
import { LocalCluster } from '../src/devnet/local-cluster.ts';
import { adminCall } from '../src/peer/admin-api.ts';
import { pct, sleep, sustained, untilSteady } from './load.ts';
import { systemRng } from '../src/crypto/random.ts';
import { PeerNode } from '../src/net/peer-node.ts';

const SIGS = Number(process.env.CLUSTER_BENCH_SIGS ?? 30);
const LOAD_S = Number(process.env.CLUSTER_BENCH_LOAD_SECONDS ?? 20);
const CONC = Number(process.env.CLUSTER_BENCH_CONCURRENCY ?? 8);
const PAUSE = Number(process.env.CLUSTER_BENCH_PAUSE_MS ?? 150);
const ORGS = ['acme', 'bravo', 'cobalt', 'dune', 'echo'];
const digest = () => '0x' + Buffer.from(systemRng(32)).toString('hex');

const root = mkdtempSync(join(tmpdir(), 'potluck-bench-'));
const c = await LocalCluster.create({ root, orgs: ORGS, threshold: 3, quorumOrgs: 3, quorumOther: 2 });
const home = (org: string) => c.peers.find((p) => p.org === org)!.home;

async function sign(org: string): Promise<{ ms: number; inner: number; presignature: string }> {
  const t0 = performance.now();
  const r = await adminCall(home(org), 'POST', '/v1/sign', { digest: digest() });
  const ms = performance.now() - t0;
  if (r.status !== 200) throw new Error(`sign at ${org}: ${JSON.stringify(r.body)}`);
  return { ms, inner: r.body.ms as number, presignature: r.body.presignature as string };
}

async function poolUnused(): Promise<number> {
  let n = 0;
  for (const o of ORGS) n += ((await adminCall(home(o), 'GET', '/v1/status')).body.keys as { pool: { unused: number } }[])[0]!.pool.unused;
  return n;
}

try {
  console.error('keygen 3-of-5 …');
  const k0 = performance.now();
  const kg = await c.keygen('bench');
  const keygenMs = performance.now() - k0;
  if (kg.some((r) => r.code !== 0)) throw new Error(`keygen failed: ${kg.map((r) => r.stderr.slice(-300)).join('\n')}`);

  // libp2p round trip between two members' identities (a 64-byte echo over one Yamux stream).
  const keyA = privateKeyFromProtobuf(readFileSync(join(home('acme'), 'identity.key')));
  const outsiderKey = await generateKeyPair('Ed25519');
  const allowed = new Set([peerIdFromPrivateKey(keyA).toString(), peerIdFromPrivateKey(outsiderKey).toString()]);
  const echoNode = await PeerNode.start({ privateKey: keyA, listen: ['/ip4/127.0.0.1/tcp/0'], allowed, clusterHash: new Uint8Array(32) });
  await echoNode.node.handle('/bench/echo/1', async (stream) => {
    const lp = lpStream(stream);
    for (;;) await lp.write((await lp.read()).subarray()).catch(() => undefined);
  });
  const client = await PeerNode.start({ privateKey: outsiderKey, listen: ['/ip4/127.0.0.1/tcp/0'], allowed, clusterHash: new Uint8Array(32) });
  await client.connect(echoNode.addresses[0]!);
  const lp = lpStream(await client.node.dialProtocol(echoNode.node.peerId, '/bench/echo/1'));
  const rtts: number[] = [];
  for (let i = 0; i < 220; i++) {
    const t0 = performance.now();
    await lp.write(new Uint8Array(64));
    await lp.read();
    if (i >= 20) rtts.push(performance.now() - t0);
  }
  await client.stop();
  await echoNode.stop();

  // Cold: no pool, every request presigns first.
  console.error('cold pool …');
  await c.startAll(['--pool-target', '0']);
  await sleep(2000);
  const cold: number[] = [];
  for (let i = 0; i < SIGS; i++) cold.push((await sign(ORGS[i % 5]!)).ms);
  await c.stopAll();

  // Warm: pool of 4 per set and owner; wait until it is full, then sign with pauses for refill.
  console.error('warm pool …');
  await c.startAll(['--pool-target', '4']);
  await untilSteady(poolUnused);
  const warm: number[] = [], warmInner: number[] = [];
  let fromPool = 0;
  for (let i = 0; i < SIGS; i++) {
    const r = await sign(ORGS[i % 5]!);
    warm.push(r.ms);
    warmInner.push(r.inner);
    if (r.presignature === 'pool') fromPool++;
    await sleep(PAUSE);
  }

  // Sustained: CONC clients in a loop for LOAD_S seconds, spread over the five peers.
  console.error('sustained load …');
  const load = await sustained(CONC, LOAD_S, (k) => sign(ORGS[k % 5]!));
  const { seconds: loadS, signatures: done, failed } = load;
  const failures = Object.entries(load.failures);
  await c.stopAll();

  const f = (x: number, d = 1) => x.toFixed(d);
  const result = {
    bench: 'potluck-cluster', node: process.version, cluster: '3-of-5, 5 processes, loopback', keygenMs,
    libp2pRttMs: { p50: pct(rtts, 50), p99: pct(rtts, 99) },
    cold: { n: cold.length, p50: pct(cold, 50), p99: pct(cold, 99) },
    warm: { n: warm.length, fromPool, p50: pct(warm, 50), p99: pct(warm, 99), daemonP50: pct(warmInner, 50) },
    sustained: load,
  };
  console.log(`\nPotluck cluster over libp2p: ${result.cluster}, node ${process.version}\n`);
  console.log('| measure | value |');
  console.log('|---|---|');
  console.log(`| keygen 3-of-5 wall (5 processes, 2 cores) | ${f(keygenMs / 1000, 1)} s |`);
  console.log(`| libp2p round trip (64 B, one Yamux stream) p50 / p99 | ${f(result.libp2pRttMs.p50, 2)} / ${f(result.libp2pRttMs.p99, 2)} ms |`);
  console.log(`| request → signature, cold pool (presign + online) p50 / p99 | ${f(result.cold.p50)} / ${f(result.cold.p99)} ms |`);
  console.log(`| request → signature, warm pool p50 / p99 (${fromPool}/${warm.length} from the pool) | ${f(result.warm.p50)} / ${f(result.warm.p99)} ms |`);
  console.log(`| … of which inside the requester's daemon, p50 | ${f(result.warm.daemonP50)} ms |`);
  console.log(`| sustained, ${CONC} concurrent clients for ${f(loadS, 0)} s | ${f(result.sustained.perSecond, 2)} sigs/s (${done} ok, ${failed} failed) |`);
  for (const [why, n] of failures) console.log(`failed ${n}×: ${why}`);
  console.log('\n' + JSON.stringify(result));
} finally {
  await c.stopAll();
  rmSync(root, { recursive: true, force: true });
}
