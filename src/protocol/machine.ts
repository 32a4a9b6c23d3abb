import { DecodeError } from '../crypto/errors.ts';
import type { Rng } from '../crypto/random.ts';
import { AbortError, DropError, ProtocolError } from './errors.ts';
import { decodeBody, type Body, type BodyCase, type BodyMap } from './messages.ts';

/**
 * The sans-IO round engine shared by every protocol: messages in, messages out, no I/O.
 * A protocol declares what it expects in each round; the engine buffers early messages,
 * drops stray or duplicate ones, aborts on equivocation and malformed input (naming the
 * sender), and calls the round handler once a round is complete (spec §2.0).
 */
export interface Outgoing { to: number | null; bytes: Uint8Array } // null = broadcast
export interface Incoming { from: number; to: number | null; bytes: Uint8Array }

export interface StepResult<O> {
  out: Outgoing[];
  /** Set once, when the protocol finishes. */
  output?: O;
  /** DROP: the message was ignored and the session goes on. ABORT / BAN_PAIR: the session is over. */
  error?: ProtocolError;
}

export interface RoundSpec {
  /** Body kinds accepted in this round and whether each is a broadcast. */
  bodies: Partial<Record<BodyCase, 'broadcast' | 'p2p'>>;
  /** Senders expected for each kind. */
  from: Partial<Record<BodyCase, readonly number[]>>;
}

export type RoundMessages = Map<BodyCase, Map<number, { body: Body; bytes: Uint8Array }>>;

export abstract class RoundMachine<O> {
  readonly self: number;
  protected round = 0;
  private readonly inbox = new Map<string, { body: Body; bytes: Uint8Array; round: number }>();
  private failure: ProtocolError | undefined;
  private finished = false;
  private started = false;

  constructor(self: number) {
    this.self = self;
  }

  /** Rounds in order; round r (1-based) is rounds[r-1]. */
  protected abstract readonly rounds: RoundSpec[];
  /** Produce the first round's messages. */
  protected abstract begin(rng: Rng): Outgoing[];
  /** Process a complete round; return the next messages and, after the last round, the output. */
  protected abstract onRound(round: number, msgs: RoundMessages, rng: Rng): { out: Outgoing[]; output?: O };

  get failed(): ProtocolError | undefined {
    return this.failure;
  }
  get done(): boolean {
    return this.finished;
  }

  /** Where the session stands: the current round and the parties it still waits for (for progress and timeouts). */
  progress(): { round: number; rounds: number; waitingFor: number[] } {
    const spec = this.rounds[this.round - 1];
    const waiting = new Set<number>();
    if (spec && !this.finished)
      for (const kind of Object.keys(spec.bodies) as BodyCase[])
        for (const from of spec.from[kind] ?? []) if (!this.inbox.has(`${kind}:${from}`)) waiting.add(from);
    return { round: Math.min(this.round, this.rounds.length), rounds: this.rounds.length, waitingFor: [...waiting].sort((a, b) => a - b) };
  }

  /**
   * End the session from outside, e.g. because a concurrent session with the same peer raised
   * BAN_PAIR (spec §2.10). Later calls return this error; nothing more is sent.
   */
  abort(error: ProtocolError): void {
    if (!this.failure && !this.finished) this.failure = error;
  }

  start(rng: Rng): StepResult<O> {
    if (this.started) return { out: [], error: new DropError('bad-input', 'already started') };
    this.started = true;
    return this.guard(() => {
      const first = this.begin(rng);
      this.round = 1;
      const rest = this.drain(rng);
      return { ...rest, out: [...first, ...rest.out] };
    });
  }

  receive(msg: Incoming, rng: Rng): StepResult<O> {
    if (this.failure) return { out: [], error: this.failure };
    if (this.finished) return { out: [], error: new DropError('unexpected-message', 'session already finished', msg.from) };
    return this.guard(() => this.accept(msg, rng));
  }

