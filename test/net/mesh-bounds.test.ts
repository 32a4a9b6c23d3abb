import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id';
import type { Connection, PrivateKey, Stream } from '@libp2p/interface';
import { lpStream } from '@libp2p/utils';
import { multiaddr } from '@multiformats/multiaddr';
import { BackpressureError, ENVELOPE_PROTOCOL, MAX_QUEUE_FRAMES, MAX_READERS_PER_PEER, Mesh } from '../../src/net/mesh.ts';
import { MAX_CONNECTIONS_PER_PEER, PeerNode } from '../../src/net/peer-node.ts';

/** The mesh's per-peer bounds (issue 11), on real libp2p nodes over loopback. */
const clusterHash = new Uint8Array(32).fill(3);
let keys: PrivateKey[];
let allowed: Set<string>;
const nodes: PeerNode[] = [];
const meshes: Mesh[] = [];
const start = async (k: PrivateKey) => {
  const n = await PeerNode.start({ privateKey: k, listen: ['/ip4/127.0.0.1/tcp/0'], allowed, clusterHash });
  nodes.push(n);
  return n;
};
const addrOf = (n: PeerNode) => n.addresses.find((a) => a.includes('/tcp/'))!;
/** Poll until `cond` holds (at most 3000 × 10 ms); network events settle at their own pace. */
async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 3000 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
}

before(async () => {
  keys = await Promise.all([1, 2, 3].map(() => generateKeyPair('Ed25519')));
  allowed = new Set(keys.map((k) => peerIdFromPrivateKey(k).toString()));
});
after(async () => {
  for (const m of meshes) await m.stop();
  await Promise.all(nodes.map((n) => n.stop()));
});

test(`one member holds at most ${MAX_CONNECTIONS_PER_PEER} open connections with us; a new one replaces its oldest`, async () => {
  const a = await start(keys[0]!), b = await start(keys[1]!);
  const conns: Connection[] = [];
  // One more than the maximum (libp2p itself also limits a host to 5 inbound connections a second).
  for (let i = 0; i < MAX_CONNECTIONS_PER_PEER + 1; i++) conns.push(await b.node.dial(multiaddr(addrOf(a)), { force: true }));
  const openAtA = () => a.node.getConnections(b.node.peerId).filter((x) => x.status === 'open').length;
  await until(() => openAtA() === MAX_CONNECTIONS_PER_PEER && conns.filter((x) => x.status === 'open').length === MAX_CONNECTIONS_PER_PEER);
  assert.equal(openAtA(), MAX_CONNECTIONS_PER_PEER);
  assert.deepEqual(conns.map((x) => x.status === 'open'), [false, true, true, true, true]);
});

test(`at most ${MAX_READERS_PER_PEER} inbound streams are read per peer: a newer stream replaces the oldest`, async () => {
  const a = await start(keys[0]!), b = await start(keys[1]!);
  const got: string[] = [];
  const mesh = await Mesh.start({ node: a, members: new Map([[b.peerId, [addrOf(b)]]]), onFrame: (_p, f) => got.push(new TextDecoder().decode(f)) });
  meshes.push(mesh);
  await b.connect(addrOf(a));
  const streams: Stream[] = [];
  for (let i = 0; i < MAX_READERS_PER_PEER + 2; i++) streams.push(await b.node.dialProtocol(peerIdFromString(a.peerId), ENVELOPE_PROTOCOL));
  await until(() => streams.filter((x) => x.status === 'open').length === MAX_READERS_PER_PEER);
  assert.equal(mesh.readerCount(b.peerId), MAX_READERS_PER_PEER);
  assert.deepEqual(streams.map((s) => s.status === 'open'), [false, false, true, true, true, true]);
  await lpStream(streams.at(-1)!).write(new TextEncoder().encode('newest'));
  await until(() => got.length > 0);
  assert.deepEqual(got, ['newest']);
});

test(`an outbound queue holds at most ${MAX_QUEUE_FRAMES} frames; expired ones are purged to make room`, async () => {
  const a = await start(keys[0]!);
  let now = 1_000_000;
  const away = peerIdFromPrivateKey(keys[2]!).toString(); // never reachable: its frames pile up
  const mesh = await Mesh.start({ node: a, members: new Map([[away, ['/ip4/127.0.0.1/tcp/1']]]), onFrame: () => undefined, now: () => now });
  meshes.push(mesh);
  const frame = new Uint8Array(200);
  for (let i = 0; i < MAX_QUEUE_FRAMES; i++) mesh.send(away, frame, now + 1000);
  assert.throws(() => mesh.send(away, frame, now + 1000), (e: unknown) => e instanceof BackpressureError && e.message === `outbound queue to ${away} is full (${MAX_QUEUE_FRAMES} frames); the peer is not reading`);
  now += 2000;
  mesh.send(away, frame, now + 1000);
  assert.ok(mesh.queuedFrames(away) <= 2, `${mesh.queuedFrames(away)} frames queued`);
  assert.ok(mesh.queued(away) <= 400);
});
