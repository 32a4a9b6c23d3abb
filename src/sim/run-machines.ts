import type { Rng } from '../crypto/random.ts';
import type { ProtocolError } from '../protocol/errors.ts';
import type { Outgoing, RoundMachine, StepResult } from '../protocol/machine.ts';

/**
 * In-process delivery loop for a set of sans-IO machines (all parties in one thread). Used by
 * the simulator, the tests and the benchmark. `tamper` lets a test rewrite what one party
 * sends, per recipient: that is the byzantine harness's hook.
 */
export interface Delivery { to: number; bytes: Uint8Array; broadcast: boolean }
export type Tamper = (from: number, msg: Outgoing, recipients: number[]) => Delivery[];

export interface RunStats {
  /** Bytes each party sent (a broadcast counts once per recipient). */
  bytesSent: Map<number, number>;
  /** ms spent by each party in each protocol round (index = round at the time of the call). */
  roundMs: Map<number, number[]>;
}

export interface RunResult<O> {
  outputs: Map<number, O>;
  errors: Map<number, ProtocolError>;
  drops: { at: number; error: ProtocolError }[];
  stats: RunStats;
}

export function runMachines<O>(machines: Map<number, RoundMachine<O>>, rngs: Map<number, Rng>, tamper?: Tamper): RunResult<O> {
  const ids = [...machines.keys()];
  const queue: { from: number; d: Delivery }[] = [];
  const outputs = new Map<number, O>(), errors = new Map<number, ProtocolError>();
  const drops: { at: number; error: ProtocolError }[] = [];
  const stats: RunStats = { bytesSent: new Map(ids.map((i) => [i, 0])), roundMs: new Map(ids.map((i) => [i, []])) };

  const handle = (i: number, res: StepResult<O>) => {
    if (res.error) {
      if (res.error.kind === 'DROP') drops.push({ at: i, error: res.error });
      else errors.set(i, res.error);
    }
    if (res.output !== undefined) outputs.set(i, res.output);
    for (const msg of res.out) {
      const recipients = msg.to === null ? ids.filter((j) => j !== i) : [msg.to];
      const ds = tamper ? tamper(i, msg, recipients) : recipients.map((to) => ({ to, bytes: msg.bytes, broadcast: msg.to === null }));
      for (const d of ds) {
        stats.bytesSent.set(i, stats.bytesSent.get(i)! + d.bytes.length);
        queue.push({ from: i, d });
      }
    }
  };
  const timed = (i: number, fn: () => StepResult<O>) => {
    const m = machines.get(i)! as unknown as { round: number };
    const r = m.round;
    const t0 = performance.now();
    const res = fn();
    const ms = stats.roundMs.get(i)!;
    ms[r] = (ms[r] ?? 0) + performance.now() - t0;
    return res;
  };
  for (const i of ids) handle(i, timed(i, () => machines.get(i)!.start(rngs.get(i)!)));
  while (queue.length) {
    const { from, d } = queue.shift()!;
    const m = machines.get(d.to);
    if (!m || errors.has(d.to)) continue;
    handle(d.to, timed(d.to, () => m.receive({ from, to: d.broadcast ? null : d.to, bytes: d.bytes }, rngs.get(d.to)!)));
  }
  return { outputs, errors, drops, stats };
}

/** Σ over rounds of the slowest party's time in that round. */
export function criticalPathMs(stats: RunStats): number {
  const rounds = Math.max(...[...stats.roundMs.values()].map((r) => r.length));
  let total = 0;
  for (let r = 0; r < rounds; r++) total += Math.max(0, ...[...stats.roundMs.values()].map((ms) => ms[r] ?? 0));
  return total;
}
