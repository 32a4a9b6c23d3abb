import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { sha256 } from '@noble/hashes/sha2.js';
import { AuditError, decodeAuditEntry, decodeSignedEntry, entryLeafHash, signEntry, type AuditRecordInput } from '../../src/audit/entry.ts';
import { AuditLog, encodeLogRecord, scanLogFile } from '../../src/audit/log-file.ts';
import { verifyAudit, formatReport, type AuditReport } from '../../src/audit/verify.ts';
import { decodeBundle, encodeBundle, exportBundle, verifyBundle } from '../../src/audit/bundle.ts';
import { decodeBody, encodeBody } from '../../src/protocol/messages.ts';
import { defaultDevnetPolicy, policyToJson } from '../../src/policy/policy-file.ts';
import { encodeCertificate, signApproval, subjectOf } from '../../src/policy/approval.ts';
import { ORDER_N, field, flipBit } from '../byzantine/tamper.ts';
import {
  KEY_ID, approveRequest, exchangeCheckpoints, keygen, logsOf, makeCluster, peerOf, refresh, serializeLog, sign, signedEntries, timeOf, txArgs,
  type SignOutcome, type TestCluster, type TestPeer,
} from './build-logs.ts';

// Real protocol data: a 3-of-5 cluster (orgs aurora ×2, borealis, cirrus, dorado; cluster quorum 3
// orgs, 2 besides the requester's) runs keygen, signs two transactions at one nonce (a fee bump), is
// refused an equivocating third, signs a raw digest, refreshes, signs again, and cross-cosigns
// checkpoints. Each negative test changes what one peer wrote (re-signed by that peer when the peer
// itself is the liar) and asserts the exact rule and entry the audit names.
let c: TestCluster;
let base: Map<string, AuditRecordInput[]>;
let tx1: SignOutcome, bump: SignOutcome, raw: SignOutcome, tx2: SignOutcome;
let requester: TestPeer;
let set1: number[], set2: number[];
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** Parties 1.. with the requester first; the others from distinct orgs other than the requester's. */
function quorumSet(c: TestCluster, req: number, avoid: number[] = []): number[] {
  const orgs = new Set([peerOf(c, req).org]);
  const out = [req];
  for (const p of c.peers) {
    if (out.length === 3) break;
    if (orgs.has(p.org) || avoid.includes(p.party)) continue;
    orgs.add(p.org);
    out.push(p.party);
  }
  return out.sort((a, b) => a - b);
}

const restore = () => c.peers.forEach((p) => (p.records = [...base.get(p.peerId)!]));
const verifyAll = (override?: Map<string, AuditRecordInput[]>): AuditReport => verifyAudit({ definition: c.definition, logs: logsOf(c, override) });
const logName = (p: TestPeer) => `${p.org}-${p.party}.log`;
/** Position (= seq) of the first record of `p` matching `pred`. */
const seqOf = (p: TestPeer, pred: (r: AuditRecordInput) => boolean, records = p.records): number => {
  const i = records.findIndex(pred);
  assert.ok(i >= 0, 'record not found');
  return i;
};
const sessionIs = (s: Uint8Array) => (r: AuditRecordInput) => 'session' in r.value && r.value.session instanceof Uint8Array && hex(r.value.session) === hex(s);
/** The verdict of an approval round (issue 11: verdicts belong to rounds, signatures to sessions). */
const verdictOf = (o: SignOutcome) => (r: AuditRecordInput) => r.case === 'verdict' && r.value.requestId instanceof Uint8Array && hex(r.value.requestId) === hex(o.round!.requestId);
function expectFailure(rep: AuditReport, rule: string, where: { log?: string; entry?: number | null }): AuditError {
  const f = rep.failures.find((x) => x.rule === rule && (where.log === undefined || x.log === where.log) && (where.entry === undefined || x.entry === where.entry));
  assert.ok(f, `expected rule '${rule}' at ${JSON.stringify(where)}; got:\n${rep.failures.map((x) => x.message).join('\n')}`);
  assert.equal(rep.ok, false);
  assert.match(f.message, new RegExp(`rule '${rule}'`));
  if (where.entry !== undefined && where.entry !== null) assert.match(f.message, new RegExp(`entry ${where.entry}\\b`));
  return f;
}

