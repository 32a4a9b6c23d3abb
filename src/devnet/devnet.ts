import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createWalletClient, getAddress, keccak256, numberToHex, parseGwei, toHex, type Address, type Hex } from 'viem';
import { RpcClient, viemTransport } from '../api/client.ts';
import { createLocalCa, issueCertificate, writeTlsFiles } from '../api/tls-certs.ts';
import { defaultDevnetPolicy, policyToJson } from '../policy/policy-file.ts';
import { adminCall } from '../peer/admin-api.ts';
import { verifyAudit, type AuditReport } from '../audit/verify.ts';
import { parseDefinition } from '../cluster/definition.ts';
import { fund, l1Client, startL1, type L1Node } from './l1-node.ts';
import { LocalCluster, freePort } from './local-cluster.ts';
import { calldataFor, sampleChannel } from './sample-batch.ts';

/**
 * `potluck devnet` (issue 4, the main job): a local L1, five org peers as child processes with a
 * local CA and client certificates, the 3-of-5 keygen, funding, one calldata batch signed through
 * the op-signer API by a real client (viem) and mined, a summary, and `<home>/devnet.json` so other
 * tools can drive the cluster. Every run starts from scratch, like its L1.
 */
export const ORGS = ['acme', 'bravo', 'coral', 'delta', 'echo'];
export const KEY = 'batcher';
export const CLIENT = 'batcher';
/** The L2 whose batches we post; the inbox is derived like op-deployer does (system-anchors §1.5). */
export const L2_CHAIN_ID = 901;

export interface DevnetFile {
  l1RpcUrl: string;
  chainId: number;
  l2ChainId: number;
  groupAddress: Address;
  batchInbox: Address;
  keyId: string;
  threshold: number;
  quorum: { distinctOrgs: number; otherOrgs: number };
  peers: { org: string; peerId: string; apiUrl: string; metricsUrl: string; home: string }[];
  tls: { ca: string; cert: string; key: string };
}

export interface DevnetOptions {
  home: string;
  say: (line: string) => void;
  /** Extra `potluck start` flags for every peer. */
  peerArgs?: string[];
  /** The peers' policy `nonceWindow` (default 64). Tests that sign far ahead of the chain raise it. */
  nonceWindow?: number;
}

export interface Devnet {
  file: DevnetFile;
  l1: L1Node;
  cluster: LocalCluster;
  /** The keygen ceremony's stderr (progress lines and JSON logs) per org, in ORGS order. */
  keygenLogs: string[];
  /** A client of one peer's API, with the batcher's client certificate. */
  client(peer?: number): RpcClient;
  /** Stop every peer and start them again with extra `potluck start` flags (e.g. --pool-target). */
  restartPeers(extraArgs: string[]): Promise<void>;
  stop(): Promise<void>;
}

/** op-deployer's `calculateBatchInboxAddr`: 0x00 ‖ keccak256(chainId as 32 bytes)[0:19]. */
export function batchInboxFor(l2ChainId: number): Address {
  return getAddress('0x00' + keccak256(numberToHex(l2ChainId, { size: 32 })).slice(2, 40));
}

