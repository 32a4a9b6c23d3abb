import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { bytesToHex } from 'viem';
import { createDefinition } from '../../src/cluster/definition.ts';
import { membersOf, type Member } from '../../src/cluster/members.ts';
import { seededRng } from '../../src/crypto/random.ts';
import { encodeCertificate, signApproval, subjectOf } from '../../src/policy/approval.ts';
import { defaultDevnetPolicy, policyToJson } from '../../src/policy/policy-file.ts';
import { ethAddress, type Presignature } from '../../src/protocol/sign.ts';
import type { KeyShare } from '../../src/protocol/key-share.ts';
import { keygen, runPresign } from '../../src/sim/simulator.ts';
import { PeerStore } from '../../src/store/database.ts';
import { poolKey, sealPresignature } from '../../src/store/presignature-seal.ts';
import { CoSigner } from '../../src/peer/cosigner.ts';
import type { Control, SignProposal } from '../../src/peer/control.ts';
import type { PairRepair } from '../../src/peer/pair-repair.ts';
import type { LoadedKey, PeerCore } from '../../src/peer/peer-core.ts';
import { RequestPolicy } from '../../src/peer/request-policy.ts';
import { encodeSigningRequest, type SigningRequest } from '../../src/peer/signing-request.ts';
import { INBOX, SAMPLE_BATCH } from '../policy/helpers.ts';

/**
 * The co-signer on its own (issue 11, 12): every refusal before the used mark, each asserted with
 * its exact reason and code, and that a refusal leaves the presignature unused. Above all the
 * check a malicious requester attacks: a certificate for one digest shipped with another request
 * (the co-signer would sign the certified digest but log a request that does not produce it).
 * Real store (SQLite in a temp dir), real policy, real presignature; the session host is a stub.
 */
const ORGS = ['acme', 'bravo', 'coral'];
let shares: Map<number, KeyShare>;
let presigs: Map<number, Presignature>;
let seeds: Uint8Array[];
let infos: { org: string; peerId: string; addresses: string[]; api: string }[];

before(async () => {
  shares = keygen(2, 3, { seed: 'cosigner-test' });
  const pre = runPresign(shares, [1, 2], new Uint8Array(0), { seed: 'cosigner-test' });
  assert.equal(pre.errors.size, 0);
  presigs = pre.outputs;
  seeds = ORGS.map((_, i) => new Uint8Array(32).fill(i + 1));
  infos = await Promise.all(ORGS.map(async (org, i) => ({ org, peerId: peerIdFromPrivateKey(await generateKeyPairFromSeed('Ed25519', seeds[i]!)).toString(), addresses: [`/ip4/127.0.0.1/tcp/${7000 + i}`], api: `127.0.0.1:${8000 + i}` })));
});

interface World {
  cosigner: CoSigner;
  store: PeerStore;
  policy: RequestPolicy;
  members: Member[];
  key: LoadedKey;
  sent: { to: number; control: Control }[];
  runs: string[];
  org: (name: string) => Member;
}

const CLUSTER_HASH = new Uint8Array(32).fill(9);
const OTHER_ROW = new Uint8Array(32).fill(0x55);

