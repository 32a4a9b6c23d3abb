import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IdentityError, initIdentity, loadIdentity, type PeerInfo } from '../../src/cluster/identity.ts';
import { ClusterError, checkSignatures, createDefinition, definitionHash, mayRequest, parseDefinition, requireFullySigned, signDefinition, type ClusterDefinition } from '../../src/cluster/definition.ts';

const homes: string[] = [];
const peers: PeerInfo[] = [];
before(async () => {
  const root = mkdtempSync(join(tmpdir(), 'potluck-cluster-'));
  for (const [k, org] of ['acme', 'bravo', 'cobalt'].entries()) {
    homes.push(join(root, org));
    peers.push(await initIdentity(join(root, org), org, `/ip4/127.0.0.1/tcp/${7400 + k}`, `127.0.0.1:${8600 + k}`));
  }
});
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const quorum = { distinctOrgs: 2, otherOrgs: 1 };

test('init writes an Ed25519 identity with mode 0600 and refuses to overwrite it', async () => {
  assert.equal(statSync(join(homes[0]!, 'identity.key')).mode & 0o777, 0o600);
  assert.equal(loadIdentity(homes[0]!).info.peerId, peers[0]!.peerId);
  assert.match(peers[0]!.peerId, /^12D3KooW/);
  await assert.rejects(initIdentity(homes[0]!, 'acme', '/ip4/127.0.0.1/tcp/1', '127.0.0.1:1'), (e: unknown) => e instanceof IdentityError && /refusing to overwrite/.test(e.message));
  await assert.rejects(initIdentity(join(homes[0]!, 'x'), 'bad org!', '/ip4/127.0.0.1/tcp/1', '127.0.0.1:1'), (e: unknown) => e instanceof IdentityError && /org name "bad org!"/.test(e.message));
  await assert.rejects(initIdentity(join(homes[0]!, 'y'), 'ok', 'not-a-multiaddr', '127.0.0.1:1'), (e: unknown) => e instanceof IdentityError && /--listen "not-a-multiaddr"/.test(e.message));
  await assert.rejects(initIdentity(join(homes[0]!, 'z'), 'ok', '/ip4/127.0.0.1/tcp/1', 'localhost:99999'), (e: unknown) => e instanceof IdentityError && /--api "localhost:99999"/.test(e.message));
});

test('the hash does not depend on member order or JSON formatting, and changes with any field', () => {
  const a = createDefinition('seq1', 2, quorum, peers);
  const b = createDefinition('seq1', 2, quorum, [...peers].reverse());
  assert.equal(hex(definitionHash(a)), hex(definitionHash(b)));
  assert.equal(hex(definitionHash(parseDefinition(JSON.stringify(a), 'x'))), hex(definitionHash(a)));
  for (const d of [createDefinition('seq2', 2, quorum, peers), createDefinition('seq1', 3, quorum, peers), createDefinition('seq1', 2, { distinctOrgs: 2, otherOrgs: 2 }, peers)])
    assert.notEqual(hex(definitionHash(d)), hex(definitionHash(a)));
});

test('bad definitions are refused with an error that names the problem', () => {
  const bad = (fn: () => unknown, re: RegExp) => assert.throws(fn, (e: unknown) => e instanceof ClusterError && re.test(e.message));
  bad(() => createDefinition('seq1', 4, quorum, peers), /threshold 4 must be in 2\.\.3/);
  bad(() => createDefinition('seq1', 2, { distinctOrgs: 3, otherOrgs: 1 }, peers), /quorum\.distinctOrgs 3 must be in 1\.\.2/);
  bad(() => createDefinition('seq1', 2, { distinctOrgs: 2, otherOrgs: 3 }, peers), /quorum\.otherOrgs 3 must be in 0\.\.2/);
  bad(() => createDefinition('seq1', 2, quorum, [peers[0]!, peers[0]!]), /listed twice/);
  bad(() => createDefinition('seq1', 2, quorum, [peers[0]!, { ...peers[1]!, peerId: 'QmNotAPeer' }]), /invalid peer id "QmNotAPeer"/);
  bad(() => parseDefinition('{', 'cluster.json'), /cluster\.json is not valid JSON/);
  const d = createDefinition('seq1', 2, quorum, peers);
  bad(() => parseDefinition(JSON.stringify({ ...d, members: [...d.members].reverse() }), 'x'), /sorted by peer id/);
});