before(async () => {
  // Party 5's org caps gas at 150 000 (the others at 30M): it declines the retry test's transaction.
  c = await makeCluster({ quorum: { distinctOrgs: 3, otherOrgs: 2 }, gasCap: new Map([[5, 150_000n]]) });
  keygen(c);
  requester = peerOf(c, 1);
  set1 = quorumSet(c, 1);
  set2 = quorumSet(c, 1, set1.filter((p) => p !== 1));
  if (set2.length < 3) set2 = set1;
  tx1 = sign(c, { requester: 1, signers: set1, args: txArgs({}, c.address) });
  bump = sign(c, { requester: 1, signers: set2, args: txArgs({ maxFeePerGas: '0x77359401', maxPriorityFeePerGas: '0x3b9aca01' }, c.address) });
  const refused = sign(c, { requester: 1, signers: set1, args: txArgs({ input: '0x00' + 'cd'.repeat(16) + '0000' + '00000001' + '55' + '01' }, c.address) });
  assert.equal(refused.refused, 'equivocation');
  raw = sign(c, { requester: 2, signers: quorumSet(c, 2), rawDigest: sha256(new TextEncoder().encode('raw digest')) });
  refresh(c);
  tx2 = sign(c, { requester: 1, signers: set1, args: txArgs({ nonce: '0x2b' }, c.address) });
  for (const o of [tx1, bump, raw, tx2]) assert.ok(o.signature, 'every base signature succeeds');
  exchangeCheckpoints(c);
  base = new Map(c.peers.map((p) => [p.peerId, [...p.records]]));
});

describe('the honest logs', () => {
  test('verify: every session reproduces, ok', () => {
    const rep = verifyAll();
    assert.deepEqual(rep.failures.map((f) => f.message), []);
    assert.equal(rep.ok, true);
    const kinds = rep.sessions.map((s) => s.kind).sort();
    assert.deepEqual(kinds, ['keygen', 'refresh', 'signature', 'signature', 'signature', 'signature']);
    const s1 = rep.sessions.find((s) => s.session === hex(tx1.sigSid!))!;
    assert.equal(s1.ok, true);
    assert.equal(s1.requesterOrg, requester.org);
    assert.deepEqual(s1.signerOrgs, set1.map((p) => peerOf(c, p).org));
    assert.deepEqual(s1.verdicts!.map((v) => v.verdict), ['approve', 'approve', 'approve', 'approve', 'approve'], 'every holder approved');
    assert.deepEqual(s1.approvedBy!.slice().sort(), c.peers.map((p) => p.org).sort());
    assert.equal(s1.r, hex(scalar(tx1.signature!.r)));
    assert.equal(s1.s, hex(scalar(tx1.signature!.s)));
    assert.equal(s1.txHash, hex(tx1.txHash!));
    assert.deepEqual(s1.notes, []);
    assert.equal(rep.sessions.find((s) => s.kind === 'refresh')!.notes.length, 0, 'refresh reproduced from the previous epoch');
    const text = formatReport(rep);
    assert.match(text, /audit: every check holds/);
    assert.match(text, new RegExp(`tx 0x${hex(tx1.txHash!)}`));
  });

  test('logs of only some peers: what is present verifies, the missing orgs are "not provided"', () => {
    const logs = logsOf(c).filter((_, k) => k + 1 === set1[0] || k + 1 === set1[1]);
    const rep = verifyAudit({ definition: c.definition, logs });
    assert.deepEqual(rep.failures.map((f) => f.message), []);
    const s1 = rep.sessions.find((s) => s.session === hex(tx1.sigSid!))!;
    assert.deepEqual(s1.verdicts!.map((v) => v.verdict).sort(), ['approve', 'approve', 'not provided', 'not provided', 'not provided']);
  });

  test('no key share, presignature secret, DKG share or OT/zero seed appears in any log', () => {
    const secrets = c.secrets.filter((s) => new Set(s).size > 16); // skip punctured (zero) seeds
    assert.ok(secrets.length > 50);
    for (const log of logsOf(c)) {
      const b = Buffer.from(log.bytes);
      for (const s of secrets) assert.equal(b.indexOf(Buffer.from(s)), -1, `secret ${hex(s).slice(0, 8)}… found in ${log.name}`);
    }
  });

  test('AuditLog writes exactly these bytes; reopening re-verifies them; its checkpoint verifies with the logs', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'potluck-auditlog-')), 'audit.log');
    let seq = 0;
    const log = AuditLog.open(path, { clusterHash: c.clusterHash, peerId: requester.peerId, sign: (m) => requester.key.sign(m) as Uint8Array, now: () => new Date(timeOf(seq)) });
    for (const r of base.get(requester.peerId)!) {
      assert.equal(log.append(r).seq, seq);
      seq++;
    }
    log.close();
    assert.equal(Buffer.compare(readFileSync(path), Buffer.from(serializeLog(c, requester))), 0);
    const reopened = AuditLog.open(path, { clusterHash: c.clusterHash, peerId: requester.peerId, sign: (m) => requester.key.sign(m) as Uint8Array, verifySignatures: true });
    assert.equal(reopened.size, seq);
    const cp = reopened.checkpoint();
    reopened.close();
    assert.equal(cp.size, seq);
    const rep = verifyAudit({ definition: c.definition, logs: logsOf(c), checkpoints: [cp.note] });
    assert.deepEqual(rep.failures.map((f) => f.message), []);
    const forged = cp.note.replace(/\n\d+\n/, `\n${seq - 1}\n`);
    expectFailure(verifyAudit({ definition: c.definition, logs: logsOf(c), checkpoints: [forged] }), 'checkpoint', {});
  });
});

