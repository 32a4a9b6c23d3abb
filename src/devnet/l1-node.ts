/**
 * The devnet's local L1: Hardhat 2's node (EDR) as a child process on loopback, chainId 31337,
 * with a hardfork that takes EIP-4844 blob txs (Hardhat 3 needs Node 22). Hardhat refuses to run from a
 * "non-local installation", so it runs with cwd = the repo root.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createPublicClient, createTestClient, http, type Address, type HttpTransport, type PublicClient } from 'viem';
import { hardhat } from 'viem/chains';
import { nodeFetch } from '../api/http-retry.ts';
import { freePort } from './local-cluster.ts';

export const L1_CHAIN_ID = 31337;
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const HARDHAT_BIN = join(REPO_ROOT, 'node_modules', '.bin', 'hardhat');
const HARDHAT_CONFIG = fileURLToPath(new URL('./hardhat.config.cjs', import.meta.url));

/**
 * Preloaded into hardhat: exits when its parent (this process) is gone and hardhat got reparented,
 * which covers the parent dying by SIGKILL, where no 'exit' handler runs.
 */
const PARENT_WATCHDOG = 'data:text/javascript,' + encodeURIComponent(
  'const p=process.ppid;setInterval(()=>{if(process.ppid!==p)process.exit(0)},250).unref();',
);

export interface L1Node {
  rpcUrl: string;
  chainId: number;
  process: ChildProcess;
  /** Kills hardhat (SIGTERM, SIGKILL after 5 s) and resolves once it has exited. Idempotent. */
  stop(): Promise<void>;
}

export class L1StartError extends Error {
  override readonly name = 'L1StartError';
}

/**
 * Every HTTP call to the L1 goes through this fetch: it resends a request lost to the keep-alive
 * race (hardhat closes sockets idle for 5 s; a client busy with KZG work for longer never sees
 * that and writes into the closed socket). viem never retries eth_sendRawTransaction itself.
 */
export const l1Fetch = nodeFetch();

/** Starts `hardhat node` on 127.0.0.1 and waits until `eth_chainId` answers 31337. */
export async function startL1(opts: { port?: number; log?: (line: string) => void; timeoutMs?: number } = {}): Promise<L1Node> {
  const port = opts.port ?? (await freePort());
  const rpcUrl = `http://127.0.0.1:${port}`;
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const child = spawn(process.execPath, [
    '--import', PARENT_WATCHDOG, HARDHAT_BIN, '--config', HARDHAT_CONFIG, 'node', '--hostname', '127.0.0.1', '--port', String(port),
  ], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HARDHAT_DISABLE_TELEMETRY_PROMPT: 'true' } });

  const stderrTail: string[] = [];
  const lines = (stream: NodeJS.ReadableStream, tail?: string[]) => {
    let rest = '';
    stream.on('data', (d: Buffer) => {
      const parts = (rest + d.toString()).split('\n');
      rest = parts.pop()!;
      for (const l of parts) {
        opts.log?.(l);
        if (tail) { tail.push(l); if (tail.length > 30) tail.shift(); }
      }
    });
  };
  lines(child.stdout!);
  lines(child.stderr!, stderrTail);

  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  const killOnExit = () => { if (!gone()) child.kill('SIGKILL'); };
  process.on('exit', killOnExit);

  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= (async () => {
    if (!gone()) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(t);
    }
    process.off('exit', killOnExit);
  })());

  const fail = async (why: string): Promise<never> => {
    await stop();
    const tail = stderrTail.join('\n').trim();
    throw new L1StartError(`hardhat L1 on ${rpcUrl}: ${why}${tail ? `\n--- hardhat stderr (tail) ---\n${tail}` : ' (no stderr)'}`);
  };

  // No retries here: the loop polls. Short timeouts per try.
  const probe = createPublicClient({ transport: http(rpcUrl, { retryCount: 0, timeout: 2_000, fetchFn: l1Fetch }) });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (gone()) return fail(`exited before answering (code ${child.exitCode}, signal ${child.signalCode})`);
    const id = await probe.getChainId().catch(() => undefined);
    if (id !== undefined) {
      if (id !== L1_CHAIN_ID) return fail(`eth_chainId is ${id}, expected ${L1_CHAIN_ID}`);
      return { rpcUrl, chainId: id, process: child, stop };
    }
    if (Date.now() > deadline) return fail(`eth_chainId did not answer within ${timeoutMs} ms`);
    await Promise.race([exited, new Promise((r) => setTimeout(r, 100))]);
  }
}

/** A public client for the L1 (over `l1Fetch`). */
/**
 * 60 s rather than viem's 10 s: Hardhat verifies a blob transaction's KZG proofs in JavaScript
 * (≈ 2.5 s per blob on this VM), and a send of two blobs on a loaded 2-core host took over 10 s.
 */
const L1_TIMEOUT_MS = 60_000;

export function l1Client(rpcUrl: string): PublicClient<HttpTransport, typeof hardhat> {
  return createPublicClient({ chain: hardhat, transport: http(rpcUrl, { fetchFn: l1Fetch, timeout: L1_TIMEOUT_MS }), pollingInterval: 100 });
}

/** Sets the balance of `address` to `wei` (`hardhat_setBalance`). */
export async function fund(rpcUrl: string, address: Address, wei: bigint): Promise<void> {
  await createTestClient({ mode: 'hardhat', chain: hardhat, transport: http(rpcUrl, { fetchFn: l1Fetch }) }).setBalance({ address, value: wei });
}
