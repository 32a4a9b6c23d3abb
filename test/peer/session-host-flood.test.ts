import { test } from 'node:test';
import assert from 'node:assert/strict';
import { systemRng } from '../../src/crypto/random.ts';
import { MAX_PAYLOAD_BYTES, sealEnvelope } from '../../src/net/envelope.ts';
import { REPLAY_PAIRS_PER_SENDER } from '../../src/net/replay-guard.ts';
import { encodeBody } from '../../src/protocol/messages.ts';
import type { KeyShare } from '../../src/protocol/key-share.ts';
import { PairSetupSession } from '../../src/protocol/pair-setup.ts';
import { encodeParams } from '../../src/peer/ceremony-params.ts';
import { CONTROL_PROTOCOL, encodeControl, type Control } from '../../src/peer/control.ts';
import { CeremonyCoordinator, MAX_ACKS_PER_MEMBER, MAX_JOINS_PER_MEMBER, joinSessionOf } from '../../src/peer/dealing-ceremony.ts';
import { CONTROL_RESEND_BUDGET, EARLY_BUDGET, LINGER_BUDGET, type HostBufferStats } from '../../src/peer/session-host.ts';
import { TOY_PROTOCOL, ToySession, cluster, host, quiet, wire } from './toy-session.ts';

/**
 * A member floods an honest peer's session host, in process, with real envelopes signed by its
 * own identity key (issue 11): oversized frames, replays, frames for sessions that never start,
 * bogus control messages, bogus ceremony joins and acks. Throughout, every buffer stays within
 * its per-peer budget (asserted on the data structures, not on RSS or time), and sessions
 * between the two honest members keep completing. A few seconds by default; a minute with
 * POTLUCK_LONG_TESTS=1.
 */
const LONG = process.env.POTLUCK_LONG_TESTS === '1';

