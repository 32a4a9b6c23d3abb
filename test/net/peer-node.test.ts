import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import type { PrivateKey } from '@libp2p/interface';
import { HandshakeError, PeerNode } from '../../src/net/peer-node.ts';

// Real libp2p nodes over TCP on loopback.
const clusterHash = new Uint8Array(32).fill(1);
let keys: PrivateKey[];
let allowed: Set<string>;
const nodes: PeerNode[] = [];
const start = async (k: PrivateKey, opts: { hash?: Uint8Array; version?: string; allowed?: Set<string> } = {}) => {
  const n = await PeerNode.start({ privateKey: k, listen: ['/ip4/127.0.0.1/tcp/0'], allowed: opts.allowed ?? allowed, clusterHash: opts.hash ?? clusterHash, ...(opts.version ? { version: opts.version } : {}) });
  nodes.push(n);
  return n;
};
const addrOf = (n: PeerNode) => n.addresses.find((a) => a.includes('/tcp/'))!;

before(async () => {
  keys = await Promise.all([1, 2, 3, 4].map(() => generateKeyPair('Ed25519')));
  allowed = new Set(keys.slice(0, 3).map((k) => peerIdFromPrivateKey(k).toString())); // key 4 is an outsider
});
after(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
});

test('two members with the same definition connect and complete the hello', async () => {
  const a = await start(keys[0]!), b = await start(keys[1]!);
  assert.equal(await a.connect(addrOf(b)), b.peerId);
});

test('a peer outside the cluster cannot connect', async () => {
  const a = await start(keys[0]!);
  const outsider = await start(keys[3]!, { allowed: new Set([...allowed, peerIdFromPrivateKey(keys[3]!).toString()]) });
  await assert.rejects(outsider.connect(addrOf(a)), (e: unknown) => e instanceof HandshakeError && e.peer === a.peerId && /cannot connect/.test(e.message));
  assert.equal(a.node.getConnections().length, 0);
});

test('a member with a different definition hash is refused, and the error names it and the mismatch', async () => {
  const a = await start(keys[0]!), c = await start(keys[2]!, { hash: new Uint8Array(32).fill(2) });
  await assert.rejects(c.connect(addrOf(a)), (e: unknown) => e instanceof HandshakeError && e.peer === a.peerId && /different cluster definition \(theirs 010101010101…, ours 020202020202…\)/.test(e.message));
});

test('an incompatible protocol version is refused with a clear error', async () => {
  const a = await start(keys[0]!), b = await start(keys[1]!, { version: 'potluck/2' });
  await assert.rejects(b.connect(addrOf(a)), (e: unknown) => e instanceof HandshakeError && /incompatible protocol version "potluck\/1" \(ours "potluck\/2"\)/.test(e.message));
});
