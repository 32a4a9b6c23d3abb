import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sealEnvelope } from '../../src/net/envelope.ts';
import { maxBodyBytes } from '../../src/net/payload-limits.ts';
import { DealingSession, type DealingRequest } from '../../src/protocol/dkg.ts';
import { encodeBody } from '../../src/protocol/messages.ts';
import { systemRng } from '../../src/crypto/random.ts';
import { CONTROL_MAX_BYTES, CONTROL_PROTOCOL, encodeControl } from '../../src/peer/control.ts';
import { CONTROL_RESEND_BUDGET, EARLY_BUDGET, EARLY_TTL_MS, LINGER_BUDGET, SessionHost } from '../../src/peer/session-host.ts';
import { TOY_PROTOCOL, ToySession, cluster, host, wire, type Cluster } from './toy-session.ts';

/**
 * The session host's bounds (issue 11): payload limits checked before the signature, per-peer
 * budgets for early frames, control resends and lingering flights, their expiry, per-member
 * session counts, and resends of a live session's frames through the replay guard.
 */
let c: Cluster;
before(async () => {
  c = await cluster(3);
});

const z = (n: number) => new Uint8Array(n);
/** A signMultiply of exactly `size` bytes (its aTilde field padded or cut to fit). */
function signMultiply(size: number): Uint8Array {
  const full = maxBodyBytes('signMultiply', { parties: 2, threshold: 2, oldParties: 2 });
  return encodeBody({ case: 'signMultiply', value: { sessionId: z(32), echo: z(32), aTilde: z(49_152 + size - full), etaPrime: z(32), mu: z(64), pk: z(33), bigR: z(33), blind: z(32), gammaU: z(33), gammaV: z(33), psi: z(32) } });
}

/** Seals as member `from` towards member `to` with its own sequence numbers. */
function attacker(from: number, to = 1) {
  let seq = Date.now() * 1024;
  return (protocol: string, session: Uint8Array, payload: Uint8Array, key = c.keys[from - 1]!) =>
    sealEnvelope({ clusterHash: c.clusterHash, protocol, session, from, to, seq: seq++, payload }, key);
}

/** Wait (event-loop turns, not time) until `cond` holds. */
async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 100_000 && !cond(); i++) await new Promise((r) => setImmediate(r));
  assert.ok(cond());
}

function recording(over: Parameters<typeof host>[2] = {}): { h: SessionHost; drops: string[] } {
  const drops: string[] = [];
  const h = host(c, 1, { onDrop: (_m, e) => drops.push(e.message), ...over });
  return { h, drops };
}

