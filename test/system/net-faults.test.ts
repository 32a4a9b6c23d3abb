import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import type { PrivateKey } from '@libp2p/interface';
import pino from 'pino';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { seededRng, systemRng, type Rng } from '../../src/crypto/random.ts';
import type { Member } from '../../src/cluster/members.ts';
import { Mesh, type FaultHook } from '../../src/net/mesh.ts';
import { PeerNode } from '../../src/net/peer-node.ts';
import { ProtocolError } from '../../src/protocol/errors.ts';
import type { KeyShare } from '../../src/protocol/key-share.ts';
import { OnlineSession, PresignSession, signInstanceId, type Presignature, type Signature } from '../../src/protocol/sign.ts';
import { SessionHost, SessionTimeoutError } from '../../src/peer/session-host.ts';
import { keygen } from '../../src/sim/simulator.ts';

/**
 * Network faults injected in process (issue 3): three real libp2p nodes on loopback, each with a
 * SessionHost, and a fault hook on every outbound frame that drops, duplicates, delays
 * (reorders) or corrupts it. A session either completes with one valid signature at every
 * party or ends cleanly with a timeout: faults are never mistaken for an attack (no ABORT, no
 * BAN_PAIR), and no presignature ever yields two signatures.
 */
const N = 3;
let shares: Map<number, KeyShare>;
let keys: PrivateKey[];
const nodes: PeerNode[] = [];
const meshes: Mesh[] = [];
const hosts: SessionHost[] = [];
let fault: { drop: number; dup: number; maxDelay: number; corrupt: number; rng: Rng } = { drop: 0, dup: 0, maxDelay: 0, corrupt: 0, rng: seededRng('faults') };
const clusterHash = new Uint8Array(32).fill(9);
const silent = pino({ level: 'silent' });

const coin = (p: number) => fault.rng(2).reduce((a, b) => a * 256 + b, 0) / 65536 < p;
const hook: FaultHook = (_peer, frame) => {
  if (coin(fault.drop)) return [];
  const delay = () => (fault.maxDelay ? Math.floor((fault.rng(1)[0]! / 256) * fault.maxDelay) : 0);
  let f = frame;
  if (coin(fault.corrupt)) {
    f = frame.slice();
    f[Math.floor((fault.rng(1)[0]! / 256) * f.length)]! ^= 0x40;
  }
  const out = [{ frame: f, delayMs: delay() }];
  if (coin(fault.dup)) out.push({ frame: f, delayMs: delay() });
  return out;
};

before(async () => {
  shares = keygen(3, 3, { seed: 'net-faults' });
  keys = await Promise.all(Array.from({ length: N }, () => generateKeyPair('Ed25519')));
  const allowed = new Set(keys.map((k) => peerIdFromPrivateKey(k).toString()));
  for (const k of keys) nodes.push(await PeerNode.start({ privateKey: k, listen: ['/ip4/127.0.0.1/tcp/0'], allowed, clusterHash }));
  const members: Member[] = nodes.map((n, i) => ({ index: i + 1, org: `org${i + 1}`, peerId: n.peerId, publicKey: keys[i]!.publicKey.raw, addresses: [n.addresses.find((a) => a.includes('/tcp/'))!.replace(/\/p2p\/.*$/, '')] }));
  for (const [i, n] of nodes.entries()) {
    const host = new SessionHost({ self: members[i]!, secretKey: keys[i]!.raw.subarray(0, 32), members, clusterHash, log: silent, onControl: () => undefined });
    const mesh = await Mesh.start({ node: n, members: new Map(members.filter((m) => m.index !== i + 1).map((m) => [m.peerId, m.addresses])), onFrame: (p, f) => host.onFrame(p, f), onStreamLost: (p) => host.peerUp(p), fault: hook });
    host.mesh = mesh;
    n.onPeer('up', (p) => host.peerUp(p));
    hosts.push(host);
    meshes.push(mesh);
  }
  for (const m of meshes) m.keepConnected(200);
  const end = Date.now() + 10_000;
  while (!nodes.every((n, i) => members.every((m) => m.index === i + 1 || n.isVerified(m.peerId))) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
});
after(async () => {
  for (const m of meshes) await m.stop();
  await Promise.all(nodes.map((n) => n.stop()));
});

const signers = [1, 2, 3];
const parties = new Map(signers.map((i) => [i, i]));

/** Presign + online over the mesh at all three hosts; every party's outcome. */
async function signOnce(digest: Uint8Array, deadlineMs: number): Promise<{ presign: PromiseSettledResult<Presignature>[]; online?: PromiseSettledResult<Signature>[] }> {
  const request = systemRng(32);
  const id = signInstanceId(shares.get(1)!, { signers, request });
  const presign = await Promise.allSettled(hosts.map((h, k) => h.run({ id, protocol: 'dkls23/presign/v1', what: 'presign', machine: new PresignSession(shares.get(k + 1)!, { signers, request }), parties, deadline: Date.now() + deadlineMs, rng: systemRng })));
  if (presign.some((r) => r.status === 'rejected')) return { presign };
  const presigs = presign.map((r) => (r as PromiseFulfilledResult<Presignature>).value);
  const sid = presigs[0]!.sigSid;
  const online = await Promise.allSettled(hosts.map((h, k) => h.run({ id: sid, protocol: 'dkls23/online/v1', what: 'sign', machine: new OnlineSession(presigs[k]!, digest), parties, deadline: Date.now() + deadlineMs, rng: systemRng })));
  return { presign, online };
}

const pk = () => shares.get(1)!.publicKey.toBytes(true);
const failures = (rs: PromiseSettledResult<unknown>[]) => rs.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as Error);