export async function startDevnet(o: DevnetOptions): Promise<Devnet> {
  const home = resolve(o.home);
  const say = o.say;
  const peersRoot = join(home, 'peers');
  // Like its L1, a devnet lives for one run: a new chain reuses nonces from 0, which the peers'
  // anti-equivocation records of the last run would rightly refuse.
  rmSync(home, { recursive: true, force: true });
  mkdirSync(home, { recursive: true });

  say('starting the local L1 (Hardhat 2) …');
  const l1 = await startL1({});
  const stops: (() => Promise<void>)[] = [() => l1.stop()];
  const stopAll = async () => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
  };
  try {
    say(`L1 at ${l1.rpcUrl} (chainId ${l1.chainId})`);
    const batchInbox = batchInboxFor(L2_CHAIN_ID);
    say(`creating ${ORGS.length} org peers (identities, cluster definition signed by every org) …`);
    const cluster = await LocalCluster.create({ root: peersRoot, orgs: ORGS, threshold: 3, quorumOrgs: 3, quorumOther: 2, policy: false });
    const ca = await createLocalCa('Potluck devnet CA');
    const tlsDir = join(home, 'tls');
    mkdirSync(tlsDir, { recursive: true });
    writeTlsFiles(tlsDir, 'ca', ca);
    writeTlsFiles(tlsDir, CLIENT, await issueCertificate(ca, { commonName: CLIENT, dnsNames: [CLIENT], usage: 'client', days: 30 }));
    for (const p of cluster.peers) {
      const dir = join(p.home, 'tls');
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'ca.crt'), ca.certPem);
      writeTlsFiles(dir, 'server', await issueCertificate(ca, { commonName: p.org, dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], usage: 'server', days: 30 }));
      const policy = defaultDevnetPolicy({ chainId: l1.chainId, batchInbox, quorum: { distinctOrgs: 3, otherOrgs: 2 }, clients: [CLIENT], maxRequestsPerMinute: 6000, blockPayloadChainIds: [L2_CHAIN_ID], ...(o.nonceWindow !== undefined ? { nonceWindow: o.nonceWindow } : {}) });
      writeFileSync(join(p.home, 'policy.json'), JSON.stringify(policyToJson(policy), null, 2) + '\n');
    }
    say('running the 3-of-5 key generation (DKLs23) across the five peers …');
    const t0 = performance.now();
    const seen = new Set<string>();
    const results = await cluster.keygen(KEY, (org, line) => {
      const m = /round (\d+)\/(\d+)/.exec(line);
      if (org === ORGS[0] && m && !seen.has(m[1]!)) {
        seen.add(m[1]!);
        say(`  keygen round ${m[1]}/${m[2]}`);
      }
    });
    const failed = results.flatMap((r, i) => (r.code === 0 ? [] : [`${ORGS[i]}: ${r.stderr.split('\n').filter(Boolean).slice(-3).join(' | ')}`]));
    if (failed.length) throw new Error(`keygen failed at ${failed.length} of ${ORGS.length} orgs; rerun the devnet\n  ${failed.join('\n  ')}`);
    say(`  keygen done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    say('starting the peers …');
    const metricsPorts = new Map<string, number>();
    for (const p of cluster.peers) metricsPorts.set(p.org, await freePort());
    // Checkpoints every 10 s, so the witnesses' cosignatures show up within a short demo.
    const startPeers = (extra: string[]) => Promise.all(cluster.peers.map((p) => cluster.start(p, ['--metrics', `127.0.0.1:${metricsPorts.get(p.org)}`, '--checkpoint-interval', '10', '--l1-rpc', l1.rpcUrl, ...extra])));
    await startPeers(o.peerArgs ?? []);
    stops.push(() => cluster.stopAll());
    const starts = cluster.peers.map((p) => p.started!);
    const groupAddress = getAddress(starts[0]!.keys[0]!.address);

    const file: DevnetFile = {
      l1RpcUrl: l1.rpcUrl, chainId: l1.chainId, l2ChainId: L2_CHAIN_ID, groupAddress, batchInbox, keyId: KEY, threshold: 3, quorum: { distinctOrgs: 3, otherOrgs: 2 },
      peers: cluster.peers.map((p, i) => ({ org: p.org, peerId: p.peerId, apiUrl: starts[i]!.api!, metricsUrl: starts[i]!.metrics!, home: p.home })),
      tls: { ca: join(home, 'tls', 'ca.crt'), cert: join(home, 'tls', `${CLIENT}.crt`), key: join(home, 'tls', `${CLIENT}.key`) },
    };
    writeFileSync(join(home, 'devnet.json'), JSON.stringify(file, null, 2) + '\n');
    const client = (i = 0) =>
      new RpcClient({ url: file.peers[i]!.apiUrl, ca: readFileSync(file.tls.ca), cert: readFileSync(file.tls.cert), key: readFileSync(file.tls.key), timeoutMs: 30_000 });
    say(`group address ${groupAddress}; funding it on the L1`);
    await fund(l1.rpcUrl, groupAddress, 10n ** 20n);
    await waitReady(file, client);
    const restartPeers = async (extra: string[]) => {
      await cluster.stopAll();
      await startPeers(extra);
      await waitReady(file, client);
    };
    return { file, l1, cluster, keygenLogs: results.map((r) => r.stderr), client, restartPeers, stop: stopAll };
  } catch (e) {
    await stopAll();
    throw e;
  }
}

/** Until every peer's /readyz says it can form a signer set (its mesh is up), as a deployment's probe would. */
async function waitReady(file: DevnetFile, client: (i: number) => RpcClient, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (const [i, p] of file.peers.entries()) {
    const c = client(i);
    for (;;) {
      const r = await c.get('/readyz');
      if (r.status === 200) break;
      if (Date.now() > until) throw new Error(`${p.org} is not ready after ${timeoutMs / 1000} s: ${r.body}`);
      await new Promise((res) => setTimeout(res, 200));
    }
  }
}

export interface DemoResult {
  txHash: Hex;
  blockNumber: bigint;
  latencyMs: number;
  signers: string[];
  frames: number;
  bytes: number;
}

/** Step 7: the five peers' audit logs, verified offline as an auditor would (issue 5). */
export function auditDevnet(d: Devnet): AuditReport {
  const definition = parseDefinition(readFileSync(d.cluster.definition, 'utf8'), d.cluster.definition);
  const logs = d.file.peers.map((p) => ({ name: join(p.home, 'audit.log'), bytes: new Uint8Array(readFileSync(join(p.home, 'audit.log'))) }));
  return verifyAudit({ definition, logs });
}

/** Sign one real calldata batch through peer 0's API with viem, post it and wait for the receipt. */
export async function postSampleBatch(d: Devnet): Promise<DemoResult> {
  const { file } = d;
  // Calldata txs are capped by --max-l1-tx-size-bytes (120000 by default, §1.5): small frames.
  const channel = sampleChannel({ maxFrameData: 2000 });
  const frames = channel.frames;
  const data = toHex(calldataFor(frames));
  const pub = l1Client(file.l1RpcUrl);
  // op-signer serves no eth_chainId; the transport answers it from the devnet's chain id.
  const wallet = createWalletClient({ account: file.groupAddress, transport: viemTransport(d.client(0), { chainId: file.chainId }) });
  const nonce = await pub.getTransactionCount({ address: file.groupAddress, blockTag: 'pending' });
  const block = await pub.getBlock();
  const tip = parseGwei('1');
  const tx = {
    chain: null, account: file.groupAddress, type: 'eip1559' as const, chainId: file.chainId, nonce, to: file.batchInbox, value: 0n, data,
    // Estimated by the L1: Prague's calldata floor (EIP-7623) prices calldata above 16 gas a byte.
    gas: await pub.estimateGas({ account: file.groupAddress, to: file.batchInbox, data }), maxPriorityFeePerGas: tip, maxFeePerGas: 2n * (block.baseFeePerGas ?? 1n) + tip,
  };
  const t0 = performance.now();
  const raw = await wallet.signTransaction(tx);
  const latencyMs = performance.now() - t0;
  const txHash = await pub.sendRawTransaction({ serializedTransaction: raw });
  const receipt = await pub.waitForTransactionReceipt({ hash: txHash });
  if (receipt.status !== 'success') throw new Error(`batch tx ${txHash} reverted`);
  if (getAddress(receipt.from) !== file.groupAddress) throw new Error(`receipt from ${receipt.from} is not the group address ${file.groupAddress}`);
  const status = (await adminCall(file.peers[0]!.home, 'GET', '/v1/status')).body as { recentSignatures?: { signers: string[] }[] };
  const signers = status.recentSignatures?.at(-1)?.signers ?? [];
  return { txHash, blockNumber: receipt.blockNumber, latencyMs, signers, frames: frames.length, bytes: (data.length - 2) / 2 };
}
