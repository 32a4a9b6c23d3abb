import type { Logger } from 'pino';
import type { PrivateKey } from '@libp2p/interface';
import { DecodeError } from '../crypto/errors.ts';
import type { Rng } from '../crypto/random.ts';
import type { Member } from '../cluster/members.ts';
import { openEnvelope, ReplayGuard, sealEnvelope } from '../net/envelope.ts';
import type { Mesh } from '../net/mesh.ts';
import { DropError, ProtocolError } from '../protocol/errors.ts';
import type { Outgoing, RoundMachine, StepResult } from '../protocol/machine.ts';
import { CONTROL_PROTOCOL, decodeControl, encodeControl, type Control } from './control.ts';

/**
 * Runs sans-IO protocol machines over the mesh (issue 3): seals every outgoing message in a
 * signed envelope bound to the session (spec §2.0), opens and routes incoming ones, buffers
 * messages for sessions not started yet, enforces deadlines, resends a session's frames when a
 * peer reconnects, and aborts every session with a peer on BAN_PAIR (spec §2.10).
 */
export class SessionTimeoutError extends Error {
  override readonly name = 'SessionTimeoutError';
  readonly waitingFor: Member[];
  constructor(what: string, round: number, rounds: number, waitingFor: Member[]) {
    super(`${what} timed out in round ${round}/${rounds} waiting for: ${waitingFor.map((m) => `${m.org} (${m.peerId})`).join(', ') || 'nobody (local delay)'}`);
    this.waitingFor = waitingFor;
  }
}

export class DeclinedError extends Error {
  override readonly name = 'DeclinedError';
  readonly member: Member;
  /** The decliner's own words, e.g. its policy's refusal (issue 4). */
  readonly reason: string;
  /** The decliner's machine-readable reason (control `Decision.code`; issue 11). */
  readonly code: string;
  constructor(what: string, member: Member, reason: string, code = '') {
    super(`${member.org} declined ${what}: ${reason}`);
    this.member = member;
    this.reason = reason;
    this.code = code;
  }
}

export interface SessionSpec<O> {
  /** 32-byte session id carried in every envelope. */
  id: Uint8Array;
  protocol: string;
  /** Human name for errors and logs, e.g. "keygen k1". */
  what: string;
  machine: RoundMachine<O>;
  /** Machine party index → member index, for every party including this one. */
  parties: ReadonlyMap<number, number>;
  deadline: number;
  rng: Rng;
  /** Called after each delivered message with the sender and the machine's progress. */
  onProgress?: (from: Member, p: { round: number; rounds: number; waitingFor: Member[] }) => void;
}

interface Active {
  spec: SessionSpec<unknown>;
  hex: string;
  ofMember: Map<number, number>;
  sent: { member: number; frame: Uint8Array }[];
  /** The culprit's signed envelope that made the machine abort: evidence anyone can check (issue 5). */
  evidence?: Uint8Array;
  timer: NodeJS.Timeout;
  settle: (error: Error | undefined, output?: unknown) => void;
}

export interface HostOptions {
  self: Member;
  /** This peer's Ed25519 identity key (libp2p), or its raw 32-byte secret (tests). */
  secretKey: Uint8Array | PrivateKey;
  members: readonly Member[];
  clusterHash: Uint8Array;
  log: Logger;
  onControl: (from: Member, session: Uint8Array, control: Control) => void;
  /** A session ended with BAN_PAIR naming `culprit` (a member). */
  onBan?: (culprit: Member, error: ProtocolError) => void;
  /** A session's own machine aborted naming `culprit` (BAN_PAIR included): blame metrics (issue 6). */
  onBlame?: (culprit: Member, error: ProtocolError) => void;
  /** Fault injection (tests only, see faults.ts). */
  tamperOut?: (protocol: string, payload: Uint8Array) => Uint8Array;
  /** Every protocol message sent or accepted, and every session's end: the audit log's input (issue 5). */
  transcript?: (e: TranscriptEvent) => void;
  now?: () => number;
}

/** Party indices are the session's (machine) indices; `to` 0 = broadcast. */
export type TranscriptEvent =
  | { type: 'message'; session: Uint8Array; protocol: string; sent: boolean; from: number; to: number; payload: Uint8Array }
  | { type: 'end'; session: Uint8Array; protocol: string; parties: ReadonlyMap<number, number>; error?: Error; output?: unknown; evidence?: Uint8Array };

