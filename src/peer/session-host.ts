/**
 * Runs sans-IO protocol machines over the mesh (issue 3): seals every outgoing message in a
 * signed envelope bound to the session (spec §2.0), opens and routes incoming ones, buffers
 * messages for sessions not started yet, enforces deadlines, resends a session's frames when a
 * peer reconnects, and aborts every session with a peer on BAN_PAIR (spec §2.10).
 *
 * Everything it holds because of a peer is bounded per peer (issue 11): envelopes larger than
 * their kind's exact maximum are dropped before the signature is checked; early frames, control
 * messages kept for resending and the last flights of finished sessions each have a per-member
 * budget of frames and bytes with expiry and oldest-first eviction; the replay guard forgets by
 * age and count with a per-sender floor. `bufferStats()` shows the sizes; `activeWith` and
 * `activeProposedBy` count running sessions per member, for the daemon's concurrency limits.
 */
import type { Logger } from 'pino';
import type { PrivateKey } from '@libp2p/interface';
import { DecodeError } from '../crypto/errors.ts';
import type { Rng } from '../crypto/random.ts';
import type { Member } from '../cluster/members.ts';
import { openEnvelope, sealEnvelope } from '../net/envelope.ts';
import { protocolPayloadLimit, type SessionShape } from '../net/payload-limits.ts';
import { MAX_FRAME_LIFETIME_MS, ReplayGuard } from '../net/replay-guard.ts';
import { DealingSession } from '../protocol/dkg.ts';
import { DropError, ProtocolError } from '../protocol/errors.ts';
import type { Outgoing, RoundMachine, StepResult } from '../protocol/machine.ts';
import { CONTROL_PROTOCOL, controlLimit, decodeControl, encodeControl, type Control } from './control.ts';
import { PeerBuffer } from './peer-buffer.ts';
import { CONTROL_RESEND_BUDGET, EARLY_BUDGET, EARLY_TTL_MS, LINGER_BUDGET, SWEEP_INTERVAL_MS, compact, own, type Early, type HostBufferStats, type Resend } from './session-budgets.ts';
import { SessionTimeoutError } from './session-errors.ts';

export { DeclinedError, SessionTimeoutError } from './session-errors.ts';
export { CONTROL_RESEND_BUDGET, EARLY_BUDGET, EARLY_TTL_MS, LINGER_BUDGET, type HostBufferStats } from './session-budgets.ts';

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
  /** Member index of whoever proposed the session (counted by `activeProposedBy`); omit for our own. */
  proposer?: number;
  /** Called after each delivered message with the sender and the machine's progress. */
  onProgress?: (from: Member, p: { round: number; rounds: number; waitingFor: Member[] }) => void;
}

interface Active {
  spec: SessionSpec<unknown>;
  hex: string;
  ofMember: Map<number, number>;
  /** Sizes the session's messages can have (payload limits). */
  shape: SessionShape;
  sent: { member: number; frame: Uint8Array }[];
  /** The culprit's signed envelope that made the machine abort: evidence anyone can check (issue 5). */
  evidence?: Uint8Array;
  timer: NodeJS.Timeout;
  settle: (error: Error | undefined, output?: unknown) => void;
}

