import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { bytesToHex, numberToHex } from 'viem';
import { createDefinition, type ClusterDefinition } from '../../src/cluster/definition.ts';
import { membersOf, type Member } from '../../src/cluster/members.ts';
import { signerOf } from '../../src/cluster/signing.ts';
import { openApproval } from '../../src/policy/approval.ts';
import { defaultDevnetPolicy, policyToJson } from '../../src/policy/policy-file.ts';
import { ethAddress } from '../../src/protocol/sign.ts';
import type { KeyShare } from '../../src/protocol/key-share.ts';
import { keygen } from '../../src/sim/simulator.ts';
import { Approver, type ApproverDeps } from '../../src/peer/approver.ts';
import type { Control } from '../../src/peer/control.ts';
import type { LoadedKey } from '../../src/peer/peer-core.ts';
import { RequestPolicy } from '../../src/peer/request-policy.ts';
import { encodeSigningRequest } from '../../src/peer/signing-request.ts';
import { INBOX, SAMPLE_BATCH } from '../policy/helpers.ts';

/**
 * The approver on its own (issue 11), against plain objects and a real policy on an in-memory
 * SQLite: what it answers, what it writes, and that every refusal writes nothing.
 */
const ORGS = ['acme', 'bravo', 'coral'];
let share: KeyShare;
let seeds: Uint8Array[];
let infos: { org: string; peerId: string; addresses: string[]; api: string }[];

before(async () => {
  share = keygen(2, 3, { seed: 'approver-test' }).get(1)!;
  seeds = ORGS.map((_, i) => new Uint8Array(32).fill(i + 1));
  infos = await Promise.all(ORGS.map(async (org, i) => ({ org, peerId: peerIdFromPrivateKey(await generateKeyPairFromSeed('Ed25519', seeds[i]!)).toString(), addresses: [`/ip4/127.0.0.1/tcp/${7000 + i}`], api: `127.0.0.1:${8000 + i}` })));
});

interface World {
  approver: Approver;
  sent: { to: number; session: Uint8Array; control: Control }[];
  logged: string[];
  policy: RequestPolicy;
  members: Member[];
  address: string;
  key: LoadedKey;
}

function world(o: { requesters?: Record<string, string[]>; withheld?: string; memberRequestsPerMinute?: number } = {}): World {
  const definition: ClusterDefinition = createDefinition('t', 2, { distinctOrgs: 2, otherOrgs: 1 }, infos, { requesters: o.requesters ?? {} });
  const members = membersOf(definition);
  const self = members.find((m) => m.org === 'acme')!;
  const dir = mkdtempSync(join(tmpdir(), 'potluck-approver-'));
  const address = ethAddress(share.publicKey);
  const file = { ...policyToJson(defaultDevnetPolicy({ chainId: 900, batchInbox: INBOX, quorum: { distinctOrgs: 2, otherOrgs: 1 }, clients: ['batcher'] })), nonceWindow: 4, ...(o.memberRequestsPerMinute ? { memberRequestsPerMinute: o.memberRequestsPerMinute } : {}) };
  writeFileSync(join(dir, 'policy.json'), JSON.stringify(file));
  const log = pino({ level: 'silent' });
  const policy = RequestPolicy.load(dir, new Database(':memory:'), log);
  const byParty = new Map(members.map((m, i) => [i + 1, m.index]));
  const key: LoadedKey = { share, address, poolKey: new Uint8Array(32), memberOf: byParty, partyOf: new Map([...byParty].map(([p, m]) => [m, p])) };
  const sent: World['sent'] = [];
  const logged: string[] = [];
  const deps: ApproverDeps = {
    members, self, definition, clusterHash: new Uint8Array(32).fill(9), keys: new Map([[share.keyId, key]]), policy, identity: signerOf(seeds[0]!), log,
    audit: { verdict: (p) => void logged.push(`verdict:${p.role}:${p.verdict.approve}`), approval: () => void logged.push('approval') },
    host: { sendControl: (to, session, control) => void sent.push({ to, session, control }) },
  };
  return { approver: new Approver(deps, () => o.withheld), sent, logged, policy, members, address, key };
}

