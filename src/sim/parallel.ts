import { Worker } from 'node:worker_threads';
import { decodeKeyShare, encodeKeyShare, type KeyShare } from '../protocol/key-share.ts';
import type { DealingRequest } from '../protocol/dkg.ts';
import type { Outgoing } from '../protocol/machine.ts';
import { keygenRequest, refreshRequest } from './simulator.ts';
import type { WorkerInit } from './party-worker.ts';

/**
 * Runs a dealing ceremony with every party in its own worker thread (the pairwise OT setup is
 * the heavy part and parallelises across parties). Same protocol, same messages as the
 * single-thread simulator; only the scheduling differs.
 */
interface WorkerReply { out: Outgoing[]; share?: Uint8Array; done: boolean; error?: { kind: string; check: string; culprit?: number; message: string } }

export class ParallelRunError extends Error {
  override readonly name = 'ParallelRunError';
}

export async function runDealingParallel(req: DealingRequest, oldShares: Map<number, KeyShare> = new Map()): Promise<Map<number, Uint8Array | undefined>> {
  const ids = req.participants.map((_, k) => k + 1);
  const url = new URL('./party-worker-boot.mjs', import.meta.url);
  const workers = new Map(ids.map((i) => {
    const old = oldShares.get(i);
    const init: WorkerInit = old ? { req, self: i, oldShare: encodeKeyShare(old) } : { req, self: i };
    return [i, new Worker(url, { workerData: init, execArgv: [] })] as const;
  }));
  const results = new Map<number, Uint8Array | undefined>();
  try {
    await new Promise<void>((resolve, reject) => {
      let finished = 0;
      const route = (from: number, r: WorkerReply) => {
        if (r.error && r.error.kind !== 'DROP') return reject(new ParallelRunError(`party ${from}: ${r.error.message}`));
        if (r.done) {
          results.set(from, r.share);
          if (++finished === ids.length) resolve();
        }
        for (const msg of r.out) {
          const to = msg.to === null ? ids.filter((j) => j !== from) : [msg.to];
          for (const j of to) workers.get(j)!.postMessage({ type: 'receive', msg: { from, to: msg.to, bytes: msg.bytes } });
        }
      };
      for (const [i, w] of workers) {
        w.on('message', (r: WorkerReply) => route(i, r));
        w.on('error', reject);
        w.postMessage({ type: 'start' });
      }
    });
  } finally {
    await Promise.all([...workers.values()].map((w) => w.terminate()));
  }
  return results;
}

export async function keygenParallel(t: number, n: number): Promise<Map<number, KeyShare>> {
  const res = await runDealingParallel(keygenRequest(t, n));
  return new Map([...res].map(([i, b]) => [i, decodeKeyShare(b!)]));
}

/** Refresh with every holder in its own worker thread. */
export async function refreshParallel(shares: Map<number, KeyShare>): Promise<Map<number, KeyShare>> {
  const res = await runDealingParallel(refreshRequest(shares), shares);
  return new Map([...res].map(([i, b]) => [i, decodeKeyShare(b!)]));
}