/** Where frames go: the mesh (`net/mesh.ts`), or anything with its `send` (tests). */
export interface FrameSink {
  send(peer: string, frame: Uint8Array, expires: number): void;
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
  /** A frame from `from`'s connection was dropped, and why (metrics, tests). */
  onDrop?: (from: Member, error: Error) => void;
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

const hexOf = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** Protocols whose frames are processed one per event-loop turn (see SessionHost.later). */
const DEFERRED = new Set(['dkls23/presign/v1']);

export class SessionHost {
  private readonly opts: HostOptions;
  private readonly byPeer: Map<string, Member>;
  private readonly replay = new ReplayGuard({ now: () => this.now });
  private readonly sessions = new Map<string, Active>();
  private readonly early = new PeerBuffer<Early>(EARLY_BUDGET);
  private readonly controlSent = new PeerBuffer<Resend>(CONTROL_RESEND_BUDGET);
  /**
   * Frames of sessions that completed here, kept until their deadline: our last flight may have
   * been lost with a closing stream after we stopped waiting, and the others still need it
   * (resent on reconnect; a duplicate is dropped by the replay guard).
   */
  private readonly lingering = new PeerBuffer<Resend>(LINGER_BUDGET);
  private readonly activeByMember = new Map<number, number>();
  private readonly activeByProposer = new Map<number, number>();
  /** The largest shape any session here can have: for frames of sessions not started yet. */
  private readonly clusterShape: SessionShape;
  private lastSweep = 0;
  // Strictly increasing across restarts, so a restarted peer's envelopes are not taken for replays.
  private seq = Date.now() * 1024;
  mesh: FrameSink | undefined;
  readonly stats = { completed: 0, aborted: new Map<string, number>(), dropped: 0 };