function assertClean(errors: Error[]): void {
  for (const e of errors) {
    assert.ok(e instanceof SessionTimeoutError, `a fault must end in a timeout, not ${e.name}: ${e.message}`);
    assert.ok(!(e instanceof ProtocolError));
  }
}

test('duplicated and reordered messages: every session completes with one valid signature', async () => {
  fault = { drop: 0, dup: 0.3, maxDelay: 25, corrupt: 0, rng: seededRng('dup-reorder') };
  for (let i = 0; i < 6; i++) {
    const digest = systemRng(32);
    const { presign, online } = await signOnce(digest, 20_000);
    assert.deepEqual(failures(presign), []);
    assert.deepEqual(failures(online!), []);
    const sigs = online!.map((r) => (r as PromiseFulfilledResult<Signature>).value);
    for (const s of sigs) assert.equal(`${s.r}:${s.s}:${s.yParity}`, `${sigs[0]!.r}:${sigs[0]!.s}:${sigs[0]!.yParity}`);
    assert.ok(secp256k1.verify(new secp256k1.Signature(sigs[0]!.r, sigs[0]!.s).toBytes('compact'), digest, pk(), { prehash: false, lowS: true }));
  }
});

test('dropped, duplicated, delayed and corrupted messages: complete or time out cleanly, never two signatures per presignature', async () => {
  fault = { drop: 0.04, dup: 0.2, maxDelay: 20, corrupt: 0.04, rng: seededRng('lossy') };
  const rs = new Set<string>();
  let completed = 0, timedOut = 0;
  for (let i = 0; i < 8; i++) {
    const digest = systemRng(32);
    const { presign, online } = await signOnce(digest, 2500);
    assertClean(failures(presign));
    if (!online) {
      timedOut++;
      continue;
    }
    assertClean(failures(online));
    const sigs = online.filter((r): r is PromiseFulfilledResult<Signature> => r.status === 'fulfilled').map((r) => r.value);
    if (sigs.length < N) timedOut++;
    if (!sigs.length) continue;
    completed++;
    assert.equal(new Set(sigs.map((s) => `${s.r}:${s.s}`)).size, 1, 'one signature per presignature');
    assert.ok(!rs.has(sigs[0]!.r.toString(16)));
    rs.add(sigs[0]!.r.toString(16));
    assert.ok(secp256k1.verify(new secp256k1.Signature(sigs[0]!.r, sigs[0]!.s).toBytes('compact'), digest, pk(), { prehash: false, lowS: true }));
  }
  assert.equal(completed + timedOut >= 8, true);
  assert.ok(hosts.some((h) => h.stats.dropped > 0), 'corrupted envelopes were dropped, not aborted on');
});

test('a connection dropped mid-session is re-dialed and the session completes before its deadline', async () => {
  fault = { drop: 0, dup: 0, maxDelay: 5, corrupt: 0, rng: seededRng('hangup') };
  const pending = signOnce(systemRng(32), 30_000);
  await new Promise((r) => setTimeout(r, 30));
  for (const n of nodes.slice(1)) await nodes[0]!.node.hangUp(n.node.peerId); // every connection of member 1
  const { presign, online } = await pending;
  assert.deepEqual(failures(presign), []);
  assert.deepEqual(failures(online!), []);
  assert.ok(nodes.slice(1).every((n) => nodes[0]!.isVerified(n.peerId)), 'member 1 is connected again');
});

test('after the faults stop, sessions complete again', async () => {
  fault = { drop: 0, dup: 0, maxDelay: 0, corrupt: 0, rng: seededRng('clean') };
  const { presign, online } = await signOnce(systemRng(32), 20_000);
  assert.deepEqual(failures(presign), []);
  assert.deepEqual(failures(online!), []);
});