/** acme's co-signer (key party 1); bravo (party 2) proposes; coral is party 3. */
function world(o: { policyQuorum?: { distinctOrgs: number; otherOrgs: number }; withheld?: string; running?: number; busy?: boolean; perMinute?: number } = {}): World {
  const definition = createDefinition('t', 2, { distinctOrgs: 2, otherOrgs: 1 }, infos, {});
  const members = membersOf(definition);
  const org = (name: string) => members.find((m) => m.org === name)!;
  const self = org('acme');
  const dir = mkdtempSync(join(tmpdir(), 'potluck-cosigner-'));
  const store = new PeerStore(join(dir, 'potluck.db'));
  const share = shares.get(1)!;
  const address = ethAddress(share.publicKey);
  writeFileSync(join(dir, 'policy.json'), JSON.stringify({ ...policyToJson(defaultDevnetPolicy({ chainId: 900, batchInbox: INBOX, quorum: o.policyQuorum ?? { distinctOrgs: 2, otherOrgs: 1 }, clients: ['batcher'] })), memberRequestsPerMinute: o.perMinute ?? 600 }));
  const log = pino({ level: 'silent' });
  const policy = RequestPolicy.load(dir, store.db, log);
  const memberOf = new Map(ORGS.map((name, i) => [i + 1, org(name).index]));
  const key: LoadedKey = { share, address, poolKey: poolKey(share), memberOf, partyOf: new Map([...memberOf].map(([p, m]) => [m, p])) };
  const p = presigs.get(1)!;
  store.addPresignature({ sigSid: p.sigSid, keyId: share.keyId, epoch: share.epoch, signers: [1, 2], owner: 2, blob: sealPresignature(p, key.poolKey, seededRng('seal')) });
  // A row bravo owns for the set {1, 3} (its blob is never opened).
  store.addPresignature({ sigSid: OTHER_ROW, keyId: share.keyId, epoch: share.epoch, signers: [1, 3], owner: 2, blob: new Uint8Array(64) });
  const sent: World['sent'] = [];
  const runs: string[] = [];
  const host = {
    member: (i: number) => members.find((m) => m.index === i)!,
    isActive: () => false,
    activeProposedBy: () => o.running ?? 0,
    activeCount: 0,
    sendControl: (to: number, _session: Uint8Array, control: Control) => void sent.push({ to, control }),
    run: (spec: { what: string }) => (runs.push(spec.what), new Promise(() => {})),
    forget: () => {},
  };
  const audit = { request: () => {}, certificate: () => {}, signature: () => {} };
  const core = { opts: {}, definition, clusterHash: CLUSTER_HASH, members, self, log, rng: seededRng('cosigner-rng'), store, host, audit, policy, keys: new Map([[share.keyId, key]]), stopping: false } as unknown as PeerCore;
  const pairs = { isBusy: () => o.busy ?? false } as unknown as PairRepair;
  return { cosigner: new CoSigner(core, pairs, () => o.withheld), store, policy, members, key, sent, runs, org };
}

const tx = (w: World, over: Record<string, unknown> = {}): SigningRequest => ({
  client: 'batcher',
  body: { case: 'transaction', argsJson: JSON.stringify({ from: w.key.address, to: INBOX, gas: '0x186a0', gasPrice: null, maxFeePerGas: '0x77359400', maxPriorityFeePerGas: '0x3b9aca00', value: '0x0', nonce: '0x0', data: null, input: SAMPLE_BATCH, accessList: [], chainId: '0x384', ...over }), blobs: [] },
});
const digestOf = (w: World, r: SigningRequest) => subjectOf(r.body, w.key.address).digest;
const REQUEST_ID = new Uint8Array(32).fill(4);
/** A certificate of `r`'s subject approved by `orgs`. */
const certify = (w: World, r: SigningRequest, orgs: string[]) =>
  encodeCertificate(orgs.map((name) => signApproval({ ...subjectOf(r.body, w.key.address), clusterHash: CLUSTER_HASH, approverOrg: name, approver: w.org(name).peerId, requestId: REQUEST_ID }, seeds[ORGS.indexOf(name)]!)));