const scalar = (x: bigint) => {
  const b = new Uint8Array(32);
  for (let i = 31; i >= 0; i--, x >>= 8n) b[i] = Number(x & 0xffn);
  return b;
};

describe('changing a log', () => {
  test('any single byte changed anywhere: verify fails and names the record that holds it', () => {
    const bytes = serializeLog(c, requester);
    const { records } = scanLogFile(bytes);
    const bounds = records.map((r) => r.offset);
    const recordAt = (pos: number) => bounds.filter((o) => o <= pos).length - 1;
    const positions = new Set<number>();
    for (const r of records.slice(0, 3)) for (let k = 0; k < 4 + r.bytes.length; k += 61) positions.add(r.offset + k);
    const last = records[records.length - 1]!;
    for (let k = 0; k < 8; k++) positions.add(last.offset + k); // length prefix and the first protobuf tags
    for (let k = 1; k <= 66; k += 13) positions.add(bytes.length - k); // the signature field
    for (let p = 0; p < bytes.length; p += 2503) positions.add(p);
    for (const pos of positions) {
      const bad = new Uint8Array(bytes);
      bad[pos]! ^= 1 + (pos % 255);
      const rep = verifyAudit({ definition: c.definition, logs: [{ name: 'x', bytes: bad }] });
      assert.equal(rep.ok, false, `byte ${pos} changed and the log still verifies`);
      const first = rep.failures[0]!;
      assert.equal(first.entry, recordAt(pos), `byte ${pos}: ${first.message}`);
      assert.ok(['decode', 'signature', 'signer'].includes(first.rule), `byte ${pos}: ${first.message}`);
    }
    assert.ok(positions.size > 50, `${positions.size} positions`);
  });

  const entries = () => signedEntries(c, requester, base.get(requester.peerId)!);
  const verifyEntries = (list: Uint8Array[]) => verifyAudit({ definition: c.definition, logs: [{ name: 'x', bytes: Buffer.concat(list.map(encodeLogRecord)) }] });

  test('deleting entry k: seq names entry k+1', () => {
    const list = entries();
    const k = 40;
    list.splice(k, 1);
    const rep = verifyEntries(list);
    expectFailure(rep, 'seq', { entry: k + 1 });
    expectFailure(rep, 'prev', { entry: k + 1 });
  });

  test('deleting the first or the last entry', () => {
    expectFailure(verifyEntries(entries().slice(1)), 'seq', { entry: 1 });
    // The last entry is a cosignature of another log; dropping it breaks only what others cosigned of this log.
    const all = logsOf(c);
    const i = c.peers.indexOf(requester);
    const cut = entries().slice(0, -1);
    all[i] = { name: logName(requester), bytes: Buffer.concat(cut.map(encodeLogRecord)) };
    const rep = verifyAudit({ definition: c.definition, logs: all });
    assert.equal(rep.ok, true, 'a truncated tail after the last cosigned checkpoint is not detectable from the logs alone');
  });

  test('reordering entries k and k+1: seq names both', () => {
    const list = entries();
    const k = 20;
    [list[k], list[k + 1]] = [list[k + 1]!, list[k]!];
    const rep = verifyEntries(list);
    expectFailure(rep, 'seq', { entry: k + 1 });
    expectFailure(rep, 'seq', { entry: k });
    assert.equal(rep.failures[0]!.entry, k + 1);
  });

  test('duplicating entry k: seq and prev name entry k', () => {
    const list = entries();
    const k = 30;
    list.splice(k + 1, 0, list[k]!);
    const rep = verifyEntries(list);
    expectFailure(rep, 'seq', { entry: k });
    expectFailure(rep, 'prev', { entry: k });
  });

  test('an author who rewrites an early entry and re-signs the rest: the cosigned checkpoints break', () => {
    const recs = [...base.get(requester.peerId)!];
    const i = seqOf(requester, (r) => r.case === 'message', recs);
    const m = recs[i]!.value as { payloadSha256: Uint8Array };
    recs[i] = { ...recs[i]!, value: { ...recs[i]!.value, payloadSha256: sha256(new Uint8Array([1])) } } as AuditRecordInput;
    void m;
    const rep = verifyAll(new Map([[requester.peerId, recs]]));
    const witnesses = rep.failures.filter((f) => f.rule === 'checkpoint');
    assert.equal(witnesses.length, 4, rep.failures.map((f) => f.message).join('\n'));
    for (const f of witnesses) assert.match(f.message, new RegExp(`${requester.org}'s log at size \\d+ does not have the root`));
    assert.deepEqual(new Set(witnesses.map((f) => f.log)), new Set(c.peers.filter((p) => p !== requester).map(logName)));
  });
});

