import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import type { PrivateKey } from '@libp2p/interface';
import { multiaddr } from '@multiformats/multiaddr';
import { lpStream } from '@libp2p/utils';
import { HELLO_PROTOCOL, PROTOCOL_VERSION, PeerNode, SOFTWARE_VERSION, type PeerInfo } from '../../src/net/peer-node.ts';

// Issue 6: the hello carries each side's software version and wall clock; real libp2p nodes on loopback.
const clusterHash = new Uint8Array(32).fill(1);
const clusterHex = '01'.repeat(32);
let keys: PrivateKey[];
let allowed: Set<string>;
const nodes: PeerNode[] = [];
const start = async (k: PrivateKey, opts: { software?: string; now?: () => number } = {}) => {
  const n = await PeerNode.start({ privateKey: k, listen: ['/ip4/127.0.0.1/tcp/0'], allowed, clusterHash, ...opts });
  nodes.push(n);
  return n;
};
const addrOf = (n: PeerNode) => n.addresses.find((a) => a.includes('/tcp/'))!;
/** A wall clock that reads the given instants in turn (then stays at the last). */
const clock = (...ts: number[]) => {
  let i = 0;
  const now = () => ts[Math.min(i++, ts.length - 1)]!;
  return Object.assign(now, { reads: () => i });
};
/** The listener times the round trip by the dialer's close, after the hello: wait for it. */
async function infoWithClock(n: PeerNode, peer: string): Promise<PeerInfo | undefined> {
  for (let i = 0; i < 200 && n.peerInfo(peer)?.clockOffsetMs === undefined; i++) await sleep(10);
  return n.peerInfo(peer);
}
/** Speak the hello by hand: without `extra`, as a peer of this protocol version from before issue 6 (no software, no time). */
async function rawHello(from: PeerNode, to: PeerNode, extra: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  const stream = await from.node.dialProtocol(multiaddr(addrOf(to)), HELLO_PROTOCOL);
  const lp = lpStream(stream);
  await lp.write(new TextEncoder().encode(JSON.stringify({ version: PROTOCOL_VERSION, cluster: clusterHex, ...extra })));
  const reply = JSON.parse(new TextDecoder().decode((await lp.read()).subarray())) as Record<string, unknown>;
  await stream.close();
  return reply;
}

before(async () => {
  keys = await Promise.all(Array.from({ length: 9 }, () => 0).map(() => generateKeyPair('Ed25519')));
  allowed = new Set(keys.map((k) => peerIdFromPrivateKey(k).toString()));
});
after(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
});

test('both sides learn the other\'s software version and clock offset, corrected by half the round trip', async () => {
  // a sends at 1 000 000 and reads the reply at 1 000 300 (its clock); b receives at 1 005 150 and
  // sees a's close at 1 005 450 (its clock): 300 ms round trips, b 5 s ahead.
  const aClock = clock(1_000_000, 1_000_300);
  const bClock = clock(1_005_150, 1_005_450);
  const a = await start(keys[0]!, { software: '9.9.9-rc.1', now: aClock });
  const b = await start(keys[1]!, { now: bClock });
  assert.equal(await a.connect(addrOf(b)), b.peerId);
  assert.deepEqual(a.peerInfo(b.peerId), { software: SOFTWARE_VERSION, clockOffsetMs: 5000, rttMs: 300 });
  assert.deepEqual(await infoWithClock(b, a.peerId), { software: '9.9.9-rc.1', clockOffsetMs: -5000, rttMs: 300 });
  assert.equal(aClock.reads(), 2);
  assert.equal(bClock.reads(), 2);
});

test('with the real clock on one host, the estimates are about zero', async () => {
  const a = await start(keys[7]!), b = await start(keys[8]!);
  await a.connect(addrOf(b));
  const ab = a.peerInfo(b.peerId)!, ba = (await infoWithClock(b, a.peerId))!;
  // The dialer's estimate is within half its round trip of the true offset (0 here), by construction.
  assert.ok(Math.abs(ab.clockOffsetMs!) <= ab.rttMs! / 2, JSON.stringify(ab));
  assert.ok(Math.abs(ba.clockOffsetMs!) < 1000 && ba.rttMs! >= 0, JSON.stringify(ba));
});

test('the software version is the package version by default', async () => {
  assert.equal(SOFTWARE_VERSION, (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version);
});

test('a peer without the new fields (same protocol version) still connects; nothing is recorded for its clock', async () => {
  const a = await start(keys[2]!, { now: clock(2_000_000) });
  const b = await start(keys[3]!, { software: '0.1.0', now: clock(2_000_042) });
  const reply = await rawHello(a, b);
  // The reply carries the new fields; an old dialer ignores them.
  assert.deepEqual(reply, { ok: true, version: PROTOCOL_VERSION, cluster: clusterHex, software: '0.1.0', time: 2_000_042 });
  for (let i = 0; i < 100 && !b.isVerified(a.peerId); i++) await sleep(10);
  assert.equal(b.isVerified(a.peerId), true);
  await sleep(50);
  assert.deepEqual(b.peerInfo(a.peerId), {});

  // And a new dialer against an old listener: the old handler's reply has neither field.
  await b.node.unhandle(HELLO_PROTOCOL);
  await b.node.handle(HELLO_PROTOCOL, async (stream) => {
    const lp = lpStream(stream);
    await lp.read();
    await lp.write(new TextEncoder().encode(JSON.stringify({ ok: true, version: PROTOCOL_VERSION, cluster: clusterHex })));
    await stream.close();
  });
  const c = await start(keys[4]!);
  assert.equal(await c.connect(addrOf(b)), b.peerId);
  assert.deepEqual(c.peerInfo(b.peerId), {});
});

test('a malformed software version or time is ignored, not fatal', async () => {
  const a = await start(keys[5]!, { now: clock(1_000, 1_000) });
  const b = await start(keys[6]!, { software: 'x'.repeat(65), now: clock(1_000, 1_000) });
  assert.equal(await a.connect(addrOf(b)), b.peerId);
  assert.deepEqual(a.peerInfo(b.peerId), { clockOffsetMs: 0, rttMs: 0 }, 'a 65-character version is not kept');
  assert.deepEqual(await infoWithClock(b, a.peerId), { software: SOFTWARE_VERSION, clockOffsetMs: 0, rttMs: 0 });
  assert.equal((await rawHello(a, b, { software: 'has spaces', time: 'noon' })).ok, true);
  await sleep(50);
  assert.deepEqual(b.peerInfo(a.peerId), {}, 'the last hello had no usable version or time');
});
