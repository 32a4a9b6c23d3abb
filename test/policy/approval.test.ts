import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex, hexToBytes, numberToHex } from 'viem';
import { approvalQuorum } from '../../src/cluster/definition.ts';
import {
  CertificateError, conflictingApprovals, decodeApproval, encodeCertificate, openApproval, openCertificate, signApproval, subjectOf,
  type Approval, type Approver, type ApprovalSubject,
} from '../../src/policy/approval.ts';
import { contentKey } from '../../src/policy/equivocation.ts';
import { decodeOrThrow } from '../../src/policy/transaction-args.ts';
import { digestOf } from '../../src/policy/tx-policy.ts';
import { CertificateType } from '../../src/protocol/messages.ts';
import { CLUSTER, SAMPLE_BATCH, type2Request } from './helpers.ts';

const CLUSTER_HASH = new Uint8Array(32).fill(7);
const seeds = [1, 2, 3, 4].map((i) => new Uint8Array(32).fill(i));
const approvers: (Approver & { seed: Uint8Array })[] = seeds.map((seed, i) => ({
  org: ['acme', 'bravo', 'coral', 'delta'][i]!, peerId: `peer-${i + 1}`, publicKey: ed25519.getPublicKey(seed), seed,
}));
const REQ_ID = new Uint8Array(32).fill(9);
const q = (n: number) => numberToHex(n);

const txSubject = (over: Record<string, unknown> = {}): ApprovalSubject => subjectOf({ case: 'transaction', argsJson: JSON.stringify(type2Request(over)) }, CLUSTER);
const approve = (who: number, subject = txSubject()): Approval => {
  const a = approvers[who]!;
  return signApproval({ ...subject, clusterHash: CLUSTER_HASH, approverOrg: a.org, approver: a.peerId, requestId: REQ_ID }, a.seed);
};
const check = (digest: Uint8Array, quorum = 3) => ({ clusterHash: CLUSTER_HASH, approvers, quorum, digest, keyAddress: CLUSTER });

describe('c = ⌈(n + f + 1) / 2⌉', () => {
  test('exact values, and any two quorums share f + 1 members', () => {
    assert.deepEqual([[2, 0], [3, 0], [4, 1], [5, 1], [7, 2], [10, 3], [16, 5]].map(([n, f]) => approvalQuorum(n!, f!)), [2, 2, 3, 4, 5, 7, 11]);
    for (let n = 2; n <= 16; n++)
      for (let f = 0; 3 * f + 1 <= n; f++) {
        const c = approvalQuorum(n, f);
        assert.ok(2 * c - n >= f + 1, `n=${n} f=${f}`);
        assert.ok(c <= n - f, `n=${n} f=${f}: the honest members alone can certify`);
      }
  });
});

describe('subjectOf', () => {
  test('a transaction: slot, content key, fees and digest from the request alone', () => {
    const req = type2Request();
    const s = txSubject();
    assert.deepEqual({ ...s, contentKey: bytesToHex(s.contentKey), digest: bytesToHex(s.digest) }, {
      kind: 'transaction', keyAddress: CLUSTER.toLowerCase(), chainId: 900, nonce: 42, contentKey: contentKey(decodeOrThrow(req)),
      gas: '100000', maxFeePerGas: '2000000000', maxPriorityFeePerGas: '1000000000', maxFeePerBlobGas: '', digest: digestOf(req),
    });
    const bumped = txSubject({ maxFeePerGas: q(2_200_000_000) });
    assert.equal(bytesToHex(bumped.contentKey), bytesToHex(s.contentKey), 'fees are not content');
    assert.notEqual(bytesToHex(bumped.digest), bytesToHex(s.digest));
  });
  test('a raw digest is its own content; bad args are an ApprovalError naming the problem', () => {
    const d = new Uint8Array(32).fill(5);
    assert.equal(subjectOf({ case: 'rawDigest', digest: d }, CLUSTER).kind, 'raw-digest');
    assert.throws(() => subjectOf({ case: 'transaction', argsJson: '{' }, CLUSTER), { name: 'ApprovalError', message: /^request args are not JSON/ });
    assert.throws(() => subjectOf({ case: 'transaction', argsJson: JSON.stringify(type2Request({ gasPrice: '0x1' })) }, CLUSTER), { name: 'ApprovalError' });
  });
});