describe('payload limits, before the signature', () => {
  test('the limits of the presign kinds are their exact lengths', () => {
    const shape = { parties: 3, threshold: 2, oldParties: 3 };
    assert.deepEqual(['signCommit', 'signExtension', 'signMultiply'].map((k) => maxBodyBytes(k as 'signCommit', shape)), [104, 9311, 49_536]);
  });

  test('an oversized frame is dropped with the exact reason, even with a forged signature, and nothing is buffered', () => {
    const { h, drops } = recording();
    const seal = attacker(3);
    h.onFrame('peer-3', seal(TOY_PROTOCOL, systemRng(32), signMultiply(49_537), c.keys[1]!)); // signed with member 2's key
    h.onFrame('peer-3', seal(TOY_PROTOCOL, systemRng(32), signMultiply(49_536)));
    assert.deepEqual(drops, ['decode: dkls23/presign/v1 signMultiply payload of 49537 bytes exceeds its limit of 49536 bytes']);
    assert.equal(h.bufferStats().early.frames, 1);
  });

  test("a running DKG's frames are held to the session's own (n, t); buffered ones are re-checked when it starts", () => {
    const { h, drops } = recording();
    const order = [...c.members.slice(0, 2)].sort((a, b) => Buffer.compare(a.publicKey, b.publicKey));
    const req: DealingRequest = { kind: 'keygen', keyId: 'k', epoch: 0, threshold: 2, participants: order.map((m) => m.publicKey), dealers: [1, 2], receivers: [1, 2], nonce: z(32) };
    const self = order.findIndex((m) => m.index === 1) + 1;
    const id = systemRng(32);
    // Sized for the cluster (n = 3: three old public shares), one byte over what a 2-party session can send.
    const exact = maxBodyBytes('keygenReveal', { parties: 2, threshold: 2, oldParties: 3 });
    const revealWith = (old: number) => encodeBody({ case: 'keygenReveal', value: { sessionId: z(32), echo: z(32), feldman: z(66), decommitment: z(32), proofs: z(130), oldPublic: z(old) } });
    const reveal = (size: number) => {
      let old = 0;
      while (revealWith(old).length < size) old++;
      return revealWith(old);
    };
    assert.equal(reveal(exact + 1).length, exact + 1);
    const seal = attacker(2);
    h.onFrame('peer-2', seal('dkls23/dkg/v1', id, reveal(exact + 1))); // early: under the cluster-wide limit
    assert.equal(h.bufferStats().early.frames, 1);
    void h.run({ id, protocol: 'dkls23/dkg/v1', what: 'keygen', machine: new DealingSession(req, self), parties: new Map(order.map((m, k) => [k + 1, m.index])), deadline: Date.now() + 60_000, rng: systemRng }).catch(() => undefined);
    h.onFrame('peer-2', seal('dkls23/dkg/v1', id, reveal(exact + 1)));
    const why = `decode: dkls23/dkg/v1 keygenReveal payload of ${exact + 1} bytes exceeds its limit of ${exact} bytes`;
    assert.deepEqual(drops, [why, why]);
    h.fail(id, new Error('done'));
  });

  test('a control message over its case limit is dropped naming the case; an unknown protocol too', () => {
    const { h, drops } = recording();
    const seal = attacker(2);
    const reason = 'x'.repeat(5000);
    const big = encodeControl({ case: 'decision', value: { session: z(32), accept: false, reason, code: '' } });
    h.onFrame('peer-2', seal(CONTROL_PROTOCOL, z(32), big));
    h.onFrame('peer-2', seal('potluck/other/v1', z(32), z(10)));
    assert.deepEqual(drops, [`decode: control decision payload of ${big.length} bytes exceeds its limit of ${CONTROL_MAX_BYTES.decision} bytes`, 'unexpected-message: protocol "potluck/other/v1" is not spoken here']);
  });
});