test('keygen gate: every member must sign; an edit after signing invalidates the signatures', async () => {
  let d: ClusterDefinition = createDefinition('seq1', 2, quorum, peers);
  await assert.rejects(requireFullySigned(d), (e: unknown) => e instanceof ClusterError && /missing: acme|missing: .*acme/.test(e.message));
  for (const h of homes.slice(0, 2)) {
    const { key, info } = loadIdentity(h);
    d = await signDefinition(d, key, info.peerId);
  }
  const { missing } = await checkSignatures(d);
  assert.deepEqual(missing.map((m) => m.org), ['cobalt']);
  const { key, info } = loadIdentity(homes[2]!);
  d = await signDefinition(d, key, info.peerId);
  await requireFullySigned(d);
  const edited = { ...d, threshold: 3 };
  await assert.rejects(requireFullySigned(edited), (e: unknown) => e instanceof ClusterError && /edited after signing/.test(e.message));
  const outsider = { ...d, members: d.members.filter((m) => m.peerId !== info.peerId) };
  await assert.rejects(signDefinition(outsider, key, info.peerId), (e: unknown) => e instanceof ClusterError && /not a member/.test(e.message));
});

test('f and requesters (issue 11): defaults, bounds, the hash, and who may request', () => {
  const bad = (fn: () => unknown, message: string) => assert.throws(fn, (e: unknown) => e instanceof ClusterError && e.message === message);
  const d = createDefinition('seq1', 2, quorum, peers);
  assert.equal(d.faulty, 0, 'n = 3: ⌊(n − 1)/3⌋ = 0');
  assert.deepEqual(d.requesters, {});
  assert.equal(mayRequest(d, 'batcher', 'cobalt'), true, 'a key not listed: every org');
  bad(() => createDefinition('seq1', 2, quorum, peers, { faulty: 1 }), 'cluster definition: faulty 1 needs at least 4 members (n ≥ 3f + 1), this cluster has 3');
  bad(() => createDefinition('seq1', 2, quorum, peers, { faulty: -1 }), 'cluster definition: faulty -1 must be a whole number ≥ 0 (the members assumed faulty at most)');
  bad(() => createDefinition('seq1', 2, quorum, peers, { requesters: { batcher: ['nobody'] } }), 'cluster definition: requesters.batcher: "nobody" is not an org of this cluster');
  bad(() => createDefinition('seq1', 2, quorum, peers, { requesters: { batcher: [] } }), 'cluster definition: requesters.batcher must be a non-empty list of orgs');
  const r = createDefinition('seq1', 2, quorum, peers, { requesters: { batcher: ['bravo', 'acme', 'acme'] } });
  assert.deepEqual(r.requesters, { batcher: ['acme', 'bravo'] }, 'sorted, without duplicates');
  assert.equal(mayRequest(r, 'batcher', 'acme'), true);
  assert.equal(mayRequest(r, 'batcher', 'cobalt'), false);
  assert.equal(mayRequest(r, 'other-key', 'cobalt'), true);
  assert.notEqual(hex(definitionHash(r)), hex(definitionHash(d)), 'requesters are in the hash');
  const { faulty: _, ...noF } = d;
  void _;
  bad(() => parseDefinition(JSON.stringify(noF), 'cluster.json'), 'cluster.json: cluster definition has no "faulty" (f, the members assumed faulty at most; issue 11). Recreate it with "potluck cluster create" (default f = ⌊(n−1)/3⌋) and have every member sign it again');
  assert.equal(hex(definitionHash(parseDefinition(JSON.stringify(r), 'x'))), hex(definitionHash(r)));
});
