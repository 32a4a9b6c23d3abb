import { parentPort, workerData } from 'node:worker_threads';
import { systemRng } from '../crypto/random.ts';
import { DealingSession, type DealingOutput, type DealingRequest } from '../protocol/dkg.ts';
import { decodeKeyShare, encodeKeyShare } from '../protocol/key-share.ts';
import type { Incoming, StepResult } from '../protocol/machine.ts';

/**
 * One party of a dealing ceremony in a worker thread: the main thread routes messages, the
 * worker does the party's heavy work (base OTs, PPRF). Results cross as plain bytes.
 */
export interface WorkerInit { req: DealingRequest; self: number; oldShare?: Uint8Array }

const { req, self, oldShare } = workerData as WorkerInit;
const machine = new DealingSession(req, self, oldShare ? decodeKeyShare(oldShare) : undefined);

const reply = (res: StepResult<DealingOutput>) => {
  const e = res.error;
  parentPort!.postMessage({
    out: res.out,
    share: res.output?.share ? encodeKeyShare(res.output.share) : undefined,
    done: res.output !== undefined,
    error: e ? { kind: e.kind, check: e.check, culprit: e.culprit, message: e.message } : undefined,
  });
};

parentPort!.on('message', (m: { type: 'start' } | { type: 'receive'; msg: Incoming }) => {
  reply(m.type === 'start' ? machine.start(systemRng) : machine.receive(m.msg, systemRng));
});