const PENDING_PER_PEER = 2048;
const PENDING_TTL_MS = 60_000;
const hexOf = (b: Uint8Array) => Buffer.from(b).toString('hex');

export class SessionHost {
  private readonly opts: HostOptions;
  private readonly byPeer: Map<string, Member>;
  private readonly replay = new ReplayGuard();
  private readonly sessions = new Map<string, Active>();
  private readonly pending = new Map<string, { member: number; to: number; protocol: string; payload: Uint8Array; frame: Uint8Array; at: number }[]>();
  private readonly pendingCount = new Map<number, number>();
  private readonly controlSent = new Map<string, { member: number; frame: Uint8Array; expires: number }[]>();
  /**
   * Frames of sessions that completed here, kept until their deadline: our last flight may have
   * been lost with a closing stream after we stopped waiting, and the others still need it
   * (resent on reconnect; a duplicate is dropped by the replay guard).
   */
  private readonly lingering = new Map<string, { sent: { member: number; frame: Uint8Array }[]; expires: number }>();
  // Strictly increasing across restarts, so a restarted peer's envelopes are not taken for replays.
  private seq = Date.now() * 1024;
  mesh: Mesh | undefined;
  readonly stats = { completed: 0, aborted: new Map<string, number>(), dropped: 0 };

  constructor(opts: HostOptions) {
    this.opts = opts;
    this.byPeer = new Map(opts.members.map((m) => [m.peerId, m]));
  }

  private get now(): number {
    return (this.opts.now ?? Date.now)();
  }
  member(index: number): Member {
    const m = this.opts.members[index - 1];
    if (!m) throw new RangeError(`no member ${index}`);
    return m;
  }
  get activeCount(): number {
    return this.sessions.size;
  }
  isActive(id: Uint8Array): boolean {
    return this.sessions.has(hexOf(id));
  }

  private seal(protocol: string, session: Uint8Array, to: number, payload: Uint8Array): Uint8Array {
    return sealEnvelope({ clusterHash: this.opts.clusterHash, protocol, session, from: this.opts.self.index, to, seq: this.seq++, payload }, this.opts.secretKey);
  }

  private transmit(member: number, frame: Uint8Array, expires: number): void {
    const m = this.member(member);
    try {
      this.mesh?.send(m.peerId, frame, expires);
    } catch (e) {
      this.opts.log.warn({ peer: m.org, err: (e as Error).message }, 'cannot queue a message');
    }
  }

  /** Send a control message; it is resent on reconnect until `forgetControl(session)` or expiry. */
  sendControl(member: number, session: Uint8Array, control: Control, expires: number): void {
    const frame = this.seal(CONTROL_PROTOCOL, session, member, encodeControl(control));
    const key = hexOf(session);
    const list = this.controlSent.get(key) ?? [];
    list.push({ member, frame, expires });
    this.controlSent.set(key, list);
    this.transmit(member, frame, expires);
  }
  forgetControl(session: Uint8Array): void {
    this.controlSent.delete(hexOf(session));
  }

  /** A member's hello passed again: resend what it may have missed. */
  peerUp(peer: string): void {
    const m = this.byPeer.get(peer);
    if (!m) return;
    for (const [k, list] of this.controlSent) {
      const live = list.filter((c) => c.expires > this.now);
      if (live.length === 0) this.controlSent.delete(k);
      for (const c of live) if (c.member === m.index) this.transmit(m.index, c.frame, c.expires);
    }
    for (const s of this.sessions.values()) for (const f of s.sent) if (f.member === m.index) this.transmit(m.index, f.frame, s.spec.deadline);
    this.pruneLingering();
    for (const l of this.lingering.values()) for (const f of l.sent) if (f.member === m.index) this.transmit(m.index, f.frame, l.expires);
  }

  private pruneLingering(): void {
    const now = this.now;
    for (const [k, l] of this.lingering) if (l.expires <= now) this.lingering.delete(k);
  }