describe('per-peer budgets', () => {
  test('early frames: at most 1024 frames and 4 MiB per peer, oldest evicted first; another peer keeps its own budget', () => {
    const { h } = recording();
    const seal = attacker(3);
    for (let i = 0; i < 1500; i++) h.onFrame('peer-3', seal(TOY_PROTOCOL, systemRng(32), encodeBody({ case: 'signCommit', value: { instanceId: z(32), sessionNonce: z(32), commitment: z(32) } })));
    let s = h.bufferStats().early;
    assert.equal(s.maxFramesPerMember, EARLY_BUDGET.frames);
    assert.equal(s.evicted, 1500 - 1024);
    const big = signMultiply(49_536);
    for (let i = 0; i < 120; i++) h.onFrame('peer-3', seal(TOY_PROTOCOL, systemRng(32), big));
    s = h.bufferStats().early;
    assert.ok(s.maxBytesPerMember <= EARLY_BUDGET.bytes, `${s.maxBytesPerMember} bytes held`);
    assert.equal(s.maxBytesPerMember > EARLY_BUDGET.bytes - 60_000, true); // full, not emptied
    h.onFrame('peer-2', attacker(2)(TOY_PROTOCOL, systemRng(32), big));
    assert.equal(h.bufferStats().early.frames, s.frames + 1);
    assert.deepEqual(EARLY_BUDGET, { frames: 1024, bytes: 4 << 20 });
  });

  test('early frames expire after 60 s (swept at the next frame)', () => {
    let now = 1_000_000;
    const { h } = recording({ now: () => now });
    const seal = attacker(3);
    for (let i = 0; i < 10; i++) h.onFrame('peer-3', seal(TOY_PROTOCOL, systemRng(32), signMultiply(49_536)));
    assert.equal(h.bufferStats().early.frames, 10);
    now += EARLY_TTL_MS + 1;
    h.onFrame('peer-3', seal(TOY_PROTOCOL, systemRng(32), signMultiply(49_536)));
    assert.deepEqual([h.bufferStats().early.frames, h.bufferStats().early.evicted], [1, 0]);
  });

  test('control messages kept for resending: at most 1024 per member, expired ones pruned without a reconnect', () => {
    let now = 2_000_000;
    const h = host(c, 1, { now: () => now });
    for (let i = 0; i < 1500; i++) h.sendControl(2, systemRng(32), { case: 'decision', value: { session: z(32), accept: false, reason: 'no', code: '' } }, now + 10_000);
    h.sendControl(3, systemRng(32), { case: 'decision', value: { session: z(32), accept: false, reason: 'no', code: '' } }, now + 10_000);
    let s = h.bufferStats().controlSent;
    assert.deepEqual([s.maxFramesPerMember, s.frames, s.evicted], [CONTROL_RESEND_BUDGET.frames, 1025, 1500 - 1024]);
    now += 10_001;
    h.sendControl(2, systemRng(32), { case: 'decision', value: { session: z(32), accept: false, reason: 'no', code: '' } }, now + 10_000);
    s = h.bufferStats().controlSent;
    assert.equal(s.frames, 1);
    assert.deepEqual(CONTROL_RESEND_BUDGET, { frames: 1024, bytes: 16 << 20 });
    assert.deepEqual(LINGER_BUDGET, { frames: 1024, bytes: 8 << 20 });
  });
});

describe('sessions between honest hosts', () => {
  test('running sessions are counted per participant and per proposer', async () => {
    const h = host(c, 1);
    const run = (id: number, parties: number[], proposer?: number) =>
      h.run({ id: z(32).fill(id), protocol: TOY_PROTOCOL, what: `toy ${id}`, machine: new ToySession(1, parties, z(32)), parties: new Map(parties.map((p) => [p, p])), deadline: Date.now() + 60_000, rng: systemRng, ...(proposer ? { proposer } : {}) }).catch(() => undefined);
    const all = [run(1, [1, 2], 2), run(2, [1, 2, 3], 2), run(3, [1, 3], 3), run(4, [1, 3])];
    assert.deepEqual([h.activeWith(1), h.activeWith(2), h.activeWith(3), h.activeProposedBy(2), h.activeProposedBy(3), h.activeProposedBy(1)], [0, 2, 3, 2, 1, 0]);
    h.fail(z(32).fill(2), new Error('stop'));
    assert.deepEqual([h.activeWith(2), h.activeWith(3), h.activeProposedBy(2)], [1, 2, 1]);
    for (const id of [1, 3, 4]) h.fail(z(32).fill(id), new Error('stop'));
    await Promise.all(all);
    assert.deepEqual([h.activeWith(2), h.activeWith(3), h.activeProposedBy(2), h.activeProposedBy(3)], [0, 0, 0, 0]);
  });

  test("a live session's lost frame is resent on reconnect and the session completes; the copies already delivered are dropped as replays", async () => {
    const drops: string[] = [];
    const hosts = new Map([1, 2].map((i) => [i, host(c, i, { onDrop: (_m, e) => drops.push(e.message) })]));
    let lost = 0;
    // Member 1's flight-2 frame to member 2 is lost once (a stream closed under it).
    wire(hosts, c.members, (from, to, frame) => {
      if (from !== 1 || to !== 2 || frame.length < 9000 || lost) return false;
      lost++;
      return true;
    });
    const id = systemRng(32);
    const runs = [1, 2].map((i) => hosts.get(i)!.run({ id, protocol: TOY_PROTOCOL, what: 'toy', machine: new ToySession(i, [1, 2], id), parties: new Map([[1, 1], [2, 2]]), deadline: Date.now() + 30_000, rng: systemRng }));
    await until(() => hosts.get(1)!.activeCount === 0); // member 1 is done; member 2 still waits for flight 2
    assert.equal(hosts.get(2)!.activeCount, 1);
    hosts.get(1)!.peerUp('peer-2'); // reconnect: lingering flights are resent
    assert.deepEqual(await Promise.all(runs), ['done:2', 'done:1']);
    assert.equal(lost, 1);
    assert.deepEqual(drops.filter((d) => !d.includes('already finished')), ['unexpected-message: replayed envelope (party 1)']);
    assert.equal(hosts.get(1)!.bufferStats().lingering.frames, 2);
  });
});

