/**
 * `npm run bench` (part 3, issue 4): the op-signer API through the full stack — HTTPS with mutual
 * TLS, JSON-RPC, policy on every org, libp2p between five peer processes, 3-of-5 — as the batcher
 * sees it: `eth_signTransaction` of a real calldata batch, request to signed tx. Cold pool (every
 * request presigns), warm pool (online round only), and sustained signatures per second.
 * Options (env): API_BENCH_SIGS (40), API_BENCH_LOAD_SECONDS (20), API_BENCH_CONCURRENCY (8),
 * API_BENCH_PAUSE_MS (150: the pause between warm requests; refills of the pool overlap them).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { numberToHex, parseGwei, toHex } from 'viem';
import { startDevnet, type Devnet } from '../src/devnet/devnet.ts';
import { calldataFor, sampleChannel } from '../src/devnet/sample-batch.ts';
import { adminCall } from '../src/peer/admin-api.ts';
import { pct, sleep, sustained, untilSteady } from './load.ts';
import type { RpcClient } from '../src/api/client.ts';

const SIGS = Number(process.env.API_BENCH_SIGS ?? 40);
const LOAD_S = Number(process.env.API_BENCH_LOAD_SECONDS ?? 20);
const CONC = Number(process.env.API_BENCH_CONCURRENCY ?? 8);
const PAUSE = Number(process.env.API_BENCH_PAUSE_MS ?? 150);

const home = mkdtempSync(join(tmpdir(), 'potluck-api-bench-'));
let d: Devnet | undefined;
let nonce = 0;
const input = toHex(calldataFor(sampleChannel({ maxFrameData: 2000 }).frames));

async function sign(c: RpcClient): Promise<number> {
  const args = {
    from: d!.file.groupAddress, to: d!.file.batchInbox, gas: numberToHex(200_000), gasPrice: null, maxFeePerGas: numberToHex(parseGwei('20')),
    maxPriorityFeePerGas: numberToHex(parseGwei('1')), value: '0x0', nonce: numberToHex(nonce++), data: null, input, accessList: [], chainId: numberToHex(d!.file.chainId),
  };
  const t0 = performance.now();
  await c.call('eth_signTransaction', [args]);
  return performance.now() - t0;
}

async function poolUnused(): Promise<number> {
  let n = 0;
  for (const p of d!.file.peers) n += ((await adminCall(p.home, 'GET', '/v1/status')).body.keys as { pool: { unused: number } }[])[0]!.pool.unused;
  return n;
}

try {
  console.error('devnet (L1, 5 peers, keygen) …');
  d = await startDevnet({ home, say: (l) => console.error(l), peerArgs: ['--pool-target', '0'] });
  const clients = d.file.peers.map((_, i) => d!.client(i));
  for (const c of clients) await sign(c); // TLS sessions and JIT warm-up, not measured

  console.error('cold pool …');
  const cold: number[] = [];
  for (let i = 0; i < SIGS; i++) cold.push(await sign(clients[i % 5]!));

  console.error('warm pool …');
  await d.restartPeers(['--pool-target', '4']);
  for (const c of clients) await sign(c);
  await untilSteady(poolUnused);
  const warm: number[] = [];
  for (let i = 0; i < SIGS; i++) {
    warm.push(await sign(clients[i % 5]!));
    await sleep(PAUSE);
  }

  console.error('sustained load …');
  const load = await sustained(CONC, LOAD_S, (k) => sign(clients[k % 5]!));
  const { seconds: loadS, signatures: done, failed } = load;
  const failures = Object.entries(load.failures);

  const f = (x: number, dd = 1) => x.toFixed(dd);
  const result = {
    bench: 'potluck-api', node: process.version, path: 'eth_signTransaction over HTTPS+mTLS, policy at every org, 3-of-5 over libp2p, 5 processes, loopback',
    cold: { n: cold.length, p50: pct(cold, 50), p99: pct(cold, 99) },
    warm: { n: warm.length, p50: pct(warm, 50), p99: pct(warm, 99) },
    sustained: load,
  };
  console.log(`\nPotluck signing API (op-signer eth_signTransaction): ${result.path}, node ${process.version}\n`);
  console.log('| measure | value |');
  console.log('|---|---|');
  console.log(`| request → signed tx, cold pool (presign + online) p50 / p99, n=${cold.length} | ${f(result.cold.p50)} / ${f(result.cold.p99)} ms |`);
  console.log(`| request → signed tx, warm pool p50 / p99, n=${warm.length} | ${f(result.warm.p50)} / ${f(result.warm.p99)} ms |`);
  console.log(`| sustained, ${CONC} concurrent clients for ${f(loadS, 0)} s | ${f(result.sustained.perSecond, 2)} signed txs/s (${done} ok, ${failed} failed) |`);
  for (const [why, n] of failures) console.log(`failed ${n}×: ${why}`);
  console.log('\n' + JSON.stringify(result));
} finally {
  await d?.stop();
  rmSync(home, { recursive: true, force: true });
}
