/**
 * Checkpoints of the peers' audit logs, both sides (C2SP tlog-witness style), and what they tell
 * a peer about itself (issue 11).
 *
 * As witness: a member sends its log's signed checkpoint; this peer cosigns only if it never
 * cosigned this log before, or the checkpoint extends the last one it cosigned (a consistency
 * proof from exactly that size). The last cosigned checkpoint is persisted before the cosignature
 * leaves, so a restart never makes it cosign blindly. Anything else gets a conflict reply: the
 * last checkpoint it cosigned, with the author's own signature over it.
 *
 * As author: a conflict naming a checkpoint this peer really signed (its own signature) that its
 * log no longer holds (larger, or another root at that size) proves that this peer's state was
 * restored from an older copy. It then refuses to approve, request or co-sign, and `/readyz` says
 * why, until an operator acknowledges (`potluck audit ack-rollback`), which is logged as an
 * incident and tells the witnesses to start over from the current log. Witnesses can hold
 * different checkpoints of the old history (one cosigned at size 20, another at 25): until this
 * process ends, a conflict from another witness after an acknowledgement is taken as part of the
 * same rollback (logged, persisted, no second acknowledgement). Within one process the log only
 * grows from what it started with, so such a conflict predates the start; a restart ends this.
 */
import type { Member } from '../cluster/members.ts';
import { CheckpointError, checkpointBody, cosignCheckpoint, openCheckpoint, parseOrigin } from '../audit/checkpoint.ts';
import { verifyEd25519 } from '../cluster/signing.ts';
import { consistencyProof, equalBytes, rootFromLeafHashes } from '../audit/merkle.ts';
import { sha256 } from '@noble/hashes/sha2.js';
import { CheckpointReplyType } from '../protocol/messages.ts';
import type { WitnessRecords } from '../store/witness-records.ts';
import type { CheckpointNote, CheckpointReply } from './control.ts';
import { hex, type PeerCore } from './peer-core.ts';

/** After start, approvals wait this long at most for the connected witnesses to answer this peer's checkpoint. */
export const STARTUP_CHECK_MS = 10_000;
const utf8 = (s: string) => new TextEncoder().encode(s);

export interface RollbackState {
  witness: string;
  size: number;
  root: Uint8Array;
  logSize: number;
  detail: string;
}

export class Witness {
  private readonly core: PeerCore;
  private readonly records: WitnessRecords;
  private readonly startedAt = Date.now();
  /** Per member: the size of our log it last cosigned, as far as we know (proofs start there). */
  private readonly cosignedBy = new Map<number, number>();
  /** Members that answered one of our checkpoints since start. */
  private readonly answered = new Set<number>();
  private rolledBack: RollbackState | undefined;

  constructor(core: PeerCore, records: WitnessRecords) {
    this.core = core;
    this.records = records;
  }

  /** Why this peer must not approve or sign now, or undefined. */
  withheld(): string | undefined {
    const r = this.rolledBack;
    if (r) return `this peer's state was rolled back: ${r.detail}; investigate, then run "potluck audit ack-rollback --reason …"`;
    if (Date.now() - this.startedAt < STARTUP_CHECK_MS) {
      const waiting = this.core.members.filter((m) => m !== this.core.self && this.core.mesh.isConnected(m.peerId) && !this.answered.has(m.index));
      if (waiting.length || this.answered.size === 0) return `checking this peer's audit log against the witnesses' checkpoints since start (waiting for ${waiting.map((m) => m.org).join(', ') || 'a connected member'})`;
    }
    return undefined;
  }

  get rollback(): RollbackState | undefined {
    return this.rolledBack;
  }

  // ---- author side ----

  /** Send our checkpoint to `to` (or every connected member), with a proof from what it last cosigned. */
  send(to?: Member): void {
    const core = this.core;
    if (core.stopping) return;
    const log = core.audit.log;
    if (log.size === 0) return;
    const targets = to ? [to] : core.members.filter((m) => m !== core.self && core.mesh.isConnected(m.peerId));
    const { note, size } = log.checkpoint();
    const session = sha256(utf8(note));
    for (const m of targets) {
      const prev = this.cosignedBy.get(m.index) ?? 0;
      if (to === undefined && prev === size) continue; // nothing new for it
      const consistency = prev > 0 && prev < size ? consistencyProof(log.leafHashes(), prev) : [];
      const reset = this.resets.get(m.index);
      core.host.sendControl(m.index, session, { case: 'checkpoint', value: { note, previousSize: prev, consistency, resetSize: reset?.size ?? 0, resetRoot: reset?.root ?? new Uint8Array(0) } }, Date.now() + 10_000);
    }
    setTimeout(() => core.host.forgetControl(session), 10_000).unref();
  }

  /** Per witness: the acknowledged checkpoint of the old history it should forget. */
  private readonly resets = new Map<number, { size: number; root: Uint8Array }>();
  /** An operator acknowledged a rollback since this process started. */
  private acknowledgedHere = false;