/** bravo proposes; `over` replaces fields of an honest proposal for `request`. */
function propose(w: World, request: SigningRequest, over: Partial<SignProposal> = {}, from = 'bravo') {
  const p: SignProposal = { keyId: w.key.share.keyId, epoch: 0, signers: [1, 2], presignature: presigs.get(1)!.sigSid, digest: digestOf(w, request), request: encodeSigningRequest(request), certificate: certify(w, request, ['acme', 'bravo']), ...over };
  const before = w.sent.length;
  w.cosigner.onSignProposal(w.org(from), p.presignature, p);
  const reply = w.sent.slice(before);
  assert.ok(reply.length <= 1);
  return reply[0]?.control.case === 'decision' ? { code: reply[0].control.value.code, reason: reply[0].control.value.reason } : undefined;
}
/** This org approves `r` as the approver does: the policy claims its nonce slot. */
const approveHere = (w: World, r: SigningRequest) => assert.equal(w.policy.evaluate({ request: r, role: 'approver', requesterOrg: 'bravo', session: REQUEST_ID, keyAddresses: [w.key.address], threshold: 2 }).refusal, undefined);
const unused = (w: World) => assert.equal(w.store.isUsed(presigs.get(1)!.sigSid), false, 'the presignature is still unused');

describe('co-signer', () => {
  test('an honest proposal passes every check: the used mark is written, then the session runs', () => {
    const w = world();
    approveHere(w, tx(w));
    assert.equal(propose(w, tx(w)), undefined);
    assert.equal(w.store.isUsed(presigs.get(1)!.sigSid), true);
    assert.deepEqual(w.runs, ['co-signature for bravo']);
  });

  test('a certificate for one digest with another request (the requester\'s bait and switch) is refused: the proposed digest is not the request\'s', () => {
    const w = world();
    const certified = tx(w, { input: `${SAMPLE_BATCH.slice(0, -4)}9d01` });
    const shipped = tx(w);
    approveHere(w, shipped); // acme approved the shipped request too: without the check, all else would pass
    assert.notEqual(bytesToHex(digestOf(w, certified)), bytesToHex(digestOf(w, shipped)));
    const d = propose(w, shipped, { digest: digestOf(w, certified), certificate: certify(w, certified, ['acme', 'bravo']) });
    assert.deepEqual(d, { code: 'certificate', reason: 'the proposed digest is not the digest of the request' });
    unused(w);
    assert.deepEqual(w.runs, []);
  });

  test('approvals of another digest than the proposed one are refused by the certificate check, naming the approver and both digests', () => {
    const w = world();
    const approved = tx(w, { maxFeePerGas: '0x77359401' });
    const d = propose(w, tx(w), { certificate: certify(w, approved, ['acme', 'bravo']) });
    const first = [w.org('acme'), w.org('bravo')].sort((a, b) => (a.peerId < b.peerId ? -1 : 1))[0]!.org;
    assert.deepEqual(d, { code: 'certificate', reason: `approval certificate: the approval by ${first} is for digest ${bytesToHex(digestOf(w, approved))}, not ${bytesToHex(digestOf(w, tx(w)))}` });
    unused(w);
  });

  test('a certificate without this org\'s own approval is refused', () => {
    const w = world();
    const r = tx(w);
    assert.deepEqual(propose(w, r, { certificate: certify(w, r, ['bravo', 'coral']) }), { code: 'certificate', reason: 'approval certificate: acme did not approve this digest' });
    unused(w);
  });

  test('a signer set under this org\'s own policy quorum is refused (org-quorum)', () => {
    const w = world({ policyQuorum: { distinctOrgs: 3, otherOrgs: 2 } });
    assert.deepEqual(propose(w, tx(w)), {
      code: 'policy',
      reason: "policy refused (org-quorum): signer set spans 2 org(s), this org's policy requires at least 3; signer set has 1 org(s) besides the requester's (bravo), this org's policy requires at least 2",
    });
    unused(w);
  });

  test('the presignature: unknown, already used, owned by another member, or not the session id', () => {
    const w = world();
    assert.deepEqual(propose(w, tx(w), { presignature: new Uint8Array(32).fill(7) }), { code: 'unknown-presignature', reason: 'unknown presignature' });
    assert.deepEqual(propose(w, tx(w), { signers: [1, 3], presignature: OTHER_ROW }, 'coral'), { code: '', reason: 'presignature belongs to another requester or signer set' }, 'another owner');
    assert.deepEqual(propose(w, tx(w), { presignature: OTHER_ROW }), { code: '', reason: 'presignature belongs to another requester or signer set' }, 'another signer set');
    w.store.markUsed(presigs.get(1)!.sigSid);
    assert.deepEqual(propose(w, tx(w)), { code: '', reason: 'presignature already used' });
    // Refused before the certificate is opened (cheap checks first), not by the used-mark transaction later.
    assert.deepEqual(propose(w, tx(w), { certificate: new Uint8Array(0) }), { code: '', reason: 'presignature already used' });
    const p: SignProposal = { keyId: w.key.share.keyId, epoch: 0, signers: [1, 2], presignature: presigs.get(1)!.sigSid, digest: digestOf(w, tx(w)), request: encodeSigningRequest(tx(w)), certificate: certify(w, tx(w), ['acme', 'bravo']) };
    w.cosigner.onSignProposal(w.org('bravo'), new Uint8Array(32).fill(8), p);
    assert.deepEqual(w.sent.at(-1)!.control.value, { session: new Uint8Array(32).fill(8), accept: false, reason: 'session id must be the presignature id', code: '' });
  });

  test('the proposal\'s key, epoch and signer set (proposal-check.ts)', () => {
    const w = world();
    const r = tx(w);
    assert.deepEqual(propose(w, r, { keyId: 'other' }), { code: '', reason: 'unknown key "other"' });
    assert.deepEqual(propose(w, r, { epoch: 1 }), { code: '', reason: `key ${w.key.share.keyId} is at epoch 0, not 1` });
    assert.deepEqual(propose(w, r, { signers: [2, 1] }), { code: '', reason: 'malformed signer set' });
    assert.deepEqual(propose(w, r, { signers: [1, 4] }), { code: '', reason: 'malformed signer set' });
    assert.deepEqual(propose(w, r, { signers: [2, 3] }), { code: '', reason: 'this peer is not in the signer set' });
    assert.deepEqual(propose(w, r, { signers: [1, 3] }), { code: '', reason: 'the requester is not in the signer set' });
    w.store.burnPair(w.key.share.keyId, 2, 'test');
    assert.deepEqual(propose(w, r), { code: '', reason: 'the pair with bravo is burned until its OT setup is redone' });
    const busy = world({ busy: true });
    assert.deepEqual(propose(busy, tx(busy)), { code: '', reason: 'the OT setup with bravo is being redone' });
    const outsider = world();
    outsider.key.partyOf.delete(outsider.org('bravo').index); // as for a member that joined after this key was made
    assert.deepEqual(propose(outsider, tx(outsider)), { code: '', reason: `bravo holds no share of ${w.key.share.keyId}` });
  });

  test('a slot this org never approved (nor any content there) is refused at the used mark, which rolls back', () => {
    const w = world();
    const d = propose(w, tx(w));
    assert.deepEqual(d, { code: 'policy', reason: `policy refused (equivocation): no record at 900/${w.key.address.toLowerCase()}/0: a signature needs this peer's approval first` });
    unused(w);
    assert.deepEqual(w.runs, []);
  });

  test('this peer\'s own state and the member\'s load: rolled back, over its rate, too many sessions', () => {
    const held = world({ withheld: "this peer's state was rolled back: …" });
    assert.deepEqual(propose(held, tx(held)), { code: 'rollback', reason: "this peer's state was rolled back: …" });
    const slow = world({ perMinute: 1 });
    approveHere(slow, tx(slow));
    assert.deepEqual(propose(slow, tx(slow), { presignature: new Uint8Array(32).fill(7) }), { code: 'unknown-presignature', reason: 'unknown presignature' });
    assert.deepEqual(propose(slow, tx(slow)), { code: 'rate-limit', reason: 'bravo exceeded 1 sign proposals per minute' });
    unused(slow);
    const busy = world({ running: 20 });
    assert.deepEqual(propose(busy, tx(busy)), { code: 'busy', reason: '20 sessions proposed by bravo are running already' });
    unused(busy);
  });
});