  /** Mesh callback: one frame from an authenticated libp2p connection with `peer`. */
  onFrame(peer: string, frame: Uint8Array): void {
    const sender = this.byPeer.get(peer);
    if (!sender) return;
    let f;
    try {
      f = openEnvelope(frame, { clusterHash: this.opts.clusterHash, publicKeyOf: (i) => this.opts.members[i - 1]?.publicKey, self: this.opts.self.index, replay: this.replay });
    } catch (e) {
      this.drop(sender, e);
      return;
    }
    if (f.from !== sender.index) return this.drop(sender, new DropError('unexpected-message', `envelope signed by member ${f.from} arrived over ${sender.org}'s connection`));
    if (f.protocol === CONTROL_PROTOCOL) {
      let c: Control;
      try {
        c = decodeControl(f.payload);
      } catch (e) {
        if (e instanceof DecodeError) return this.drop(sender, e);
        throw e;
      }
      this.opts.onControl(sender, f.session, c);
      return;
    }
    const key = hexOf(f.session);
    const s = this.sessions.get(key);
    if (!s) {
      const n = this.pendingCount.get(sender.index) ?? 0;
      if (n >= PENDING_PER_PEER) this.sweepPending();
      if ((this.pendingCount.get(sender.index) ?? 0) >= PENDING_PER_PEER) return this.drop(sender, new DropError('unexpected-message', 'too many messages for unknown sessions'));
      const list = this.pending.get(key) ?? [];
      list.push({ member: sender.index, to: f.to, protocol: f.protocol, payload: f.payload, frame, at: this.now });
      this.pending.set(key, list);
      this.pendingCount.set(sender.index, (this.pendingCount.get(sender.index) ?? 0) + 1);
      return;
    }
    this.deliver(s, sender.index, f.to, f.protocol, f.payload, frame);
  }

  private sweepPending(): void {
    const cutoff = this.now - PENDING_TTL_MS;
    for (const [k, list] of this.pending) {
      const keep = list.filter((p) => p.at >= cutoff);
      for (const p of list) if (p.at < cutoff) this.pendingCount.set(p.member, (this.pendingCount.get(p.member) ?? 1) - 1);
      if (keep.length) this.pending.set(k, keep);
      else this.pending.delete(k);
    }
  }

  private drop(sender: Member, e: unknown): void {
    this.stats.dropped++;
    this.opts.log.debug({ peer: sender.org, reason: (e as Error).message }, 'dropped a message');
  }

  private deliver(s: Active, member: number, to: number, protocol: string, payload: Uint8Array, frame: Uint8Array): void {
    const sender = this.member(member);
    if (protocol !== s.spec.protocol) return this.drop(sender, new DropError('session-id', `protocol ${protocol} in a ${s.spec.protocol} session`));
    const from = s.ofMember.get(member);
    if (from === undefined) return this.drop(sender, new DropError('unexpected-message', `${sender.org} is not a party of ${s.spec.what}`));
    const res = s.spec.machine.receive({ from, to: to === 0 ? null : (s.ofMember.get(to) ?? -1), bytes: payload }, s.spec.rng);
    // Stray and duplicate input is not part of the transcript; evidence of an abort is (in 'end').
    if (!(res.error instanceof DropError)) this.opts.transcript?.({ type: 'message', session: s.spec.id, protocol, sent: false, from, to: to === 0 ? 0 : (s.ofMember.get(to) ?? 0), payload });
    if (res.error instanceof ProtocolError && !(res.error instanceof DropError) && res.error.culprit === from) s.evidence = frame;
    this.step(s, res, sender);
  }

  private step(s: Active, res: StepResult<unknown>, from?: Member): void {
    this.send(s, res.out);
    if (res.error instanceof DropError) {
      if (from) this.drop(from, res.error);
    } else if (res.error) {
      this.finish(s, res.error);
      return;
    }
    if (res.output !== undefined) return this.finish(s, undefined, res.output);
    if (from && s.spec.onProgress) {
      const p = s.spec.machine.progress();
      s.spec.onProgress(from, { round: p.round, rounds: p.rounds, waitingFor: p.waitingFor.map((i) => this.member(s.spec.parties.get(i)!)) });
    }
  }