describe('approvals', () => {
  test('sign → encode → open, byte for byte', () => {
    const a = approve(1);
    const back = openApproval(a.bytes, CLUSTER_HASH, approvers);
    assert.equal(bytesToHex(back.bytes), bytesToHex(a.bytes));
    assert.deepEqual({ ...back, bytes: undefined }, { ...a, bytes: undefined });
    assert.equal(back.approverOrg, 'bravo');
  });
  test('a flipped byte anywhere is refused: bad signature, or malformed', () => {
    const a = approve(0);
    for (let i = 0; i < a.bytes.length; i += 7) {
      const bad = new Uint8Array(a.bytes);
      bad[i]! ^= 0x01;
      assert.throws(() => openApproval(bad, CLUSTER_HASH, approvers), (e: unknown) => e instanceof CertificateError && ['signature', 'malformed', 'approver', 'cluster'].includes(e.problem), `byte ${i}`);
    }
  });
  test('an approval signed by another member than it names is refused as unsigned', () => {
    const fields = { ...txSubject(), clusterHash: CLUSTER_HASH, approverOrg: 'acme', approver: 'peer-1', requestId: REQ_ID };
    const forged = signApproval(fields, approvers[1]!.seed);
    assert.throws(() => openApproval(forged.bytes, CLUSTER_HASH, approvers), { name: 'CertificateError', message: 'approval certificate: the approval by acme is not signed by its identity key' });
  });
  test('a non-holder, a wrong org name and another cluster are refused by name', () => {
    const outsider = signApproval({ ...txSubject(), clusterHash: CLUSTER_HASH, approverOrg: 'evil', approver: 'peer-9', requestId: REQ_ID }, new Uint8Array(32).fill(9));
    assert.throws(() => openApproval(outsider.bytes, CLUSTER_HASH, approvers), { name: 'CertificateError', message: 'approval certificate: evil (peer-9) holds no share of this key' });
    const renamed = signApproval({ ...txSubject(), clusterHash: CLUSTER_HASH, approverOrg: 'coral', approver: 'peer-1', requestId: REQ_ID }, seeds[0]!);
    assert.throws(() => openApproval(renamed.bytes, CLUSTER_HASH, approvers), { name: 'CertificateError', message: 'approval certificate: approval by peer-1 names org coral, the cluster says acme' });
    assert.throws(() => openApproval(approve(0).bytes, new Uint8Array(32), approvers), { name: 'CertificateError', message: 'approval certificate: approval by peer-1 is for another cluster definition' });
  });
  test('decoding is strict: trailing bytes and a huge input are refused', () => {
    const a = approve(0);
    assert.throws(() => decodeApproval(new Uint8Array([...a.bytes, 0])), { name: 'DecodeError' });
    assert.throws(() => decodeApproval(new Uint8Array(2000)), { name: 'DecodeError', message: /2000 bytes; an approval is under 1 KiB/ });
  });
});

describe('certificates', () => {
  const digest = txSubject().digest;
  test('c approvals of one digest by distinct holders open, in approver order', () => {
    const cert = encodeCertificate([approve(2), approve(0), approve(1)]);
    assert.deepEqual(openCertificate(cert, check(digest)).map((a) => a.approverOrg), ['acme', 'bravo', 'coral']);
  });
  test('missing, short, duplicate, another digest, mixed subjects: each refused by name', () => {
    const cases: [Uint8Array, string, string][] = [
      [new Uint8Array(0), 'missing', 'approval certificate: none was sent; co-signers spend nothing without one'],
      [encodeCertificate([approve(0), approve(1)]), 'short', 'approval certificate: 2 approvals, 3 needed'],
      [CertificateType.encode(CertificateType.create({ approvals: [approve(0).bytes, approve(0).bytes, approve(1).bytes] })).finish(), 'duplicate', 'approval certificate: acme approved twice'],
      [encodeCertificate([approve(0), approve(1), approve(2, txSubject({ maxFeePerGas: q(3_000_000_000) }))]), 'digest', `approval certificate: the approval by coral is for digest ${bytesToHex(txSubject({ maxFeePerGas: q(3_000_000_000) }).digest)}, not ${bytesToHex(digest)}`],
      [new Uint8Array([0xff, 0xff]), 'malformed', ''],
    ];
    for (const [bytes, problem, message] of cases)
      assert.throws(() => openCertificate(bytes, check(digest)), (e: unknown) => e instanceof CertificateError && e.problem === problem && (message === '' || e.message === message), problem);
  });
  test('a certificate over 20,000 bytes, more approvals than holders, another key: each refused by name', () => {
    assert.throws(() => openCertificate(new Uint8Array(20_001), check(digest)), { name: 'CertificateError', message: 'approval certificate: 20001 bytes is more than 16 approvals' });
    const four = encodeCertificate([approve(0), approve(1), approve(2), approve(3)]);
    assert.throws(() => openCertificate(four, { ...check(digest), approvers: approvers.slice(0, 3) }), { name: 'CertificateError', message: 'approval certificate: 4 approvals from 3 holders' });
    const other = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8';
    assert.throws(() => openCertificate(encodeCertificate([approve(0), approve(1), approve(2)]), { ...check(digest), keyAddress: other }), { name: 'CertificateError', message: `approval certificate: the approval by acme is for key ${CLUSTER.toLowerCase()}` });
  });
  test('approvals of one digest with a different subject field are inconsistent', () => {
    const lying = { ...txSubject(), nonce: 41 }; // same digest, another nonce claimed
    const cert = encodeCertificate([approve(0), approve(1), approve(2, lying)]);
    assert.throws(() => openCertificate(cert, check(digest)), { name: 'CertificateError', message: 'approval certificate: the approvals by acme and coral describe different requests' });
  });
});

describe('conflicting approvals', () => {
  test('two contents at one slot by one member are found, with both signed approvals; fee bumps are not conflicts', () => {
    const x = txSubject();
    const y = txSubject({ input: `${SAMPLE_BATCH.slice(0, -4)}9d01` });
    const bump = txSubject({ maxFeePerGas: q(2_200_000_000) });
    const other = txSubject({ nonce: q(43), input: `${SAMPLE_BATCH.slice(0, -4)}9d01` });
    const found = conflictingApprovals([approve(0, x), approve(1, x), approve(1, bump), approve(1, y), approve(2, y), approve(1, other), approve(1, y)]);
    assert.equal(found.length, 1);
    assert.deepEqual([found[0]!.approverOrg, found[0]!.slot], ['bravo', `900/${CLUSTER.toLowerCase()}/42`]);
    assert.deepEqual([bytesToHex(found[0]!.first.digest), bytesToHex(found[0]!.second.digest)], [bytesToHex(x.digest), bytesToHex(y.digest)]);
    assert.equal(bytesToHex(hexToBytes(bytesToHex(found[0]!.second.bytes))), bytesToHex(approve(1, y).bytes));
  });
});
