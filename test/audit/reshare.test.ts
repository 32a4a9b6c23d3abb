import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { verifyAudit } from '../../src/audit/verify.ts';
import type { AuditRecordInput } from '../../src/audit/entry.ts';
import { field, flipLastBit } from '../byzantine/tamper.ts';
import { keygen, logsOf, makeCluster, peerOf, reshare, runKeygen, sign, txArgs, type SignOutcome, type TestCluster } from './build-logs.ts';

// A 2-of-3 cluster (orgs aurora, borealis, cirrus): keygen, a signature, a reshare dealt by the old
// committee {2, 3}, a signature under the new epoch; then a second keygen that a byzantine dealer
// aborts with a bad proof of knowledge.
let c: TestCluster;
let before1: SignOutcome, after1: SignOutcome;
let base: Map<string, AuditRecordInput[]>;
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

before(async () => {
  c = await makeCluster({ orgs: ['aurora', 'borealis', 'cirrus'], threshold: 2, quorum: { distinctOrgs: 2, otherOrgs: 1 } });
  keygen(c, 'reshare-keygen');
  before1 = sign(c, { requester: 1, signers: [1, 2], args: txArgs({}, c.address) });
  reshare(c, [2, 3]);
  after1 = sign(c, { requester: 1, signers: [1, 3], args: txArgs({ nonce: '0x2b' }, c.address) });
  assert.ok(before1.signature && after1.signature);
  base = new Map(c.peers.map((p) => [p.peerId, [...p.records]]));
});

test('a reshare is reproduced from its transcript and the old public data; signatures on both sides of it verify', () => {
  const rep = verifyAudit({ definition: c.definition, logs: logsOf(c) });
  assert.deepEqual(rep.failures.map((f) => f.message), []);
  assert.deepEqual(rep.sessions.map((s) => s.kind).sort(), ['keygen', 'reshare', 'signature', 'signature']);
  const r = rep.sessions.find((s) => s.kind === 'reshare')!;
  assert.equal(r.epoch, 1);
  assert.match(r.notes.join(), /per-dealer constants λ_i·S_i not re-checked/);
  assert.equal(rep.sessions.find((s) => s.session === hex(after1.sigSid!))!.epoch, 1);
});

test('a reshare key whose public share does not follow from the transcript fails', () => {
  const p = peerOf(c, 1);
  const recs = [...base.get(p.peerId)!];
  const i = recs.findIndex((r) => r.case === 'key' && r.value.kind === 'reshare');
  const k = recs[i]!.value as { publicShares: Uint8Array[] };
  recs[i] = { case: 'key', value: { ...(recs[i]!.value as object), publicShares: [k.publicShares[0]!, k.publicShares[2]!, k.publicShares[1]!] } };
  const rep = verifyAudit({ definition: c.definition, logs: logsOf(c, new Map([[p.peerId, recs]])) });
  assert.ok(rep.failures.some((f) => f.rule === 'dkg' && f.entry === i && /public share 2 does not follow/.test(f.message)), rep.failures.map((f) => f.message).join('\n'));
});

test('a keygen aborted by a dealer with a bad proof: the culprit and its signed evidence are reported', () => {
  c.peers.forEach((p) => (p.records = [...base.get(p.peerId)!]));
  const res = runKeygen(c, 'second-key', 'byzantine-keygen', field(2, 'keygenReveal', 'proofs', flipLastBit));
  assert.deepEqual([...res.errors.keys()].sort(), [1, 3]);
  const rep = verifyAudit({ definition: c.definition, logs: logsOf(c) });
  assert.deepEqual(rep.failures.map((f) => f.message), []);
  const s = rep.sessions.find((x) => x.kind === 'dealing')!;
  assert.deepEqual(s.aborted, { errorClass: 'AbortError', check: 'schnorr-proof', culprit: 2, culpritOrg: peerOf(c, 2).org, evidence: 'signed by culprit', reportedBy: [peerOf(c, 1).org, peerOf(c, 3).org] });
});