test('nothing outlives the replay window: a session deadline beyond 30 min is refused, a control expiry is cut to it', async () => {
  let now = 3_000_000;
  const h = host(c, 1, { now: () => now });
  const id = systemRng(32);
  await assert.rejects(h.run({ id, protocol: TOY_PROTOCOL, what: 'toy', machine: new ToySession(1, [1, 2], id), parties: new Map([[1, 1], [2, 2]]), deadline: now + 1_800_001, rng: systemRng }),
    (e: unknown) => e instanceof RangeError && e.message === 'toy: a deadline more than 1800 s away would outlive the replay window');
  h.sendControl(2, id, { case: 'decision', value: { session: z(32), accept: false, reason: 'no', code: '' } }, now + 10 * 3_600_000);
  now += 1_800_001;
  h.sendControl(3, systemRng(32), { case: 'decision', value: { session: z(32), accept: false, reason: 'no', code: '' } }, now + 1000); // sweeps
  assert.equal(h.bufferStats().controlSent.frames, 1);
});

test('progress is reported for accepted messages only, not for a peer repeating itself', async () => {
  const progress: string[] = [];
  const h = host(c, 1);
  const id = systemRng(32);
  void h.run({ id, protocol: TOY_PROTOCOL, what: 'toy', machine: new ToySession(1, [1, 2, 3], id), parties: new Map([[1, 1], [2, 2], [3, 3]]), deadline: Date.now() + 30_000, rng: systemRng, onProgress: (m, p) => progress.push(`${m.org}:${p.round}`) }).catch(() => undefined);
  const seal = attacker(2, 0); // a broadcast
  const commit = encodeBody({ case: 'signCommit', value: { instanceId: z(32), sessionNonce: z(32), commitment: z(32) } });
  for (let i = 0; i < 50; i++) h.onFrame('peer-2', seal(TOY_PROTOCOL, id, commit)); // 49 duplicates, each in a fresh envelope
  await h.drained(); // presign frames are processed one per event-loop turn
  assert.deepEqual(progress, ['org2:1']);
  assert.equal(h.stats.dropped, 49);
  h.fail(id, new Error('done'));
});

test('a DropError, never an abort: the oversized frame leaves a running session untouched', async () => {
  const hosts = new Map([1, 2].map((i) => [i, host(c, i)]));
  wire(hosts, c.members);
  const id = systemRng(32);
  const run = hosts.get(1)!.run({ id, protocol: TOY_PROTOCOL, what: 'toy', machine: new ToySession(1, [1, 2], id), parties: new Map([[1, 1], [2, 2]]), deadline: Date.now() + 30_000, rng: systemRng });
  hosts.get(1)!.onFrame('peer-2', attacker(2)(TOY_PROTOCOL, id, signMultiply(60_000)));
  void hosts.get(2)!.run({ id, protocol: TOY_PROTOCOL, what: 'toy', machine: new ToySession(2, [1, 2], id), parties: new Map([[1, 1], [2, 2]]), deadline: Date.now() + 30_000, rng: systemRng });
  assert.equal(await run, 'done:2');
  assert.equal(hosts.get(1)!.stats.dropped, 1);
});