  private guard(fn: () => StepResult<O>): StepResult<O> {
    try {
      return fn();
    } catch (e) {
      if (e instanceof DropError) return { out: [], error: e };
      if (e instanceof ProtocolError) {
        this.failure = e;
        return { out: [], error: e };
      }
      // Anything else is a bug, but a peer must never be able to crash us with it (TOB-SILA-3):
      // end the session with a typed error that carries the exception's name only.
      this.failure = new AbortError('internal', `unexpected ${(e as Error)?.name ?? 'exception'} while processing a message`);
      return { out: [], error: this.failure };
    }
  }

  private roundOf(kind: BodyCase): number {
    return this.rounds.findIndex((r) => r.bodies[kind] !== undefined) + 1;
  }

  private accept(msg: Incoming, rng: Rng): StepResult<O> {
    let body: Body;
    try {
      body = decodeBody(msg.bytes);
    } catch (e) {
      if (e instanceof DecodeError) throw new AbortError('decode', e.message, msg.from, msg.bytes);
      throw e;
    }
    const r = this.roundOf(body.case);
    const spec = this.rounds[r - 1];
    if (!spec) throw new AbortError('unexpected-message', `${body.case} is not part of this protocol`, msg.from, msg.bytes);
    const channel = spec.bodies[body.case]!;
    if (channel === 'broadcast' ? msg.to !== null : msg.to !== this.self)
      throw new AbortError('unexpected-message', `${body.case} must be sent ${channel === 'broadcast' ? 'as a broadcast' : 'to one party'}`, msg.from, msg.bytes);
    if (!spec.from[body.case]?.includes(msg.from)) throw new DropError('unexpected-message', `no ${body.case} expected from this party`, msg.from);
    const key = `${body.case}:${msg.from}`;
    const prev = this.inbox.get(key);
    if (prev) {
      if (prev.bytes.length === msg.bytes.length && prev.bytes.every((b, i) => b === msg.bytes[i]))
        throw new DropError('unexpected-message', 'duplicate message', msg.from);
      throw new AbortError('echo', `two different ${body.case} messages from the same party`, msg.from, msg.bytes);
    }
    this.inbox.set(key, { body, bytes: msg.bytes, round: r });
    return this.drain(rng);
  }

  /** Run every round that is complete. */
  private drain(rng: Rng): StepResult<O> {
    const out: Outgoing[] = [];
    let output: O | undefined;
    while (!this.finished && this.round >= 1) {
      const spec = this.rounds[this.round - 1]!;
      const msgs: RoundMessages = new Map();
      let complete = true;
      for (const kind of Object.keys(spec.bodies) as BodyCase[]) {
        const m = new Map<number, { body: Body; bytes: Uint8Array }>();
        for (const from of spec.from[kind] ?? []) {
          const got = this.inbox.get(`${kind}:${from}`);
          if (!got) complete = false;
          else m.set(from, got);
        }
        msgs.set(kind, m);
      }
      if (!complete) break;
      const res = this.onRound(this.round, msgs, rng);
      out.push(...res.out);
      if (this.round === this.rounds.length) {
        this.finished = true;
        output = res.output;
      }
      this.round++;
    }
    return output === undefined ? { out } : { out, output };
  }
}

/** Typed access to one round's messages of one kind. */
export function bodiesOf<K extends BodyCase>(msgs: RoundMessages, kind: K): Map<number, { value: BodyMap[K]; bytes: Uint8Array }> {
  const out = new Map<number, { value: BodyMap[K]; bytes: Uint8Array }>();
  for (const [from, m] of msgs.get(kind) ?? []) out.set(from, { value: m.body.value as BodyMap[K], bytes: m.bytes });
  return out;
}

/** Run `fn`, turning a DecodeError into an ABORT that names `from`. */
export function attributed<T>(from: number, evidence: Uint8Array, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof DecodeError) throw new AbortError('decode', e.message, from, evidence);
    throw e;
  }
}

export const bytesEqual = (a: Uint8Array, b: Uint8Array): boolean => {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
};