  constructor(opts: HostOptions) {
    this.opts = opts;
    this.byPeer = new Map(opts.members.map((m) => [m.peerId, m]));
    const n = opts.members.length;
    this.clusterShape = { parties: n, threshold: n, oldParties: n };
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
  /**
   * Running sessions in which member `index` takes part (O(1)). For per-peer concurrency limits:
   * the daemon refuses a proposal from a peer with too many running sessions here.
   */
  activeWith(index: number): number {
    return this.activeByMember.get(index) ?? 0;
  }
  /** Running sessions started on a proposal from member `index` (`SessionSpec.proposer`), O(1). */
  activeProposedBy(index: number): number {
    return this.activeByProposer.get(index) ?? 0;
  }

  /** What the host holds, for tests and status: compare with EARLY_BUDGET, CONTROL_RESEND_BUDGET, LINGER_BUDGET. */
  bufferStats(): HostBufferStats {
    return { sessions: this.sessions.size, early: this.early.stats(), controlSent: this.controlSent.stats(), lingering: this.lingering.stats(), replay: this.replay.stats() };
  }

  /** Our frames are kept for resends (sessions, controls, lingering): never as views into a shared pool. */
  private seal(protocol: string, session: Uint8Array, to: number, payload: Uint8Array): Uint8Array {
    return own(sealEnvelope({ clusterHash: this.opts.clusterHash, protocol, session, from: this.opts.self.index, to, seq: this.seq++, payload }, this.opts.secretKey));
  }

  private transmit(member: number, frame: Uint8Array, expires: number): void {
    const m = this.member(member);
    try {
      this.mesh?.send(m.peerId, frame, expires);
    } catch (e) {
      this.opts.log.warn({ peer: m.org, err: (e as Error).message }, 'cannot queue a message');
    }
  }

  /** Drop expired buffered entries, at most once per SWEEP_INTERVAL_MS. */
  private maybeSweep(): void {
    const now = this.now;
    if (now - this.lastSweep < SWEEP_INTERVAL_MS) return;
    this.lastSweep = now;
    this.early.sweep(now);
    this.controlSent.sweep(now);
    this.lingering.sweep(now);
  }

  /** Send a control message; it is resent on reconnect until `forgetControl(session)` or expiry. */
  sendControl(member: number, session: Uint8Array, control: Control, expires: number): void {
    this.maybeSweep();
    // No frame may outlive the receivers' replay window (net/replay-guard.ts).
    expires = Math.min(expires, this.now + MAX_FRAME_LIFETIME_MS);
    const frame = this.seal(CONTROL_PROTOCOL, session, member, encodeControl(control));
    this.controlSent.add({ member, session: hexOf(session), bytes: frame.length, expires, frame }, this.now);
    this.transmit(member, frame, expires);
  }
  forgetControl(session: Uint8Array): void {
    this.controlSent.drop(hexOf(session));
  }

  /** A member's hello passed again: resend what it may have missed. */
  peerUp(peer: string): void {
    const m = this.byPeer.get(peer);
    if (!m) return;
    const now = this.now;
    for (const c of this.controlSent.of(m.index, now)) this.transmit(m.index, c.frame, c.expires);
    for (const s of this.sessions.values()) for (const f of s.sent) if (f.member === m.index) this.transmit(m.index, f.frame, s.spec.deadline);
    for (const l of this.lingering.of(m.index, now)) this.transmit(m.index, l.frame, l.expires);
  }

  /** The payload limit of an envelope, before its signature is checked (issue 11). */
  private payloadLimit(protocol: string, session: Uint8Array, payload: Uint8Array): { max: number; what: string } | undefined {
    if (protocol === CONTROL_PROTOCOL) return controlLimit(payload);
    const s = this.sessions.get(hexOf(session));
    return protocolPayloadLimit(protocol, payload, s && s.spec.protocol === protocol ? s.shape : this.clusterShape);
  }

  /** Mesh callback: one frame from an authenticated libp2p connection with `peer`. */
  onFrame(peer: string, frame: Uint8Array): void {
    const sender = this.byPeer.get(peer);
    if (!sender) return;
    this.maybeSweep();
    let f;
    try {
      f = openEnvelope(frame, {
        clusterHash: this.opts.clusterHash, publicKeyOf: (i) => this.opts.members[i - 1]?.publicKey, self: this.opts.self.index, replay: this.replay,
        payloadLimit: (protocol, session, payload) => this.payloadLimit(protocol, session, payload),
      });
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
      const kept = compact(frame, f.payload);
      const now = this.now;
      if (!this.early.add({ member: sender.index, session: key, bytes: kept.frame.length, expires: now + EARLY_TTL_MS, to: f.to, protocol: f.protocol, payload: kept.payload, frame: kept.frame }, now))
        this.drop(sender, new DropError('unexpected-message', `early frame of ${kept.frame.length} bytes exceeds the per-peer budget of ${EARLY_BUDGET.bytes} bytes`));
      return;
    }
    if (DEFERRED.has(f.protocol)) return this.later(s, sender.index, f.to, f.protocol, f.payload, frame);
    this.deliver(s, sender.index, f.to, f.protocol, f.payload, frame);
  }

  /**
   * Presign rounds cost tens of milliseconds each. Run them one per event-loop turn, in arrival
   * order, so frames of online signatures and control messages (approvals, proposals) that arrive
   * meanwhile are handled at once instead of waiting behind a burst of presign work (200
   * concurrent on-demand presigns made 5 s signature deadlines expire on a loaded host).
   */
  private later(s: Active, member: number, to: number, protocol: string, payload: Uint8Array, frame: Uint8Array): void {
    this.deferred.push(() => {
      if (this.sessions.get(hexOf(s.spec.id)) === s) this.deliver(s, member, to, protocol, payload, frame);
    });
    if (this.deferred.length === 1) setImmediate(this.drainDeferred);
  }
  private readonly deferred: (() => void)[] = [];
  /** Resolves once every deferred frame has been processed (tests). */
  async drained(): Promise<void> {
    while (this.deferred.length) await new Promise((r) => setImmediate(r));
  }
  private readonly drainDeferred = (): void => {
    const next = this.deferred[0];
    try {
      next?.();
    } catch (e) {
      this.opts.log.error({ err: (e as Error).message }, 'a deferred presign frame failed');
    } finally {
      this.deferred.shift();
      if (this.deferred.length) setImmediate(this.drainDeferred);
    }
  };

  private drop(sender: Member, e: unknown): void {
    this.stats.dropped++;
    this.opts.log.debug({ peer: sender.org, reason: (e as Error).message }, 'dropped a message');
    this.opts.onDrop?.(sender, e as Error);
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
    // Progress only for accepted messages: a peer's stray or duplicate input must not print lines.
    if (from && !res.error && s.spec.onProgress) {
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

  private count(map: Map<number, number>, key: number, delta: number): void {
    const v = (map.get(key) ?? 0) + delta;
    if (v > 0) map.set(key, v);
    else map.delete(key);
  }

  private track(s: Active, delta: 1 | -1): void {
    for (const m of s.ofMember.keys()) if (m !== this.opts.self.index) this.count(this.activeByMember, m, delta);
    if (s.spec.proposer !== undefined) this.count(this.activeByProposer, s.spec.proposer, delta);
  }

  private finish(s: Active, error: Error | undefined, output?: unknown, notifyBan = true): void {
    if (!this.sessions.has(s.hex)) return;
    this.sessions.delete(s.hex);
    this.track(s, -1);
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
      const now = this.now;
      if (s.spec.deadline > now) for (const f of s.sent) this.lingering.add({ member: f.member, session: s.hex, bytes: f.frame.length, expires: s.spec.deadline, frame: f.frame }, now);
    }
    this.opts.transcript?.({ type: 'end', session: s.spec.id, protocol: s.spec.protocol, parties: s.spec.parties, ...(error ? { error } : { output }), ...(error && s.evidence ? { evidence: s.evidence } : {}) });
    s.settle(error, output);
  }

  private shapeOf(spec: SessionSpec<unknown>): SessionShape {
    const n = this.clusterShape.oldParties;
    const m = spec.machine;
    if (m instanceof DealingSession) return { parties: m.req.participants.length, threshold: m.req.threshold, oldParties: n };
    return { parties: spec.parties.size, threshold: spec.parties.size, oldParties: n };
  }

  /** Run a machine to its output. Rejects with ProtocolError, SessionTimeoutError or DeclinedError. */
  run<O>(spec: SessionSpec<O>): Promise<O> {
    const hex = hexOf(spec.id);
    if (this.sessions.has(hex)) return Promise.reject(new Error(`session ${hex.slice(0, 16)} is already running`));
    // Its frames are resent until the deadline: they must not outlive the receivers' replay window.
    if (spec.deadline - this.now > MAX_FRAME_LIFETIME_MS) return Promise.reject(new RangeError(`${spec.what}: a deadline more than ${MAX_FRAME_LIFETIME_MS / 1000} s away would outlive the replay window`));
    this.maybeSweep();
    return new Promise<O>((resolve, reject) => {
      const s: Active = {
        spec: spec as SessionSpec<unknown>,
        hex,
        ofMember: new Map([...spec.parties].map(([i, m]) => [m, i])),
        shape: this.shapeOf(spec as SessionSpec<unknown>),
        sent: [],
        timer: setTimeout(() => {
          const p = spec.machine.progress();
          this.finish(s, new SessionTimeoutError(spec.what, p.round, p.rounds, p.waitingFor.map((i) => this.member(spec.parties.get(i)!))));
        }, Math.max(0, spec.deadline - this.now)),
        settle: (e, out) => (e ? reject(e) : resolve(out as O)),
      };
      s.timer.unref?.();
      this.sessions.set(hex, s);
      this.track(s, 1);
      this.step(s, spec.machine.start(spec.rng));
      for (const q of this.early.take(hex, this.now)) {
        if (!this.sessions.has(hex)) break;
        // Buffered under the cluster-wide limit: hold it to this session's exact one now.
        const limit = protocolPayloadLimit(q.protocol, q.payload, s.shape);
        if (limit && q.payload.length > limit.max) {
          this.drop(this.member(q.member), new DropError('decode', `${limit.what} payload of ${q.payload.length} bytes exceeds its limit of ${limit.max} bytes`));
          continue;
        }
        this.deliver(s, q.member, q.to, q.protocol, q.payload, q.frame);
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

  /**
   * A session is over here: drop frames still buffered for it. Its replay state needs no
   * forgetting: the guard remembers (sender, seq) pairs and forgets them by age and count.
   */
  forget(id: Uint8Array): void {
    this.early.drop(hexOf(id));
  }
}