test(`a flooding member cannot grow an honest host's buffers past their budgets, and honest sessions complete (${LONG ? '60 s' : 'a few seconds'})`, { timeout: LONG ? 300_000 : 120_000 }, async () => {
  const c = await cluster(3);
  const evil = c.members[2]!;
  const drops = new Map<string, number>();
  const controls = new Map<string, number>();
  let coord: CeremonyCoordinator;
  const h1 = host(c, 1, {
    onDrop: (m, e) => {
      const why = e.message.replace(/(?<=[ (])\d+/g, 'N'); // numbers after a space or "(": sizes, party
      if (m === evil) drops.set(why, (drops.get(why) ?? 0) + 1);
    },
    onControl: (from, session, ctl) => {
      controls.set(ctl.case, (controls.get(ctl.case) ?? 0) + 1);
      coord.onControl(from, session, ctl);
    },
  });
  coord = new CeremonyCoordinator({ home: '/nonexistent', passphrase: 'x', log: quiet, rng: systemRng, host: h1, self: c.members[0]!, clusterHash: c.clusterHash, members: c.members, isConnected: () => true });
  const h2 = host(c, 2);
  wire(new Map([[1, h1], [2, h2]]), c.members);

  let seq = Date.now() * 1024;
  const seal = (protocol: string, session: Uint8Array, payload: Uint8Array) => sealEnvelope({ clusterHash: c.clusterHash, protocol, session, from: 3, to: 1, seq: seq++, payload }, c.keys[2]!);
  const z = (n: number) => new Uint8Array(n);
  const control = (ctl: Control) => seal(CONTROL_PROTOCOL, systemRng(32), encodeControl(ctl));
  const signCommit = encodeBody({ case: 'signCommit', value: { instanceId: z(32), sessionNonce: z(32), commitment: z(32) } });
  const signMultiply = (extra: number) => encodeBody({ case: 'signMultiply', value: { sessionId: z(32), echo: z(32), aTilde: z(49_152 + extra), etaPrime: z(32), mu: z(64), pk: z(33), bigR: z(33), blind: z(32), gammaU: z(33), gammaV: z(33), psi: z(32) } });
  // Sealed once, sent again and again.
  const oversized = seal(TOY_PROTOCOL, systemRng(32), signMultiply(1));
  const huge = seal('dkls23/online/v1', systemRng(32), encodeBody({ case: 'signPartial', value: { sessionId: z(32), digest: z(32), u: z(32), w: z(MAX_PAYLOAD_BYTES - 200) } }));
  const replayed = seal(TOY_PROTOCOL, systemRng(32), signCommit);

  const peak = { early: 0, earlyBytes: 0, control: 0, lingering: 0, lingeringBytes: 0, pairs: 0, joins: 0, acks: 0 };
  const observe = () => {
    const s: HostBufferStats = h1.bufferStats();
    const k = coord.stats();
    peak.early = Math.max(peak.early, s.early.maxFramesPerMember);
    peak.earlyBytes = Math.max(peak.earlyBytes, s.early.maxBytesPerMember);
    peak.control = Math.max(peak.control, s.controlSent.maxFramesPerMember);
    peak.lingering = Math.max(peak.lingering, s.lingering.maxFramesPerMember);
    peak.lingeringBytes = Math.max(peak.lingeringBytes, s.lingering.maxBytesPerMember);
    peak.pairs = Math.max(peak.pairs, s.replay.maxPairsPerSender);
    peak.joins = Math.max(peak.joins, k.joins);
    peak.acks = Math.max(peak.acks, k.acks);
  };

  // Honest sessions between members 1 and 2, one after another, for as long as the flood lasts.
  let flooding = true;
  const outcomes: string[] = [];
  const honest = (async () => {
    while (flooding) {
      const id = systemRng(32);
      const run = (h: typeof h1, i: number) => h.run({ id, protocol: TOY_PROTOCOL, what: 'toy', machine: new ToySession(i, [1, 2], id), parties: new Map([[1, 1], [2, 2]]), deadline: Date.now() + 60_000, rng: systemRng });
      outcomes.push(...(await Promise.all([run(h1, 1), run(h2, 2)])));
    }
  })();

  // The long run also redoes a real OT setup (pair re-setup, ~54 KB each way) during the flood.
  // Its machine reads only the share's public index, parties, dkgSid and epoch.
  const fakeShare = (index: number) => ({ index, parties: [z(32), z(32)], dkgSid: z(32).fill(7), epoch: 0 }) as unknown as KeyShare;
  const pairNonce = systemRng(32);
  const pairId = systemRng(32);
  const pairSetup = LONG
    ? Promise.all([h1, h2].map((h, k) => h.run({ id: pairId, protocol: 'dkls23/pair-setup/v1', what: 'pair setup', machine: new PairSetupSession(fakeShare(k + 1), 2 - k, pairNonce), parties: new Map([[1, 1], [2, 2]]), deadline: Date.now() + 240_000, rng: systemRng })))
    : Promise.resolve([]);

  const until = Date.now() + (LONG ? 60_000 : 0);
  const rounds = LONG ? Number.POSITIVE_INFINITY : 300;
  for (let r = 0; r < rounds && (!LONG || Date.now() < until); r++) {
    h1.onFrame(evil.peerId, oversized);
    if (r % 25 === 0) h1.onFrame(evil.peerId, huge);
    for (let i = 0; i < 8; i++) h1.onFrame(evil.peerId, replayed);
    for (let i = 0; i < 6; i++) h1.onFrame(evil.peerId, seal(TOY_PROTOCOL, systemRng(32), signCommit)); // sessions that never start
    h1.onFrame(evil.peerId, seal(TOY_PROTOCOL, systemRng(32), signMultiply(0)));
    // Control messages: garbled, oversized, and well-formed ones the daemon would decline.
    h1.onFrame(evil.peerId, seal(CONTROL_PROTOCOL, systemRng(32), z(40).fill(0x0a)));
    h1.onFrame(evil.peerId, control({ case: 'decision', value: { session: z(32), accept: false, reason: 'x'.repeat(5000), code: '' } }));
    h1.onFrame(evil.peerId, control({ case: 'presignProposal', value: { keyId: 'k', epoch: 0, signers: [1, 3], owner: 3, nonce: systemRng(32) } }));
    // Ceremony joins for made-up keys (valid, on the right session), on wrong sessions, with junk parameters; acks for made-up DKGs.
    const keyId = `k${r}`;
    const params = encodeParams({ v: 1, kind: 'refresh', keyId, epoch: 1, oldThreshold: 2, threshold: 2, publicKey: '02' + '11'.repeat(32), holders: [], remove: [], add: [], tag: '' });
    h1.onFrame(evil.peerId, seal(CONTROL_PROTOCOL, joinSessionOf(c.clusterHash, 'refresh', keyId), encodeControl({ case: 'join', value: { kind: 'refresh', keyId, nonce: systemRng(32), params } })));
    h1.onFrame(evil.peerId, control({ case: 'join', value: { kind: 'reshare', keyId, nonce: systemRng(32), params } }));
    h1.onFrame(evil.peerId, seal(CONTROL_PROTOCOL, joinSessionOf(c.clusterHash, 'refresh', keyId), encodeControl({ case: 'join', value: { kind: 'refresh', keyId, nonce: systemRng(32), params: systemRng(3000) } })));
    h1.onFrame(evil.peerId, control({ case: 'ack', value: { kind: 'refresh', keyId, epoch: 1, dkgSessionId: systemRng(32), publicKey: z(33), publicSharesHash: z(32), echo: z(32) } }));
    observe();
    await new Promise((res) => setImmediate(res));
  }
  flooding = false;
  await honest;
  assert.equal((await pairSetup).length, LONG ? 2 : 0);
  observe();

  if (process.env.FLOOD_DEBUG) console.log(JSON.stringify({ peak, honest: outcomes.length / 2, stats: h1.bufferStats(), ceremony: coord.stats() }));
  // Every buffer stayed within its budget throughout.
  assert.ok(peak.early <= EARLY_BUDGET.frames && peak.earlyBytes <= EARLY_BUDGET.bytes, JSON.stringify(peak));
  assert.ok(peak.control <= CONTROL_RESEND_BUDGET.frames && peak.lingering <= LINGER_BUDGET.frames && peak.lingeringBytes <= LINGER_BUDGET.bytes, JSON.stringify(peak));
  assert.ok(peak.pairs <= REPLAY_PAIRS_PER_SENDER, JSON.stringify(peak));
  assert.ok(peak.joins <= MAX_JOINS_PER_MEMBER * c.members.length && peak.acks <= MAX_ACKS_PER_MEMBER * c.members.length, JSON.stringify(peak));
  // The flood did reach the budgets: early frames were evicted, not merely few.
  assert.equal(peak.early === EARLY_BUDGET.frames || peak.earlyBytes > EARLY_BUDGET.bytes - 60_000, true, JSON.stringify(peak));
  // Each kind of junk was refused for its own reason.
  for (const why of [
    'decode: dkls23/presign/v1 signMultiply payload of N bytes exceeds its limit of N bytes',
    'decode: dkls23/online/v1 signPartial payload of N bytes exceeds its limit of N bytes',
    'unexpected-message: replayed envelope (party N)',
    'decode: control decision payload of N bytes exceeds its limit of N bytes',
  ]) assert.ok((drops.get(why) ?? 0) > 0, `no drop "${why}" in ${JSON.stringify([...drops])}`);
  assert.deepEqual(coord.stats().refused, { 'join-session': controls.get('join')! / 3, 'join-params': controls.get('join')! / 3 });
  // Honest sessions completed all along, none timed out.
  assert.ok(outcomes.length >= 2);
  assert.deepEqual(new Set(outcomes), new Set(['done:1', 'done:2']));
});
