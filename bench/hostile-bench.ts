/**
 * `npm run bench` (part 4, issue 11): honest signing latency while a member floods. The consortium
 * of test/system/hostile-member.test.ts: acme, bravo and coral are `potluck start` processes with
 * TLS APIs and the L1's confirmed nonce; mallory (in this process, valid identity and share)
 * floods them with junk proposals, junk approval requests, bogus ceremony joins and 1.9 MB
 * envelopes, every frame five times. Measured: `eth_signTransaction` through acme's and coral's
 * APIs, request to signed tx, one at a time, without and with the flood; the honest peers' RSS.
 * Options (env): HOSTILE_BENCH_SIGS (20 per phase), HOSTILE_BENCH_FLOOD_SECONDS (60).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Address, Hex } from 'viem';
import { fund, l1Client, startL1, type L1Node } from '../src/devnet/l1-node.ts';
import { LocalCluster, type PeerProc } from '../src/devnet/local-cluster.ts';
import { KEY, Mallory, apiClient, batchTx, rssMb, writePolicies, writeTls } from '../test/system/hostile-harness.ts';
import { pct, sleep } from './load.ts';

const SIGS = Number(process.env.HOSTILE_BENCH_SIGS ?? 20);
const FLOOD_S = Number(process.env.HOSTILE_BENCH_FLOOD_SECONDS ?? 60);
const PASS = 'correct horse battery staple';
const root = mkdtempSync(join(tmpdir(), 'potluck-hostile-bench-'));
let l1: L1Node | undefined, c: LocalCluster | undefined, m: Mallory | undefined;

try {
  console.error('L1, 4 peers (one hostile), keygen …');
  l1 = await startL1({});
  c = await LocalCluster.create({ root, orgs: ['acme', 'bravo', 'coral', 'mallory'], threshold: 2, quorumOrgs: 2, quorumOther: 1, policy: false, passphrase: PASS });
  writePolicies(c, l1.chainId);
  const tls = await writeTls(c, root);
  const kg = await c.keygen(KEY);
  if (kg.some((r) => r.code !== 0)) throw new Error(`keygen failed: ${kg.map((r) => r.stderr.slice(-300)).join('\n')}`);
  const honest = c.peers.slice(0, 3) as PeerProc[];
  await Promise.all(honest.map((p) => c!.start(p, ['--l1-rpc', l1!.rpcUrl, '--pool-target', '2'])));
  m = await Mallory.start(c.peers[3]!.home, PASS, { scryptLogN: 14, l1RpcUrl: l1.rpcUrl });
  const group = m.key.address as Address;
  await fund(l1.rpcUrl, group, 10n ** 20n);
  const clients = [honest[0]!, honest[2]!].map((p) => apiClient(p, tls));
  for (const p of honest) for (;;) { if ((await apiClient(p, tls).get('/readyz')).status === 200) break; await sleep(200); }
  // Each signed batch is posted (not timed), so the L1's confirmed nonce follows and the peers'
  // nonce window (64) never refuses; a failed request is retried at the same nonce, same content.
  const pub = l1Client(l1.rpcUrl);
  let nonce = 0;
  const sign = async (): Promise<number> => {
    const t0 = performance.now();
    const raw = await clients[nonce % 2]!.call('eth_signTransaction', [batchTx(group, l1!.chainId, nonce, nonce + 1)]) as Hex;
    const ms = performance.now() - t0;
    nonce++;
    await pub.sendRawTransaction({ serializedTransaction: raw });
    return ms;
  };
  for (let i = 0; i < 4; i++) await sign(); // warm-up, not measured
  await sleep(3000); // pools refilled

  console.error('baseline …');
  const quiet: number[] = [];
  for (let i = 0; i < SIGS; i++) {
    quiet.push(await sign());
    await sleep(500);
  }

  console.error(`flood for ${FLOOD_S} s …`);
  const end = Date.now() + FLOOD_S * 1000;
  let maxRss = 0;
  const sampler = setInterval(() => { for (const p of honest) maxRss = Math.max(maxRss, rssMb(p.proc!.pid!)); }, 500);
  const flood = m.flood(honest.map((p) => p.org), end);
  const loud: number[] = [];
  const errors: string[] = [];
  while (Date.now() < end) {
    await sign().then((ms) => loud.push(ms), (e: Error) => errors.push(e.message.slice(0, 160)));
    await sleep(500);
  }
  const sent = await flood;
  clearInterval(sampler);

  const f = (x: number) => x.toFixed(1);
  const result = {
    bench: 'potluck-hostile', node: process.version, path: 'eth_signTransaction over HTTPS+mTLS at acme and coral, n = 4 (t = 2, f = 1, c = 3), one member flooding',
    quiet: { n: quiet.length, p50: pct(quiet, 50), p99: pct(quiet, 99) },
    flood: { seconds: FLOOD_S, n: loud.length, failed: errors.length, p50: loud.length ? pct(loud, 50) : null, p99: loud.length ? pct(loud, 99) : null, messagesSent: sent, maxHonestRssMb: Math.round(maxRss) },
  };
  console.log(`\nPotluck under a flooding member: ${result.path}, node ${process.version}\n`);
  console.log('| measure | value |');
  console.log('|---|---|');
  console.log(`| request → signed tx, no flood, p50 / p99, n=${quiet.length} | ${f(result.quiet.p50)} / ${f(result.quiet.p99)} ms |`);
  console.log(`| request → signed tx, during the flood, p50 / p99, n=${loud.length} (${errors.length} failed) | ${loud.length ? `${f(result.flood.p50!)} / ${f(result.flood.p99!)}` : '–'} ms |`);
  console.log(`| flood: messages sent by the member in ${FLOOD_S} s (each ×5) | ${sent} |`);
  console.log(`| max RSS of an honest peer during the flood | ${result.flood.maxHonestRssMb} MB |`);
  for (const e of [...new Set(errors)]) console.log(`failed: ${e}`);
  console.log('\n' + JSON.stringify(result));
} finally {
  await m?.stop();
  await c?.stopAll();
  await l1?.stop();
  rmSync(root, { recursive: true, force: true });
}
