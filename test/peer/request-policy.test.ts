import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { defaultDevnetPolicy, policyToJson } from '../../src/policy/policy-file.ts';
import { RequestPolicy, type EvaluationInput } from '../../src/peer/request-policy.ts';
import type { SigningRequest } from '../../src/peer/signing-request.ts';
import { CLUSTER, INBOX, type2Request } from '../policy/helpers.ts';

/**
 * The refusals of an org's policy that run before anything is written (issue 12: each asserted
 * with its exact rule, detail and op-signer code): the block payload's chain id and sender, a
 * threshold that can never meet this org's quorum, no policy file, raw digests, args that are not
 * JSON. Each refusal writes no verdict; the matching approval does.
 */
const PAYLOAD_HASH = '0x98b76b660dc9dccff1a187938423d67ff71857f06ba054418038ae9737d98ab7';
const OTHER = '0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc';

function policy(o: { blockPayloadChainIds?: number[]; rawDigests?: boolean; quorum?: { distinctOrgs: number; otherOrgs: number }; file?: boolean } = {}): RequestPolicy {
  const dir = mkdtempSync(join(tmpdir(), 'potluck-request-policy-'));
  const file = policyToJson(defaultDevnetPolicy({
    chainId: 900, batchInbox: INBOX, quorum: o.quorum ?? { distinctOrgs: 2, otherOrgs: 1 }, clients: ['batcher'],
    ...(o.blockPayloadChainIds ? { blockPayloadChainIds: o.blockPayloadChainIds } : {}), rawDigests: o.rawDigests ?? false,
  }));
  if (o.file !== false) writeFileSync(join(dir, 'policy.json'), JSON.stringify(file));
  return RequestPolicy.load(dir, new Database(':memory:'), pino({ level: 'silent' }));
}

const block = (over: Record<string, unknown> = {}): SigningRequest => ({
  client: 'batcher', body: { case: 'blockPayload', argsVersion: 2, argsJson: JSON.stringify({ domain: `0x${'00'.repeat(32)}`, chainId: '901', payloadHash: PAYLOAD_HASH, senderAddress: CLUSTER, ...over }) },
});
const tx = (over: Record<string, unknown> = {}): SigningRequest => ({ client: 'batcher', body: { case: 'transaction', argsJson: JSON.stringify(type2Request(over)), blobs: [] } });
const evaluate = (p: RequestPolicy, request: SigningRequest, over: Partial<EvaluationInput> = {}) =>
  p.evaluate({ request, role: 'approver', requesterOrg: 'bravo', session: new Uint8Array(32).fill(3), keyAddresses: [CLUSTER], ...over });

describe('block payloads', () => {
  test('an allowed chain id with the cluster address as sender (or none) is approved, and the verdict is recorded', () => {
    const p = policy({ blockPayloadChainIds: [901] });
    const ev = evaluate(p, block());
    assert.equal(ev.refusal, undefined);
    assert.deepEqual(ev.verdict.reasons.map((r) => [r.rule, r.ok, r.detail]), [
      ['block-args', true, 'well-formed BlockPayloadArgsV2'],
      ['block-chain-id', true, 'chainId 901 allowed'],
      ['block-sender', true, `senderAddress ${CLUSTER} is the cluster address`],
    ]);
    assert.equal(evaluate(p, block({ senderAddress: null })).verdict.reasons[2]!.detail, 'no senderAddress given');
    assert.equal(p.recordsStore.verdicts().length, 2);
  });

  test('a chain id the policy does not list is refused: rule block-chain-id, -32013, nothing written', () => {
    const p = policy({ blockPayloadChainIds: [901, 902] });
    assert.deepEqual(evaluate(p, block({ chainId: '10' })).refusal, { rule: 'block-chain-id', detail: 'unexpected chainId 10 (allowed: 901, 902)', code: -32013 });
    assert.equal(p.recordsStore.verdicts().length, 0);
  });

  test('a sender that is not the cluster address is refused: rule block-sender, -32013, nothing written', () => {
    const p = policy({ blockPayloadChainIds: [901] });
    assert.deepEqual(evaluate(p, block({ senderAddress: OTHER })).refusal, { rule: 'block-sender', detail: 'unexpected from address 0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC', code: -32013 });
    assert.equal(p.recordsStore.verdicts().length, 0);
  });

  test('without blockPayloads in the policy every block payload is refused: rule block-disabled', () => {
    const p = policy();
    assert.deepEqual(evaluate(p, block()).refusal, { rule: 'block-disabled', detail: 'this org signs no block payloads (policy blockPayloads absent)', code: -32013 });
  });
});

describe('the org quorum against the key threshold (requester side)', () => {
  test('a threshold that cannot meet the quorum is refused up front, naming both numbers', () => {
    const p = policy({ quorum: { distinctOrgs: 3, otherOrgs: 2 } });
    assert.deepEqual(evaluate(p, tx(), { role: 'requester', requesterOrg: 'acme', threshold: 2 }).refusal, {
      rule: 'org-quorum', code: -32011,
      detail: "this org's policy requires 3 distinct orgs, 2 besides the requester's, but a signer set has 2 signers (1 besides the requester)",
    });
    assert.equal(p.recordsStore.verdicts().length, 0);
  });

  test('otherOrgs alone can make it impossible', () => {
    const p = policy({ quorum: { distinctOrgs: 2, otherOrgs: 2 } });
    assert.equal(evaluate(p, tx(), { role: 'requester', requesterOrg: 'acme', threshold: 2 }).refusal?.rule, 'org-quorum');
  });

  test('a threshold that can meet it passes this rule, and the request is approved', () => {
    const p = policy({ quorum: { distinctOrgs: 3, otherOrgs: 2 } });
    const ev = evaluate(p, tx(), { role: 'requester', requesterOrg: 'acme', threshold: 3 });
    assert.equal(ev.refusal, undefined);
    assert.deepEqual(ev.verdict.reasons.find((r) => r.rule === 'org-quorum'), { rule: 'org-quorum', ok: true, detail: "a 3-signer set can meet this org's minimum of 3 orgs, 2 besides the requester's" });
  });
});

describe('other cheap refusals', () => {
  test('no policy file: everything is refused, and the reason names the file', () => {
    const p = policy({ file: false });
    const ev = evaluate(p, tx());
    assert.equal(ev.refusal?.rule, 'no-policy');
    assert.match(ev.refusal!.detail, /^this org has no policy file \(.*policy\.json\)$/);
  });

  test('raw digests are refused unless the policy allows them', () => {
    const digest = { client: 'admin', body: { case: 'rawDigest' as const, digest: new Uint8Array(32).fill(1) } };
    assert.deepEqual(evaluate(policy(), digest).refusal, { rule: 'raw-digest', detail: 'raw digests are refused (policy rawDigests: false); only transactions and block payloads are signed', code: -32011 });
    assert.equal(evaluate(policy({ rawDigests: true }), digest).refusal, undefined);
  });

  test('transaction args that are not JSON are refused with the parser\'s reason', () => {
    const ev = evaluate(policy(), { client: 'batcher', body: { case: 'transaction', argsJson: '{', blobs: [] } });
    assert.equal(ev.refusal?.rule, 'args');
    assert.match(ev.refusal!.detail, /^TransactionArgs are not JSON: /);
    assert.equal(ev.digest, undefined);
  });
});
