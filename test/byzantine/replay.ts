import { createHash } from 'node:crypto';
import { chacha20 } from '@noble/ciphers/chacha.js';
import type { Rng } from '../../src/crypto/random.ts';
import { DealingSession, type DealingOutput, type DealingRequest } from '../../src/protocol/dkg.ts';
import type { KeyShare } from '../../src/protocol/key-share.ts';
import type { Incoming, RoundMachine, StepResult } from '../../src/protocol/machine.ts';
import { PresignSession, type Presignature } from '../../src/protocol/sign.ts';
import { runMachines, type RunResult, type Tamper } from '../../src/sim/run-machines.ts';

/**
 * Shared transcripts for the byzantine tests. A DKG costs seconds of CPU, and most tampering
 * tests change one message late in the run, so re-running everything from scratch spends nearly
 * all the time recomputing the same honest prefix.
 *
 * `replayRun` runs the machines through the ordinary delivery loop (`runMachines`, with the test's
 * tamper hook), but each party is wrapped so that its steps are memoized: a party's state is a
 * pure function of its construction, its seeded randomness and the messages it has received, so
 * a step whose inbound history was seen before (in this test or an earlier one) is answered from
 * a snapshot instead of being computed. The first step that receives something new (the tampered
 * message, or anything that follows from it) resumes from a deep copy of the last snapshot and
 * really runs. Every test still runs the whole protocol under its tamper and asserts on every
 * honest party; only repeated work is skipped.
 */

/** Deep copy of machine state: plain data, Maps, typed arrays; frozen values (noble points) and errors are shared. */
export function deepCopy<T>(x: T, seen = new Map<unknown, unknown>()): T {
  if (typeof x !== 'object' || x === null || Object.isFrozen(x) || x instanceof Error) return x;
  if (seen.has(x)) return seen.get(x) as T;
  if (ArrayBuffer.isView(x)) return (x as unknown as Uint8Array).slice() as T;
  if (x instanceof Map) {
    const m = new Map();
    seen.set(x, m);
    for (const [k, v] of x) m.set(deepCopy(k, seen), deepCopy(v, seen));
    return m as T;
  }
  if (x instanceof Set) {
    const s = new Set();
    seen.set(x, s);
    for (const v of x) s.add(deepCopy(v, seen));
    return s as T;
  }
  const out = (Array.isArray(x) ? new Array(x.length) : Object.create(Object.getPrototypeOf(x) as object)) as Record<PropertyKey, unknown>;
  seen.set(x, out);
  for (const key of Reflect.ownKeys(x)) {
    const d = Object.getOwnPropertyDescriptor(x, key)!;
    if ('value' in d) d.value = deepCopy(d.value, seen);
    Object.defineProperty(out, key, d);
  }
  return out as T;
}

/** Seeded ChaCha20 stream whose position is plain data, so it can be snapshotted with its machine. */
function streamRng(key: Uint8Array, state: { blocks: number }): Rng {
  const nonce = new Uint8Array(12);
  return (length) => {
    const blocks = Math.ceil(length / 64);
    const out = chacha20(key, nonce, new Uint8Array(blocks * 64), undefined, state.blocks);
    state.blocks += blocks;
    return out.subarray(0, length);
  };
}

interface Snapshot<O> { machine: RoundMachine<O>; blocks: number; result: StepResult<O> }
/** Snapshots by party history; one per test file (module scope) is the intended use. */
export type TranscriptCache = Map<string, Snapshot<unknown>>;
export const newTranscriptCache = (): TranscriptCache => new Map();

class MemoParty<O> {
  private key = '';
  private live: { machine: RoundMachine<O>; state: { blocks: number } } | undefined;
  constructor(
    private readonly cache: Map<string, Snapshot<O>>,
    private readonly scope: string,
    private readonly make: () => RoundMachine<O>,
    private readonly seed: Uint8Array,
    private readonly observe?: (msg: Incoming, before: () => RoundMachine<O>) => void,
  ) {}

  get round(): number {
    return (this.live?.machine as unknown as { round: number } | undefined)?.round ?? 0;
  }

  start(): StepResult<O> {
    return this.step(`${this.scope}|start`, () => {
      this.live = { machine: this.make(), state: { blocks: 0 } };
      return this.live.machine.start(streamRng(this.seed, this.live.state));
    });
  }

