import { existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { hash32 } from '../crypto/hash.ts';
import { systemRng } from '../crypto/random.ts';
import { loadIdentity } from '../cluster/identity.ts';
import { AuditRecorder } from './audit-recorder.ts';
import { definitionHash, parseDefinition, requireFullySigned } from '../cluster/definition.ts';
import { membersOf, partyOrder, type Member } from '../cluster/members.ts';
import { Mesh } from '../net/mesh.ts';
import { PeerNode } from '../net/peer-node.ts';
import { DealingSession, dealingInstanceId, type DealingRequest } from '../protocol/dkg.ts';
import { ethAddress } from '../protocol/sign.ts';
import { fsyncDir, shareFile, writeDurable } from '../store/share-file.ts';
import { DEFAULT_SCRYPT, sealKeyShare } from '../store/key-share-vault.ts';
import { SessionHost, SessionTimeoutError } from './session-host.ts';
import { KEY_ID } from './ceremony-params.ts';
import type { CeremonyAck } from './control.ts';
import { MAX_CEREMONY_TIMEOUT_MS, publicSharesHash, sameOutcome } from './dealing-ceremony.ts';

/**
 * `potluck keygen` (issue 3): a one-shot process per member, run by every operator at about the
 * same time, in the manner of Charon's DKG. Members exchange fresh join nonces until everyone
 * has joined (the ceremony nonce hashes them all, so a rerun is a new ceremony), run the DKG of
 * spec §2.2 over signed envelopes, and only then write the sealed share with an atomic rename:
 * a failed or interrupted ceremony leaves nothing behind.
 */
export class CeremonyError extends Error {
  override readonly name = 'CeremonyError';
}

export interface KeygenOptions {
  home: string;
  keyId: string;
  passphrase: string;
  timeoutMs?: number;
  log: Logger;
  /** One line of human progress. */
  progress: (line: string) => void;
  scryptLogN?: number;
}

export interface KeygenResult {
  keyId: string;
  publicKey: string;
  address: string;
  threshold: number;
  parties: { index: number; org: string; peerId: string }[];
  file: string;
  ms: number;
}

/** Ack kind meaning "I hold every member's ack": the sender's key is committed. */
const ALL_ACKED = 'keygen/all-acked';
const ACK_GRACE_MS = 20_000;

export async function runKeygen(opts: KeygenOptions): Promise<KeygenResult> {
  const t0 = performance.now();
  if (!KEY_ID.test(opts.keyId)) throw new CeremonyError(`key name "${opts.keyId}" must be 1–64 of a-z, 0-9, "_" or "-", starting with a letter or digit`);
  const timeoutMs = opts.timeoutMs ?? 300_000;
  // Its frames must not outlive the replay window of the peers (net/replay-guard.ts).
  if (!(timeoutMs > 0 && timeoutMs <= MAX_CEREMONY_TIMEOUT_MS)) throw new CeremonyError(`--timeout must be between 1 and ${MAX_CEREMONY_TIMEOUT_MS / 1000} seconds`);
  const out = shareFile(opts.home, opts.keyId);
  if (existsSync(out)) throw new CeremonyError(`key "${opts.keyId}" already exists at ${out}; choose another name or use "potluck refresh"`);
  rmSync(`${out}.pending`, { force: true }); // an earlier attempt that was never acknowledged
  const { key, info } = loadIdentity(opts.home);
  const defPath = join(opts.home, 'cluster.json');
  if (!existsSync(defPath)) throw new CeremonyError(`no cluster definition at ${defPath}: copy the signed definition there`);
  const def = parseDefinition(readFileSync(defPath, 'utf8'), defPath);
  await requireFullySigned(def);
  const members = membersOf(def);
  const self = members.find((m) => m.peerId === info.peerId);
  if (!self) throw new CeremonyError(`this peer (${info.peerId}) is not a member of cluster ${def.name}`);
  const clusterHash = definitionHash(def);
  const deadline = Date.now() + timeoutMs;

  const node = await PeerNode.start({ privateKey: key, listen: info.addresses, allowed: new Set(members.map((m) => m.peerId)), clusterHash }).catch((e: Error) => {
    throw new CeremonyError(`cannot listen on ${info.addresses.join(', ')} (${e.message}); is "potluck start" running on this home? Stop it for the ceremony`);
  });
  const joinSession = hash32('keygen/join', clusterHash, new TextEncoder().encode(opts.keyId));
  const myNonce = systemRng(32);
  const joins = new Map<number, Uint8Array>([[self.index, myNonce]]);
  let started = false;
  // Bounded by the members: the latest ack of each (an older one is replaced), and who holds all acks.
  const acks = new Map<number, CeremonyAck>();
  const allAcked = new Set<number>();
  let ackWake: () => void = () => undefined;
  let allJoined: () => void = () => undefined;
  const joined = new Promise<void>((r) => (allJoined = r));
  // Issue 5: the DKG's public transcript and the committed key go into this peer's audit log.
  const audit = AuditRecorder.open(opts.home, clusterHash, self.peerId, key, opts.log);
  const host = new SessionHost({
    self, secretKey: key, members, clusterHash, log: opts.log,
    transcript: (e) => audit.transcript(e),
    onControl: (from, session, c) => {
      if (c.case === 'ack' && c.value.kind === 'keygen' && c.value.keyId === opts.keyId) {
        acks.set(from.index, c.value);
        ackWake();
        return;
      }
      if (c.case === 'ack' && c.value.kind === ALL_ACKED && c.value.keyId === opts.keyId) {
        allAcked.add(from.index);
        return;
      }
      // A keygen join carries no parameters (the definition is the agreement).
      if (c.case !== 'join' || c.value.kind !== 'keygen' || c.value.keyId !== opts.keyId || Buffer.compare(session, joinSession) !== 0 || c.value.params.length || started) return;
      if (!joins.has(from.index)) opts.progress(`joined: ${from.org} (${joins.size + 1}/${members.length})`);
      joins.set(from.index, c.value.nonce);
      if (joins.size === members.length) allJoined();
    },
  });
  const mesh = await Mesh.start({ node, members: new Map(members.filter((m) => m !== self).map((m) => [m.peerId, m.addresses])), onFrame: (p, f) => host.onFrame(p, f), onStreamLost: (p) => host.peerUp(p) });
  host.mesh = mesh;
  node.onPeer('up', (peer) => host.peerUp(peer));
  try {
    for (const m of members) if (m !== self) host.sendControl(m.index, joinSession, { case: 'join', value: { kind: 'keygen', keyId: opts.keyId, nonce: myNonce, params: new Uint8Array(0) } }, deadline);
    mesh.keepConnected(500);
    opts.progress(`keygen "${opts.keyId}": ${def.threshold}-of-${members.length}, waiting for every member to join`);
    const waiting = setInterval(() => {
      const missing = members.filter((m) => !joins.has(m.index));
      if (missing.length) opts.progress(`waiting for: ${missing.map((m) => m.org).join(', ')}`);
    }, 5000);
    try {
      await Promise.race([
        joined,
        new Promise<never>((_, rej) => setTimeout(() => rej(new CeremonyError(`keygen timed out before the start waiting for: ${members.filter((m) => !joins.has(m.index)).map((m) => `${m.org} (${m.peerId})`).join(', ')}`)), Math.max(0, deadline - Date.now())).unref()),
      ]);
    } finally {
      clearInterval(waiting);
    }
    started = true;
    host.forgetControl(joinSession);
    const order = partyOrder(members);
    const nonce = hash32('keygen/nonce', joinSession, ...members.map((m) => joins.get(m.index)!));
    const all = order.map((_, k) => k + 1);
    const req: DealingRequest = { kind: 'keygen', keyId: opts.keyId, epoch: 0, threshold: def.threshold, participants: order.map((m) => m.publicKey), dealers: all, receivers: all, nonce };
    const parties = new Map(order.map((m, k) => [k + 1, m.index]));
    const selfParty = order.indexOf(self) + 1;
    opts.progress(`everyone joined; running the DKG (4 rounds)`);
    let lastRound = 1;
    const output = await host
      .run({
        id: dealingInstanceId(req), protocol: 'dkls23/dkg/v1', what: `keygen "${opts.keyId}"`, machine: new DealingSession(req, selfParty), parties, deadline, rng: systemRng,
        onProgress: (from: Member, p) => {
          opts.progress(`round ${lastRound}/${p.rounds}: received from ${from.org}`);
          if (p.round !== lastRound) {
            lastRound = p.round;
            opts.progress(`round ${p.round}/${p.rounds}: waiting for ${p.waitingFor.map((m) => m.org).join(', ')}`);
          }
        },
      })
      .catch((e: Error) => {
        if (e instanceof SessionTimeoutError) throw new CeremonyError(e.message);
        throw new CeremonyError(`keygen failed: ${e.message}`);
      });
    const share = output.share!;
    // Two-step commit: the share is written as pending, every member acknowledges holding its
    // own, and only then does it become the key. A member that never acknowledges (it failed)
    // leaves everyone without a key rather than with a partial one.
    const pending = `${out}.pending`;
    writeDurable(pending, sealKeyShare(share, opts.passphrase, systemRng, { ...DEFAULT_SCRYPT, logN: opts.scryptLogN ?? DEFAULT_SCRYPT.logN }));
    // The ack names the outcome (issue 12): the public shares and the round-4 echo, as well as the key.
    const ack: CeremonyAck = { kind: 'keygen', keyId: opts.keyId, epoch: 0, dkgSessionId: share.dkgSid, publicKey: share.publicKey.toBytes(true), publicSharesHash: publicSharesHash(output.publicShares), echo: output.echo };
    const same = (a: CeremonyAck) => sameOutcome(a, ack);
    const ackDeadline = Math.max(deadline, Date.now() + 30_000);
    for (const m of members) if (m !== self) host.sendControl(m.index, share.dkgSid, { case: 'ack', value: ack }, ackDeadline);
    opts.progress('DKG done; waiting for every member to acknowledge its share');
    const missingAcks = () => members.filter((m) => m !== self && !(acks.has(m.index) && same(acks.get(m.index)!)));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new CeremonyError(`keygen not acknowledged by: ${missingAcks().map((m) => `${m.org} (${m.peerId})`).join(', ')}; no key was kept, rerun keygen`)), ackDeadline - Date.now());
      ackWake = () => {
        // A member acknowledging another outcome of this DKG saw different public data: no key.
        const other = members.find((m) => m !== self && acks.get(m.index) !== undefined && Buffer.compare(acks.get(m.index)!.dkgSessionId, ack.dkgSessionId) === 0 && !same(acks.get(m.index)!));
        if (other) {
          clearTimeout(timer);
          reject(new CeremonyError(`keygen: ${other.org} acknowledged another outcome (its public shares or round-4 echo differ from ours); no key was kept, rerun keygen`));
        } else if (missingAcks().length === 0) {
          clearTimeout(timer);
          resolve();
        }
      };
      ackWake();
    }).catch((e: Error) => {
      rmSync(pending, { force: true });
      throw e;
    });
    renameSync(pending, out);
    fsyncDir(out);
    audit.key(share, 'keygen');
    // Our ack may have been lost with a stream that closed under it. Before leaving, tell everyone
    // we hold all acks, and keep resending our own ack to each member until it says the same
    // (or a grace period ends: the key is committed here either way, and a member that still
    // lacks our ack reports it and keeps no key).
    for (const m of members) if (m !== self) host.sendControl(m.index, share.dkgSid, { case: 'ack', value: { ...ack, kind: ALL_ACKED } }, Date.now() + ACK_GRACE_MS);
    const graceUntil = Date.now() + ACK_GRACE_MS;
    let resend = Date.now() + 2000;
    const unconfirmed = () => members.filter((m) => m !== self && (!allAcked.has(m.index) || mesh.queued(m.peerId) > 0));
    while (unconfirmed().length && Date.now() < graceUntil) {
      if (Date.now() >= resend) {
        resend = Date.now() + 2000;
        for (const m of unconfirmed()) host.sendControl(m.index, share.dkgSid, { case: 'ack', value: ack }, graceUntil);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    if (unconfirmed().length) opts.log.warn({ peers: unconfirmed().map((m) => m.org) }, 'keygen: these members did not confirm holding every acknowledgement; they report it themselves if they lack ours');
    await new Promise((r) => setTimeout(r, 300));
    return {
      keyId: opts.keyId, publicKey: '0x' + Buffer.from(share.publicKey.toBytes(false)).toString('hex'), address: ethAddress(share.publicKey), threshold: share.threshold,
      parties: order.map((m, k) => ({ index: k + 1, org: m.org, peerId: m.peerId })), file: out, ms: Math.round(performance.now() - t0),
    };
  } finally {
    await mesh.stop();
    await node.stop();
    audit.close();
  }
}