  /** A witness answered one of our checkpoints. */
  onReply(from: Member, r: CheckpointReply): void {
    const core = this.core;
    const log = core.audit.log;
    if (r.origin !== log.origin) return;
    if (!r.conflict) {
      const body = checkpointBody({ origin: r.origin, size: r.size, root: r.root });
      if (r.size > log.size || !equalBytes(rootFromLeafHashes(log.leafHashes().slice(0, r.size)), r.root) || !verifyEd25519(from.publicKey, utf8(body), r.cosignature)) {
        core.log.warn({ peer: from.org, size: r.size }, 'ignored a cosignature that is not over our checkpoint');
        return;
      }
      this.cosignedBy.set(from.index, r.size);
      this.answered.add(from.index);
      return;
    }
    // A conflict: the witness holds a checkpoint of ours; is it really ours, and do we still have it?
    const body = checkpointBody({ origin: r.origin, size: r.size, root: r.root });
    if (!verifyEd25519(core.self.publicKey, utf8(body), r.authorSignature)) {
      core.log.warn({ peer: from.org, size: r.size }, 'ignored a checkpoint conflict not signed by this peer');
      return;
    }
    this.answered.add(from.index);
    const ours = r.size <= log.size && equalBytes(rootFromLeafHashes(log.leafHashes().slice(0, r.size)), r.root);
    if (ours) {
      // We simply did not know what it had cosigned (we restarted): prove from there.
      this.cosignedBy.set(from.index, r.size);
      this.send(from);
      return;
    }
    if (!this.rolledBack && this.acknowledgedHere && !this.records.isAcknowledged(r.size, r.root)) {
      const detail = `${from.org} holds a checkpoint at size ${r.size} of the history before the acknowledged rollback`;
      this.records.acknowledge(r.size, r.root, 'covered by the acknowledgement earlier in this run');
      core.audit.incident('rollback-acknowledged', detail);
      core.log.warn({ witness: from.org, witnessedSize: r.size }, 'a checkpoint of the rolled-back history, covered by the acknowledgement');
    }
    if (this.records.isAcknowledged(r.size, r.root)) {
      this.resets.set(from.index, { size: r.size, root: r.root });
      this.cosignedBy.delete(from.index);
      this.send(from);
      return;
    }
    if (this.rolledBack) return;
    const detail = r.size > log.size
      ? `${from.org} cosigned this peer's audit log at size ${r.size}, signed by this peer, but the log holds ${log.size} entries`
      : `${from.org} cosigned this peer's audit log at size ${r.size} with another root than the log holds now`;
    this.rolledBack = { witness: from.org, size: r.size, root: r.root, logSize: log.size, detail };
    core.log.error({ witness: from.org, witnessedSize: r.size, logSize: log.size }, 'ROLLBACK: this peer\'s database and audit log are older than a checkpoint it signed; approvals and signing stop until an operator acknowledges');
    core.audit.incident('rollback-detected', detail, CheckpointReplyType.encode(CheckpointReplyType.create(r)).finish());
  }

  /** The operator acknowledged the rollback (after investigating): log it, resume, and tell the witnesses. */
  acknowledge(reason: string): RollbackState {
    const r = this.rolledBack;
    if (!r) throw new CheckpointError('no rollback is detected; nothing to acknowledge');
    this.records.acknowledge(r.size, r.root, reason);
    this.core.audit.incident('rollback-acknowledged', `${r.detail}; acknowledged: ${reason}`);
    this.rolledBack = undefined;
    this.acknowledgedHere = true;
    const w = this.core.members.find((m) => m.org === r.witness);
    if (w) this.resets.set(w.index, { size: r.size, root: r.root });
    this.cosignedBy.clear();
    this.send();
    return r;
  }

  // ---- witness side ----

  /** Another member's checkpoint: cosign it, or answer with the conflict. */
  onCheckpoint(from: Member, session: Uint8Array, c: CheckpointNote): void {
    const core = this.core;
    let opened;
    try {
      opened = openCheckpoint(c.note).checkpoint;
      if (parseOrigin(opened.origin).peerId !== from.peerId) throw new CheckpointError(`checkpoint of ${opened.origin} sent by ${from.peerId}`);
      if (parseOrigin(opened.origin).clusterHash !== hex(core.clusterHash)) throw new CheckpointError(`checkpoint of another cluster definition (${opened.origin})`);
    } catch (e) {
      if (!(e instanceof CheckpointError)) throw e;
      core.log.warn({ peer: from.org, err: e.message }, 'refused to co-sign an audit checkpoint');
      return;
    }
    const origin = opened.origin;
    let last = this.records.last(origin);
    if (last && c.resetSize > 0 && c.resetSize === last.size && equalBytes(c.resetRoot, last.root)) {
      // The author acknowledged a rollback past what we cosigned; its signed request is the record.
      core.audit.incident('witness-reset', `${from.org} acknowledged that its log no longer extends the checkpoint at size ${last.size} cosigned here; cosigning from its current log`, utf8(c.note));
      this.records.reset(origin);
      last = undefined;
    }
    const reply = (v: Omit<CheckpointReply, 'origin'>) => core.host.sendControl(from.index, session, { case: 'checkpointReply', value: { origin, ...v } }, Date.now() + 10_000);
    const conflict = () => reply({ size: last!.size, root: last!.root, authorSignature: last!.authorSignature, cosignature: new Uint8Array(0), conflict: true });
    if (last) {
      if (opened.size < last.size) return conflict();
      if (opened.size === last.size && !equalBytes(opened.root, last.root)) return conflict();
      if (opened.size > last.size && c.previousSize !== last.size) return conflict();
    }
    let r;
    try {
      r = cosignCheckpoint(c.note, {
        name: core.audit.log.origin, publicKey: core.self.publicKey, sign: core.identity,
        ...(last && opened.size > last.size ? { previous: { size: last.size, root: last.root, proof: c.consistency } } : {}),
      });
    } catch (e) {
      if (!(e instanceof CheckpointError)) throw e;
      core.log.error({ peer: from.org, err: e.message }, 'refused to co-sign an audit checkpoint');
      return conflict();
    }
    if (!last || opened.size > last.size) {
      this.records.cosigned(origin, { size: opened.size, root: opened.root, authorSignature: r.authorSignature });
      core.audit.cosignature({ origin, size: opened.size, root: opened.root, authorSignature: r.authorSignature, cosignature: r.cosignature });
    }
    reply({ size: opened.size, root: opened.root, authorSignature: new Uint8Array(0), cosignature: r.cosignature, conflict: false });
  }
}