  receive(msg: Incoming): StepResult<O> {
    if (this.observe) {
      // The live machine moves on, so copy it now; a cached snapshot stays put, so copy it on demand.
      const live = this.live && deepCopy(this.live.machine), at = this.key;
      this.observe(msg, () => deepCopy(live ?? this.cache.get(at)!.machine));
    }
    const h = createHash('sha256').update(this.key).update(`|${msg.from}|${msg.to ?? 'all'}|`).update(msg.bytes);
    return this.step(h.digest('hex'), () => {
      if (!this.live) {
        const at = this.cache.get(this.key)!;
        this.live = { machine: deepCopy(at.machine), state: { blocks: at.blocks } };
      }
      return this.live.machine.receive(msg, streamRng(this.seed, this.live.state));
    });
  }

  private step(key: string, run: () => StepResult<O>): StepResult<O> {
    // A dropped message leaves the machine as it was, so the history it extends stays the same.
    const dropped = (r: StepResult<O>) => r.error?.kind === 'DROP';
    const hit = this.cache.get(key);
    if (hit) {
      if (!dropped(hit.result)) {
        this.key = key;
        this.live = undefined;
      }
      return deepCopy(hit.result);
    }
    const result = run(); // resumes from the snapshot at the previous key
    this.cache.set(key, { machine: deepCopy(this.live!.machine), blocks: this.live!.state.blocks, result: deepCopy(result) });
    if (!dropped(result)) this.key = key;
    return result;
  }
}

/**
 * A party's constructor, or a constructor with its own snapshot scope: a party built differently
 * from the run's others (a test seam) keeps its snapshots apart but draws the same randomness.
 */
export type Party<O> = (() => RoundMachine<O>) | { make: () => RoundMachine<O>; scope: string };

/** Called before each delivery with the message and a getter for a copy of the recipient's state before it. */
export type Observer<O> = (party: number, msg: Incoming, before: () => RoundMachine<O>) => void;

/**
 * Run `parties` (index → constructor) through runMachines with `tamper`, memoizing every step in
 * `cache`. `scope` must name everything the constructors depend on (protocol, request, shares):
 * runs with the same scope must build the same machines. Randomness is seeded by scope and party.
 * `observe` lets a test keep a party's state just before a given message (to corrupt it directly,
 * for checks that no message can reach).
 */
export function replayRun<O>(cache: TranscriptCache, scope: string, parties: Map<number, Party<O>>, tamper?: Tamper, observe?: Observer<O>): RunResult<O> {
  const typed = cache as Map<string, Snapshot<O>>;
  const machines = new Map([...parties].map(([i, party]) => {
    const own = typeof party === 'function' ? scope : party.scope;
    const make = typeof party === 'function' ? party : party.make;
    const seed = createHash('sha256').update(`replay-rng|${scope}|${i}`).digest(); // the run's scope: same randomness
    const watch = observe && ((msg: Incoming, before: () => RoundMachine<O>) => observe(i, msg, before));
    return [i, new MemoParty(typed, `${own}|${i}`, make, new Uint8Array(seed), watch) as unknown as RoundMachine<O>];
  }));
  return runMachines(machines, new Map([...parties.keys()].map((i) => [i, (() => { throw new Error('unused'); }) as Rng])), tamper);
}

/** A dealing ceremony (keygen, refresh, reshare) through `replayRun`; `old` holds old shares by session index. */
export function dealingRun(cache: TranscriptCache, scope: string, req: DealingRequest, old: Map<number, KeyShare>, tamper?: Tamper, observe?: Observer<DealingOutput>): RunResult<DealingOutput> {
  return replayRun(cache, scope, new Map(req.participants.map((_, k) => [k + 1, () => new DealingSession(req, k + 1, old.get(k + 1))])), tamper, observe);
}

/** Flights 1–3 of signing through `replayRun`. */
export function presignRun(cache: TranscriptCache, scope: string, shares: Map<number, KeyShare>, signers: number[], request: Uint8Array, tamper?: Tamper): RunResult<Presignature> {
  return replayRun(cache, scope, new Map(signers.map((i) => [i, () => new PresignSession(shares.get(i)!, { signers, request })])), tamper);
}