const tx = (w: World, over: Record<string, unknown> = {}) => ({
  from: w.address, to: INBOX, gas: '0x186a0', gasPrice: null, maxFeePerGas: '0x77359400', maxPriorityFeePerGas: '0x3b9aca00', value: '0x0',
  nonce: '0x0', data: null, input: SAMPLE_BATCH, accessList: [], chainId: '0x384', ...over,
});
let round = 0;
const ask = (w: World, from: string, args: Record<string, unknown>, id = new Uint8Array(32).fill(++round % 256)) => {
  const request = encodeSigningRequest({ client: 'batcher', body: { case: 'transaction', argsJson: JSON.stringify(args), blobs: [] } });
  w.approver.onApprovalRequest(w.members.find((m) => m.org === from)!, id, { keyId: share.keyId, requestId: id, request });
  return w.sent.at(-1);
};
const declined = (s: World['sent'][number] | undefined) => (s?.control.case === 'decision' ? { code: s.control.value.code, reason: s.control.value.reason } : undefined);
const slot = (w: World, nonce: number) => w.policy.recordsStore.recordAt(900, w.address, nonce);

describe('approver', () => {
  test('approves a request its policy accepts: claims the slot, logs verdict and approval, then answers with a signed approval', () => {
    const w = world();
    const reply = ask(w, 'bravo', tx(w));
    assert.equal(reply?.control.case, 'approval');
    const a = openApproval(reply!.control.value as Uint8Array, new Uint8Array(32).fill(9), w.members);
    assert.deepEqual([a.approverOrg, a.kind, a.nonce, a.chainId], ['acme', 'transaction', 0, 900]);
    assert.deepEqual(w.logged, ['verdict:approver:true', 'approval']);
    assert.notEqual(slot(w, 0), null);
    assert.equal(w.policy.recordsStore.verdicts().length, 1);
  });

  test('a policy refusal is declined with code policy and writes nothing', () => {
    const w = world();
    const d = declined(ask(w, 'bravo', tx(w, { to: '0x70997970c51812dc3a010c7d01b50e0d17dc79c8' })));
    assert.equal(d?.code, 'policy');
    assert.match(d!.reason, /^policy refused \(to\): to 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 is not the batch inbox/);
    assert.deepEqual(w.logged, []);
    assert.equal(slot(w, 0), null);
    assert.equal(w.policy.recordsStore.verdicts().length, 0);
  });

  test('an org the definition does not list as a requester is refused before any evaluation', () => {
    const w = world({ requesters: { [share.keyId]: ['acme'] } });
    const d = declined(ask(w, 'bravo', tx(w)));
    assert.deepEqual(d, { code: 'policy', reason: `bravo may not originate requests for key ${share.keyId} (cluster definition: requesters)` });
    assert.deepEqual(w.logged, []);
    assert.equal(slot(w, 0), null);
  });

  test('the nonce window without an L1: up to the highest approved nonce + nonceWindow', () => {
    const w = world();
    assert.equal(ask(w, 'bravo', tx(w, { nonce: numberToHex(10) }))?.control.case, 'approval', 'the first approval may be anywhere');
    assert.equal(ask(w, 'bravo', tx(w, { nonce: numberToHex(14), input: `${SAMPLE_BATCH.slice(0, -4)}9d01` }))?.control.case, 'approval');
    const d = declined(ask(w, 'bravo', tx(w, { nonce: numberToHex(19), input: `${SAMPLE_BATCH.slice(0, -4)}9d01` })));
    assert.deepEqual(d, { code: 'policy', reason: 'policy refused (nonce-window): nonce 19 is beyond the highest approved nonce 14 + window 4' });
    assert.equal(slot(w, 19), null);
  });

  test('a different content at a claimed slot is refused and writes nothing; the same content at higher fees is approved without raising the floor', () => {
    const w = world();
    ask(w, 'bravo', tx(w));
    const d = declined(ask(w, 'coral', tx(w, { input: `${SAMPLE_BATCH.slice(0, -4)}9d01` })));
    assert.equal(d?.code, 'policy');
    assert.match(d!.reason, /^policy refused \(equivocation\): differs from the request approved at 900\/.*\/0 in data/);
    assert.equal(ask(w, 'coral', tx(w, { maxFeePerGas: '0x174876e800' }))?.control.case, 'approval');
    assert.equal(slot(w, 0)!.request.maxFeePerGas, 2_000_000_000n, 'the floor is still the first approval\'s');
  });

  test('a rolled-back peer approves nothing and says why', () => {
    const w = world({ withheld: "this peer's state was rolled back: …" });
    assert.deepEqual(declined(ask(w, 'bravo', tx(w))), { code: 'rollback', reason: "this peer's state was rolled back: …" });
    assert.deepEqual(w.logged, []);
  });

  test('over its rate a member gets one decline, then silence; nothing is evaluated', () => {
    const w = world({ memberRequestsPerMinute: 2 });
    for (const n of [0, 1]) assert.equal(ask(w, 'bravo', tx(w, { nonce: numberToHex(n), input: n ? `${SAMPLE_BATCH.slice(0, -4)}9d01` : SAMPLE_BATCH }))?.control.case, 'approval');
    const before = w.sent.length;
    assert.deepEqual(declined(ask(w, 'bravo', tx(w, { nonce: '0x2' }))), { code: 'rate-limit', reason: 'bravo exceeded 2 approval requests per minute' });
    ask(w, 'bravo', tx(w, { nonce: '0x3' }));
    assert.equal(w.sent.length, before + 1, 'the fourth is dropped unanswered');
    assert.equal(ask(w, 'coral', tx(w, { nonce: '0x2' }))?.control.case, 'approval', "another member's bucket is its own");
    assert.equal(slot(w, 3), null);
  });

  test('an unknown key, a member holding no share, a request that does not decode: refused by name, nothing written', () => {
    const w = world();
    const id = new Uint8Array(32).fill(0x31);
    const request = encodeSigningRequest({ client: 'batcher', body: { case: 'transaction', argsJson: JSON.stringify(tx(w)), blobs: [] } });
    const bravo = w.members.find((m) => m.org === 'bravo')!;
    w.approver.onApprovalRequest(bravo, id, { keyId: 'other', requestId: id, request });
    assert.deepEqual(declined(w.sent.at(-1)), { code: '', reason: 'unknown key "other"' });
    const coral = w.members.find((m) => m.org === 'coral')!;
    w.key.partyOf.delete(coral.index); // as for a member that joined after this key was made
    w.approver.onApprovalRequest(coral, id, { keyId: share.keyId, requestId: id, request });
    assert.deepEqual(declined(w.sent.at(-1)), { code: '', reason: `coral holds no share of ${share.keyId}` });
    w.approver.onApprovalRequest(bravo, id, { keyId: share.keyId, requestId: id, request: new Uint8Array([0xff, 0xff]) });
    assert.match(declined(w.sent.at(-1))!.reason, /^malformed signing request: /);
    assert.deepEqual(w.logged, []);
    assert.equal(slot(w, 0), null);
  });

  test('a round id that is not the session id is refused', () => {
    const w = world();
    const request = encodeSigningRequest({ client: 'batcher', body: { case: 'transaction', argsJson: JSON.stringify(tx(w)), blobs: [] } });
    w.approver.onApprovalRequest(w.members[1]!, new Uint8Array(32).fill(1), { keyId: share.keyId, requestId: new Uint8Array(32).fill(2), request });
    assert.deepEqual(declined(w.sent.at(-1)), { code: '', reason: 'the session id must be the approval request id' });
    assert.equal(bytesToHex(w.sent.at(-1)!.session), bytesToHex(new Uint8Array(32).fill(1)));
  });
});