  private send(s: Active, out: Outgoing[]): void {
    for (const o of out) {
      const targets = o.to === null ? [...s.spec.parties.values()].filter((m) => m !== this.opts.self.index) : [s.spec.parties.get(o.to)!];
      // One sealed frame per broadcast: every recipient sees the same bytes (spec §2.0 echo).
      const payload = this.opts.tamperOut ? this.opts.tamperOut(s.spec.protocol, o.bytes) : o.bytes;
      const frame = this.seal(s.spec.protocol, s.spec.id, o.to === null ? 0 : targets[0]!, payload);
      this.opts.transcript?.({ type: 'message', session: s.spec.id, protocol: s.spec.protocol, sent: true, from: s.ofMember.get(this.opts.self.index) ?? 0, to: o.to ?? 0, payload });
      for (const m of targets) {
        s.sent.push({ member: m, frame });
        this.transmit(m, frame, s.spec.deadline);
      }
    }
  }

  private finish(s: Active, error: Error | undefined, output?: unknown, notifyBan = true): void {
    if (!this.sessions.has(s.hex)) return;
    this.sessions.delete(s.hex);
    clearTimeout(s.timer);
    this.forgetControl(s.spec.id);
    if (error) {
      const reason = error instanceof ProtocolError ? `${error.name}:${error.check}` : error.name;
      this.stats.aborted.set(reason, (this.stats.aborted.get(reason) ?? 0) + 1);
      // Not for sessions aborted by abortWith: there the culprit index is another session's.
      const named = notifyBan && error instanceof ProtocolError && error.culprit !== undefined ? s.spec.parties.get(error.culprit) : undefined;
      if (named !== undefined) this.opts.onBlame?.(this.member(named), error as ProtocolError);
      if (notifyBan && error instanceof ProtocolError && error.name === 'BanPairError' && error.culprit !== undefined) {
        const culprit = s.spec.parties.get(error.culprit);
        if (culprit !== undefined) this.opts.onBan?.(this.member(culprit), error);
      }
    } else {
      this.stats.completed++;
      this.pruneLingering();
      if (s.spec.deadline > this.now && s.sent.length) this.lingering.set(s.hex, { sent: s.sent, expires: s.spec.deadline });
    }
    this.opts.transcript?.({ type: 'end', session: s.spec.id, protocol: s.spec.protocol, parties: s.spec.parties, ...(error ? { error } : { output }), ...(error && s.evidence ? { evidence: s.evidence } : {}) });
    s.settle(error, output);
  }

  /** Run a machine to its output. Rejects with ProtocolError, SessionTimeoutError or DeclinedError. */
  run<O>(spec: SessionSpec<O>): Promise<O> {
    const hex = hexOf(spec.id);
    if (this.sessions.has(hex)) return Promise.reject(new Error(`session ${hex.slice(0, 16)} is already running`));
    return new Promise<O>((resolve, reject) => {
      const s: Active = {
        spec: spec as SessionSpec<unknown>,
        hex,
        ofMember: new Map([...spec.parties].map(([i, m]) => [m, i])),
        sent: [],
        timer: setTimeout(() => {
          const p = spec.machine.progress();
          this.finish(s, new SessionTimeoutError(spec.what, p.round, p.rounds, p.waitingFor.map((i) => this.member(spec.parties.get(i)!))));
        }, Math.max(0, spec.deadline - this.now)),
        settle: (e, out) => (e ? reject(e) : resolve(out as O)),
      };
      s.timer.unref?.();
      this.sessions.set(hex, s);
      this.step(s, spec.machine.start(spec.rng));
      const queued = this.pending.get(hex);
      if (queued) {
        this.pending.delete(hex);
        for (const q of queued) {
          this.pendingCount.set(q.member, (this.pendingCount.get(q.member) ?? 1) - 1);
          if (this.sessions.has(hex)) this.deliver(s, q.member, q.to, q.protocol, q.payload, q.frame);
        }
      }
    });
  }

  /** End a running session from outside (a decline, a shutdown). */
  fail(id: Uint8Array, error: Error): void {
    const s = this.sessions.get(hexOf(id));
    if (!s) return;
    if (error instanceof ProtocolError) s.spec.machine.abort(error);
    this.finish(s, error);
  }

  /** Abort every session in which `member` takes part (spec §2.10: after BAN_PAIR with it). */
  abortWith(member: number, error: ProtocolError): number {
    let n = 0;
    for (const s of [...this.sessions.values()])
      if (s.ofMember.has(member) && member !== this.opts.self.index) {
        s.spec.machine.abort(error);
        this.finish(s, error, undefined, false);
        n++;
      }
    return n;
  }

  /** Forget replay state of a session that is over (its ids never recur). */
  forget(id: Uint8Array): void {
    this.replay.forget(id);
  }
}