describe('lying peers (entries re-signed by the peer that wrote them)', () => {
  const cosigner = () => peerOf(c, set1.find((p) => p !== 1)!);

  test('swapping a verdict approve → refuse', () => {
    const p = cosigner();
    const recs = [...base.get(p.peerId)!];
    const i = seqOf(p, verdictOf(tx1), recs);
    recs[i] = { case: 'verdict', value: { ...(recs[i]!.value as object), approve: false } };
    const rep = verifyAll(new Map([[p.peerId, recs]]));
    const f = expectFailure(rep, 'verdict', { log: logName(p), entry: i });
    assert.match(f.message, new RegExp(`${p.org} refused`));
    expectFailure(rep, 'replay', { log: logName(p), entry: i });
  });

  test('a verdict from another round put in place of this one', () => {
    const p = requester;
    const recs = [...base.get(p.peerId)!];
    const i = seqOf(p, verdictOf(tx1), recs);
    const other = recs[seqOf(p, verdictOf(bump), recs)]!;
    recs[i] = { case: 'verdict', value: { ...(other.value as object), session: tx1.round!.requestId, requestId: tx1.round!.requestId } };
    const rep = verifyAll(new Map([[p.peerId, recs]]));
    expectFailure(rep, 'digest', { log: logName(p), entry: i });
    expectFailure(rep, 'replay', { log: logName(p), entry: i });
  });

  test('a verdict that does not replay under the recorded policy (policy swapped for a stricter one)', () => {
    const p = cosigner();
    const strict = defaultDevnetPolicy({ chainId: 900, batchInbox: '0xff00000000000000000000000000000000000901', quorum: { distinctOrgs: 2, otherOrgs: 1 }, clients: ['batcher.example'] });
    strict.transactions.caps.gas = 21000n;
    const json = JSON.stringify(policyToJson(strict));
    const sha = sha256(new TextEncoder().encode(json));
    const recs = base.get(p.peerId)!.map((r): AuditRecordInput =>
      r.case === 'policy' ? { case: 'policy', value: { sha256: sha, json } } : r.case === 'verdict' ? { case: 'verdict', value: { ...r.value, policySha256: sha } } : r);
    const i = seqOf(p, verdictOf(tx1), recs);
    const rep = verifyAll(new Map([[p.peerId, recs]]));
    const f = expectFailure(rep, 'replay', { log: logName(p), entry: i });
    assert.match(f.message, /rule 'gas-cap' recorded ok, replay gives refused/);
  });

  test('substituting the signature of another session', () => {
    const recs = [...base.get(requester.peerId)!];
    const i = seqOf(requester, (r) => r.case === 'signature' && sessionIs(tx1.sigSid!)(r), recs);
    const other = recs[seqOf(requester, (r) => r.case === 'signature' && sessionIs(bump.sigSid!)(r), recs)]!.value as { r: Uint8Array; s: Uint8Array; yParity: number; txHash: Uint8Array };
    recs[i] = { case: 'signature', value: { ...(recs[i]!.value as object), r: other.r, s: other.s, yParity: other.yParity, txHash: other.txHash } };
    const rep = verifyAll(new Map([[requester.peerId, recs]]));
    expectFailure(rep, 'combine', { log: logName(requester), entry: i });
    expectFailure(rep, 'nonce', { log: logName(requester), entry: i });
    expectFailure(rep, 'ecdsa', { log: logName(requester), entry: i });
    expectFailure(rep, 'disagreement', { entry: undefined });
  });

  test('a signer set that violates the cluster quorum', () => {
    restore();
    const aurora = c.peers.filter((p) => p.org === 'aurora').map((p) => p.party);
    const other = c.peers.find((p) => p.org !== 'aurora')!.party;
    const S = [...aurora, other].sort((a, b) => a - b);
    const out = sign(c, { requester: other, signers: S, args: txArgs({ nonce: '0x60' }, c.address) });
    assert.ok(out.signature, 'each org policy (2 orgs) approves; only the cluster rule (3 orgs) is broken');
    const p = peerOf(c, other);
    const i = seqOf(p, (r) => r.case === 'request' && sessionIs(out.sigSid!)(r));
    const rep = verifyAll();
    restore();
    const f = expectFailure(rep, 'quorum', { log: logName(p), entry: i });
    assert.match(f.message, /violates the cluster quorum \(3 orgs, 2 besides/);
    assert.equal(rep.failures.length, 1, rep.failures.map((x) => x.message).join('\n'));
  });

  test('an entry forged with a non-member key', async () => {
    const outsider = await generateKeyPairFromSeed('Ed25519', sha256(new TextEncoder().encode('outsider')));
    const list = signedEntries(c, requester, base.get(requester.peerId)!);
    const last = list.length;
    const forged = (peerId: string) => signEntry({
      clusterHash: c.clusterHash, peerId, seq: last, prev: entryLeafHash(list[last - 1]!), time: timeOf(last),
      record: { case: 'verdict', value: { session: tx1.sigSid!, digest: new Uint8Array(32), approve: true } },
    }, outsider);
    const run = (extra: Uint8Array) => verifyAudit({ definition: c.definition, logs: [{ name: 'x', bytes: Buffer.concat([...list, extra].map(encodeLogRecord)) }] });
    const f = expectFailure(run(forged(peerIdFromPrivateKey(outsider).toString())), 'signer', { entry: last });
    assert.match(f.message, /not a member of the cluster/);
    expectFailure(run(forged(requester.peerId)), 'signature', { entry: last });
  });

  test('another member\'s entry inside this log', () => {
    const list = signedEntries(c, requester, base.get(requester.peerId)!);
    const p = cosigner();
    const last = list.length;
    const theirs = signEntry({ clusterHash: c.clusterHash, peerId: p.peerId, seq: last, prev: entryLeafHash(list[last - 1]!), time: timeOf(last), record: base.get(p.peerId)![0]! }, p.key);
    const rep = verifyAudit({ definition: c.definition, logs: [{ name: 'x', bytes: Buffer.concat([...list, theirs].map(encodeLogRecord)) }] });
    expectFailure(rep, 'author', { entry: last });
  });

  test('two peers whose logs disagree on a session', () => {
    const p = cosigner();
    const recs = [...base.get(p.peerId)!];
    const i = seqOf(p, (r) => r.case === 'message' && !r.value.sent && r.value.kind === 'signPartial' && r.value.from === 1 && sessionIs(tx1.sigSid!)(r), recs);
    const m = recs[i]!.value as { payload: Uint8Array };
    const body = decodeBody(m.payload);
    assert.equal(body.case, 'signPartial');
    const w = new Uint8Array(body.value.w);
    w[31]! ^= 1;
    recs[i] = { case: 'message', value: { ...(recs[i]!.value as object), payload: encodeBody({ case: 'signPartial', value: { ...body.value, w } }) } };
    const rep = verifyAll(new Map([[p.peerId, recs]]));
    const f = expectFailure(rep, 'disagreement', { log: logName(p), entry: i });
    assert.match(f.message, new RegExp(`${requester.org} \\(${logName(requester)}.*${p.org} \\(${logName(p)}, entry ${i}\\)`));
  });

  test('a request recorded differently by two peers', () => {
    const p = cosigner();
    const recs = [...base.get(p.peerId)!];
    const i = seqOf(p, (r) => r.case === 'request' && sessionIs(tx1.sigSid!)(r), recs);
    recs[i] = { case: 'request', value: { ...(recs[i]!.value as object), signerOrgs: ['x', 'y', 'z'] } };
    const rep = verifyAll(new Map([[p.peerId, recs]]));
    expectFailure(rep, 'disagreement', { log: logName(p), entry: i });
  });

  test('a protocol message logged whole although it carries secrets', () => {
    const p = requester;
    const recs = [...base.get(p.peerId)!];
    const i = seqOf(p, (r) => r.case === 'message' && r.value.kind === 'keygenShare', recs);
    recs[i] = { case: 'message', value: { ...(recs[i]!.value as object), payload: new Uint8Array([1, 2, 3]) } };
    expectFailure(verifyAll(new Map([[p.peerId, recs]])), 'secret', { log: logName(p), entry: i });
  });

  test('a key whose recorded public share does not follow from the DKG transcript', () => {
    const p = requester;
    const recs = [...base.get(p.peerId)!];
    const i = seqOf(p, (r) => r.case === 'key', recs);
    const k = recs[i]!.value as { publicShares: Uint8Array[] };
    recs[i] = { case: 'key', value: { ...(recs[i]!.value as object), publicShares: [k.publicShares[1]!, k.publicShares[0]!, ...k.publicShares.slice(2)] } };
    const rep = verifyAll(new Map([[p.peerId, recs]]));
    expectFailure(rep, 'dkg', { log: logName(p), entry: i });
    const d = expectFailure(rep, 'disagreement', {});
    assert.match(d.message, new RegExp(`${p.org} \\(${logName(p)}, entry ${i}\\)`));
  });
});

describe('approval certificates (issue 11)', () => {
  /** Every peer's log with tx1's certificate entries replaced (or removed, for null). */
  const withCertificate = (cert: Uint8Array | null) => new Map(c.peers.map((p) => [p.peerId, base.get(p.peerId)!.flatMap((r): AuditRecordInput[] =>
    r.case === 'certificate' && sessionIs(tx1.sigSid!)(r) ? (cert ? [{ case: 'certificate', value: { session: tx1.sigSid!, certificate: cert } }] : []) : [r])]));
  const certFailures = (rep: AuditReport) => rep.failures.filter((f) => f.rule === 'certificate').map((f) => f.detail);
  const sid = () => hex(tx1.sigSid!).slice(0, 16);

  test('a signature without a logged certificate fails, and says so', () => {
    restore();
    const rep = verifyAll(withCertificate(null));
    assert.deepEqual(certFailures(rep), [`session ${sid()}: no approval certificate is logged for it (a signature needs 4 approvals of its digest)`]);
  });

  test('a certificate short of c fails, naming the count', () => {
    restore();
    const rep = verifyAll(withCertificate(encodeCertificate(tx1.round!.approvals.slice(0, 3))));
    assert.ok(certFailures(rep).includes(`session ${sid()}: approval certificate: 3 approvals, 4 needed`), certFailures(rep).join('\n'));
  });

  test('a certificate for another digest fails, naming it', () => {
    restore();
    const rep = verifyAll(withCertificate(encodeCertificate(bump.round!.approvals)));
    const first = bump.round!.approvals.slice().sort((a, b) => (a.approver < b.approver ? -1 : 1))[0]!;
    assert.ok(certFailures(rep).includes(`session ${sid()}: approval certificate: the approval by ${first.approverOrg} is for digest 0x${hex(first.digest)}, not 0x${hex(tx1.round!.digest)}`), certFailures(rep).join('\n'));
  });

  test('a member that approved two contents at one nonce is named, with both approvals', () => {
    restore();
    const culprit = peerOf(c, 2);
    const other = txArgs({ input: '0x00' + 'ef'.repeat(16) + '0000' + '00000001' + '66' + '01' }, c.address);
    const forged = signApproval({ ...subjectOf({ case: 'transaction', argsJson: JSON.stringify(other) }, c.address), clusterHash: c.clusterHash, approverOrg: culprit.org, approver: culprit.peerId, requestId: new Uint8Array(32).fill(3) }, culprit.seed);
    const recs = [...base.get(culprit.peerId)!, { case: 'approval', value: { approval: forged.bytes } } as AuditRecordInput];
    const rep = verifyAll(new Map([[culprit.peerId, recs]]));
    assert.equal(rep.equivocations.length, 1);
    assert.deepEqual([rep.equivocations[0]!.org, rep.equivocations[0]!.peerId, rep.equivocations[0]!.slot], [culprit.org, culprit.peerId, `900/${c.address.toLowerCase()}/42`]);
    const f = expectFailure(rep, 'equivocation', { log: logName(culprit), entry: recs.length - 1 });
    assert.match(f.message, new RegExp(`${culprit.org} \\(${culprit.peerId}\\) approved two different requests at 900/`));
  });
});

describe('released slots (potluck policy release)', () => {
  test('the replay frees a slot at its slot-release incident, and only there', () => {
    restore();
    const p = requester;
    const X = txArgs({ nonce: '0x50' }, c.address);
    const Y = txArgs({ nonce: '0x50', input: '0x00' + 'cd'.repeat(16) + '0000' + '00000001' + '55' + '01' }, c.address);
    assert.ok(!('refused' in approveRequest(c, { requester: 1, args: X, approvers: [] })));
    // As the daemon does: free the slot in the records, and log the incident with the freed record.
    const freed = p.policy.recordsStore.release(900, c.address, 0x50)!;
    const slot = `900/${c.address.toLowerCase()}/80`;
    p.records.push({ case: 'incident', value: { kind: 'slot-release', detail: `released ${slot} (content ${freed.contentKey}): forced: test`, evidence: new TextEncoder().encode(JSON.stringify(p.policy.recordsStore.recordJson(freed))) } });
    const y = approveRequest(c, { requester: 1, args: Y, approvers: [] });
    assert.ok(!('refused' in y), 'Y is the first request at the freed slot');
    const withIncident = p.records;
    // The replay follows the release; the second approval still breaks one-content-per-nonce at this
    // org, so the audit reports it, naming the release for the auditor to review.
    const rep = verifyAll(new Map([[p.peerId, withIncident]]));
    assert.deepEqual([...new Set(rep.failures.map((f) => f.rule))], ['equivocation']);
    assert.match(rep.failures[0]!.message, new RegExp(`at ${slot}: .*; it released that slot \\(.*forced: test\\), review that release$`));
    const without = withIncident.filter((r) => r.case !== 'incident');
    const i = without.findIndex((r) => r.case === 'verdict' && r.value.requestId instanceof Uint8Array && hex(r.value.requestId) === hex((y as { requestId: Uint8Array }).requestId));
    const f = expectFailure(verifyAll(new Map([[p.peerId, without]])), 'replay', { log: logName(p), entry: i });
    assert.match(f.message, /rule 'equivocation' recorded ok, replay gives refused/);
    restore();
  });
});

describe('declines and retries', () => {
  test('an approver refuses on its policy: it writes nothing, the certificate is made of the others, and signing goes on without it', () => {
    restore();
    assert.ok(set2.includes(5) && !set1.includes(5));
    const args = txArgs({ nonce: '0x64', gas: '0x30d40' }, c.address);
    const before = peerOf(c, 5).records.length;
    const first = sign(c, { requester: 1, signers: set2, args });
    assert.equal(first.refused, 'not-approved', 'party 5 refused (gas-cap), so no set with it can sign');
    assert.equal(peerOf(c, 5).records.length, before, 'a refusal writes nothing');
    assert.deepEqual(first.round!.approvals.map((a) => a.approverOrg).sort(), [1, 2, 3, 4].map((p) => peerOf(c, p).org).sort());
    const retry = sign(c, { requester: 1, signers: set1, args, round: first.round });
    assert.ok(retry.signature);
    const rep = verifyAll();
    restore();
    assert.deepEqual(rep.failures.map((f) => f.message), []);
    const s2 = rep.sessions.find((s) => s.session === hex(retry.sigSid!))!;
    assert.deepEqual(s2.verdicts!.map((v) => v.verdict), ['approve', 'approve', 'approve', 'approve']);
    assert.deepEqual(s2.approvedBy!.sort(), [1, 2, 3, 4].map((p) => peerOf(c, p).org).sort());
    assert.equal(s2.txHash, hex(retry.txHash!));
  });
});

describe('byzantine parties', () => {
  test('bad OT data in presign (RVOLE μ): BAN_PAIR recorded, the audit names the culprit', () => {
    restore();
    const S = set1;
    const culprit = S[1]!, victim = S[0]!;
    const out = sign(c, { requester: victim, signers: S, args: txArgs({ nonce: '0x61' }, c.address), presignTamper: field(culprit, 'signMultiply', 'mu', flipBit(3), victim) });
    assert.equal(out.sigSid, undefined);
    const rep = verifyAll();
    restore();
    assert.deepEqual(rep.failures.map((f) => f.message), []);
    const s = rep.sessions.find((x) => x.session === hex(out.presignSession))!;
    assert.equal(s.kind, 'presign');
    assert.deepEqual(s.aborted, { errorClass: 'BanPairError', check: 'rvole-mu', culprit, culpritOrg: peerOf(c, culprit).org, evidence: 'none', reportedBy: [peerOf(c, victim).org] });
    assert.match(s.notes.join(), new RegExp(`burned its pair with ${peerOf(c, culprit).org} \\(rvole-mu\\)`));
  });

  test('a bad flight-4 partial (u ≥ n): the abort, its signed evidence and the culprit are reported', () => {
    restore();
    const S = set1;
    const culprit = S[2]!;
    const out = sign(c, { requester: 1, signers: S, args: txArgs({ nonce: '0x62' }, c.address), onlineTamper: field(culprit, 'signPartial', 'u', () => ORDER_N) });
    const all = logsOf(c);
    restore();
    const honest = all.filter((_, k) => k + 1 !== culprit);
    const rep = verifyAudit({ definition: c.definition, logs: honest });
    assert.deepEqual(rep.failures.map((f) => f.message), []);
    const s = rep.sessions.find((x) => x.session === hex(out.sigSid!))!;
    assert.equal(s.kind, 'signature');
    assert.deepEqual(s.aborted, { errorClass: 'AbortError', check: 'decode', culprit, culpritOrg: peerOf(c, culprit).org, evidence: 'signed by culprit', reportedBy: S.filter((p) => p !== culprit).map((p) => peerOf(c, p).org) });
    assert.equal(s.verdicts!.find((v) => v.peer === peerOf(c, culprit).peerId)!.verdict, 'not provided');
    assert.match(formatReport(rep), new RegExp(`culprit party ${culprit} \\(${peerOf(c, culprit).org}\\), evidence signed by culprit`));
    // The culprit's own log claims a signature its logged partial cannot produce.
    const withCulprit = verifyAudit({ definition: c.definition, logs: all });
    const f = expectFailure(withCulprit, 'combine', { log: logName(peerOf(c, culprit)) });
    assert.ok(withCulprit.failures.every((x) => x.log === logName(peerOf(c, culprit))), withCulprit.failures.map((x) => x.message).join('\n'));
    void f;
  });
});

describe('bundles', () => {
  test('export one signature; the bundle verifies on its own with the definition', () => {
    const bundle = exportBundle(logsOf(c), tx1.sigSid!);
    const text = encodeBundle(bundle);
    const rep = verifyBundle(c.definition, decodeBundle(text));
    assert.deepEqual(rep.failures.map((f) => f.message), []);
    const s = rep.sessions.find((x) => x.session === hex(tx1.sigSid!))!;
    assert.equal(s.kind, 'signature');
    assert.equal(s.txHash, hex(tx1.txHash!));
    assert.deepEqual(s.verdicts!.map((v) => v.verdict), ['approve', 'approve', 'approve', 'approve', 'approve']);
    assert.ok(bundle.logs.every((l) => l.checkpoint !== null), 'every log has a cosigned tree head covering the session');
    assert.ok(text.length < logsOf(c).reduce((a, l) => a + l.bytes.length, 0) * 2);
    for (const l of bundle.logs) assert.ok(l.entries.length < base.get(l.peer)!.length);
  });

  test('a changed entry, a wrong proof, a forged tree head or another cluster fail', async () => {
    const bundle = exportBundle(logsOf(c), tx1.sigSid!);
    const clone = () => decodeBundle(encodeBundle(bundle));
    const b1 = clone();
    const e = Buffer.from(b1.logs[0]!.entries[5]!.entry, 'base64');
    e[e.length - 1]! ^= 1;
    b1.logs[0]!.entries[5]!.entry = e.toString('base64');
    expectFailure(verifyBundle(c.definition, b1), 'signature', { entry: b1.logs[0]!.entries[5]!.index });
    const b2 = clone();
    b2.logs[1]!.entries[2]!.proof[0] = Buffer.alloc(32).toString('base64');
    expectFailure(verifyBundle(c.definition, b2), 'inclusion', { entry: b2.logs[1]!.entries[2]!.index });
    const b3 = clone();
    b3.logs[0]!.size -= 1;
    expectFailure(verifyBundle(c.definition, b3), 'checkpoint', { entry: null });
    const other = await makeCluster({ quorum: { distinctOrgs: 2, otherOrgs: 1 } });
    const rep = verifyBundle(other.definition, clone());
    assert.equal(rep.ok, false);
    assert.ok(rep.failures.some((f) => f.rule === 'cluster'));
  });
});

test('garbage, truncated logs and random splices never throw, and never verify as another log', () => {
  const good = serializeLog(c, requester);
  const rnd = (n: number) => new Uint8Array(sha256(new TextEncoder().encode(`garbage ${n}`)).buffer.slice(0, 32));
  for (let k = 0; k < 20; k++) {
    const junk = new Uint8Array(Array.from({ length: 10 + k * 37 }, (_, i) => rnd(k)[i % 32]!));
    const cut = good.subarray(0, (good.length * (k + 1)) / 23 | 0);
    const spliced = new Uint8Array([...good.subarray(0, 1000 + k * 500), ...junk, ...good.subarray(1000 + k * 500)]);
    for (const bytes of [junk, cut, spliced]) {
      const rep = verifyAudit({ definition: c.definition, logs: [{ name: 'g', bytes }] });
      if (bytes !== cut) assert.equal(rep.ok, false);
      assert.ok(formatReport(rep).length > 0);
    }
  }
});

test('entries decode strictly and name their record', () => {
  const list = signedEntries(c, requester, base.get(requester.peerId)!.slice(0, 2));
  const e = decodeAuditEntry(decodeSignedEntry(list[1]!).entry);
  assert.equal(e.seq, 1);
  assert.equal(e.peerId, requester.peerId);
  assert.equal(e.record.case, 'message');
  assert.equal(KEY_ID, 'batcher');
});
