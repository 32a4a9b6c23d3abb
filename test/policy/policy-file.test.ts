import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  PolicyFileError, defaultDevnetPolicy, loadPolicyFile, parsePolicy, policyToJson, quorumReason, toTxPolicy, type PolicyFile,
} from '../../src/policy/policy-file.ts';
import { evaluateTransaction } from '../../src/policy/tx-policy.ts';
import { CLUSTER, INBOX, type2Request } from './helpers.ts';

const base = (): Record<string, any> => ({
  version: 1,
  transactions: {
    chainIds: [900],
    batchInbox: INBOX,
    caps: { gas: '30000000', maxFeePerGas: '500000000000', maxPriorityFeePerGas: 50000000000, maxFeePerBlobGas: '100000000000', maxBlobs: 6 },
    allowBlobsWithoutContent: true,
  },
  blockPayloads: { chainIds: [901] },
  quorum: { distinctOrgs: 3, otherOrgs: 2 },
  clients: [{ name: 'batcher', maxRequestsPerMinute: 600 }, { name: 'proposer.example.org', maxRequestsPerMinute: 60 }],
  rawDigests: false,
  nonceWindow: 16,
  memberRequestsPerMinute: 300,
});

const EXPECTED: PolicyFile = {
  version: 1,
  transactions: {
    chainIds: [900],
    batchInbox: '0xFf00000000000000000000000000000000000901',
    caps: { gas: 30_000_000n, maxFeePerGas: 500_000_000_000n, maxPriorityFeePerGas: 50_000_000_000n, maxFeePerBlobGas: 100_000_000_000n, maxBlobs: 6 },
    allowBlobsWithoutContent: true,
  },
  blockPayloads: { chainIds: [901] },
  quorum: { distinctOrgs: 3, otherOrgs: 2 },
  clients: [{ name: 'batcher', maxRequestsPerMinute: 600 }, { name: 'proposer.example.org', maxRequestsPerMinute: 60 }],
  rawDigests: false,
  nonceWindow: 16,
  memberRequestsPerMinute: 300,
};

/** Asserts parsePolicy refuses `json` with exactly these problems. */
function refused(json: unknown, problems: string[]) {
  assert.throws(() => parsePolicy(json), (e: unknown) => {
    assert.equal((e as Error).constructor, PolicyFileError);
    assert.deepEqual((e as PolicyFileError).problems, problems);
    assert.equal((e as Error).message, `policy: ${problems.join('; ')}`);
    return true;
  });
}
const edit = (f: (j: Record<string, any>) => void) => { const j = base(); f(j); return j; };

describe('parsePolicy', () => {
  test('a full file; caps as decimal strings or safe numbers; inbox checksummed', () => {
    assert.deepEqual(parsePolicy(base()), EXPECTED);
  });
  test('defaults: no blob content exemption, no block payloads, no clients, no raw digests, a 64-nonce window, 1200 member requests a minute', () => {
    const j = base();
    delete j.transactions.allowBlobsWithoutContent;
    delete j.blockPayloads;
    delete j.clients;
    delete j.rawDigests;
    delete j.nonceWindow;
    delete j.memberRequestsPerMinute;
    assert.deepEqual(parsePolicy(j), {
      ...EXPECTED, transactions: { ...EXPECTED.transactions, allowBlobsWithoutContent: false }, blockPayloads: null, clients: [], rawDigests: false, nonceWindow: 64, memberRequestsPerMinute: 1200,
    });
  });
  test('nonceWindow and memberRequestsPerMinute are bounded whole numbers', () => {
    refused({ ...base(), nonceWindow: -1, memberRequestsPerMinute: 0 }, ['nonceWindow: must be a whole number in 0..1000000, got -1', 'memberRequestsPerMinute: must be a whole number in 1..1000000, got 0']);
    assert.equal(parsePolicy({ ...base(), blockPayloads: null }).blockPayloads, null);
  });
  test('round trip through policyToJson', () => {
    const p = parsePolicy(base());
    assert.deepEqual(parsePolicy(JSON.parse(JSON.stringify(policyToJson(p)))), p);
  });
  test('not an object', () => refused([], ['(file): must be an object, got an array']));
  test('unknown keys at every level', () => refused(edit((j) => {
    j.maxRequestsPerMinute = 5;
    j.transactions.to = INBOX;
    j.transactions.caps.value = '0';
    j.quorum.orgs = 2;
    j.clients[0].key = 'x';
    j.blockPayloads.senders = [];
  }), [
    'maxRequestsPerMinute: unknown key', 'transactions.to: unknown key', 'transactions.caps.value: unknown key',
    'blockPayloads.senders: unknown key', 'quorum.orgs: unknown key', 'clients[0].key: unknown key',
  ]));
  test('missing required fields', () => {
    refused({ version: 1 }, ['transactions: required', 'quorum: required']);
    refused(edit((j) => { delete j.transactions.caps.maxBlobs; delete j.transactions.batchInbox; }), [
      'transactions.batchInbox: required', 'transactions.caps.maxBlobs: required',
    ]);
  });
  test('version', () => refused({ ...base(), version: 2 }, ['version: must be 1, got 2']));
  test('chain ids', () => {
    refused(edit((j) => { j.transactions.chainIds = []; }), ['transactions.chainIds: must be a non-empty array of chain ids, got an array']);
    refused(edit((j) => { j.transactions.chainIds = [900, 0, '901', 900]; }), [
      'transactions.chainIds[1]: must be a whole number in 1..9007199254740991, got 0',
      'transactions.chainIds[2]: must be a whole number in 1..9007199254740991, got "901"',
      'transactions.chainIds[3]: duplicate chain id 900',
    ]);
    refused(edit((j) => { j.blockPayloads = { chainIds: 901 }; }), ['blockPayloads.chainIds: must be a non-empty array of chain ids, got 901']);
  });
  test('batch inbox: bad checksum, short', () => {
    refused(edit((j) => { j.transactions.batchInbox = '0xFF00000000000000000000000000000000000901'; }),
      ['transactions.batchInbox: not an address (0x + 40 hex, valid EIP-55 checksum if mixed case): "0xFF00000000000000000000000000000000000901"']);
    refused(edit((j) => { j.transactions.batchInbox = '0xff'; }), ['transactions.batchInbox: not an address (0x + 40 hex, valid EIP-55 checksum if mixed case): "0xff"']);
  });
  test('caps: hex, negative, unsafe number, too wide, fractional', () => refused(edit((j) => {
    j.transactions.caps = { gas: '0x1c9c380', maxFeePerGas: -1, maxPriorityFeePerGas: 2 ** 53, maxFeePerBlobGas: (1n << 256n).toString(), maxBlobs: 1.5 };
  }), [
    'transactions.caps.gas: must be a decimal string or a whole number ≤ 2^53-1, got "0x1c9c380"',
    'transactions.caps.maxFeePerGas: must be a decimal string or a whole number ≤ 2^53-1, got -1',
    'transactions.caps.maxPriorityFeePerGas: must be a decimal string or a whole number ≤ 2^53-1, got 9007199254740992',
    'transactions.caps.maxFeePerBlobGas: exceeds 256 bits',
    'transactions.caps.maxBlobs: must be a whole number in 0..9007199254740991, got 1.5',
  ]));
  test('gas cap above 64 bits, leading zero', () => {
    refused(edit((j) => { j.transactions.caps.gas = '18446744073709551616'; }), ['transactions.caps.gas: exceeds 64 bits']);
    refused(edit((j) => { j.transactions.caps.gas = '030000000'; }), ['transactions.caps.gas: must be a decimal string or a whole number ≤ 2^53-1, got "030000000"']);
  });
  test('booleans are booleans', () => refused(edit((j) => { j.transactions.allowBlobsWithoutContent = 'false'; j.rawDigests = 0; }), [
    'transactions.allowBlobsWithoutContent: must be true or false, got "false"', 'rawDigests: must be true or false, got 0',
  ]));
  test('quorum bounds', () => {
    refused(edit((j) => { j.quorum = { distinctOrgs: 0, otherOrgs: 0 }; }), ['quorum.distinctOrgs: must be a whole number in 1..16, got 0']);
    refused(edit((j) => { j.quorum = { distinctOrgs: 2, otherOrgs: 3 }; }), ['quorum.otherOrgs: must be a whole number in 0..2, got 3']);
  });
  test('clients: name, duplicate, rate', () => {
    refused(edit((j) => {
      j.clients = [{ name: 'batcher', maxRequestsPerMinute: 0 }, { name: 'batcher', maxRequestsPerMinute: 1 }, { name: 'bad name', maxRequestsPerMinute: 1 }, 'x'];
    }), [
      'clients[0].maxRequestsPerMinute: must be a whole number in 1..1000000, got 0',
      'clients[1].name: duplicate client "batcher"',
      'clients[2].name: must be a certificate DNS name, got "bad name"',
      'clients[3]: must be an object, got "x"',
    ]);
    refused(edit((j) => { j.clients = {}; }), ['clients: must be an array, got object']);
  });
});

describe('loadPolicyFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'potluck-policy-'));
  test('reads and validates, naming the file', () => {
    const path = join(dir, 'policy.json');
    writeFileSync(path, JSON.stringify(base()));
    assert.deepEqual(loadPolicyFile(path), EXPECTED);
    writeFileSync(path, JSON.stringify({ ...base(), extra: true }));
    assert.throws(() => loadPolicyFile(path), { name: 'PolicyFileError', message: `policy file ${path}: extra: unknown key` });
  });
  test('missing file and bad JSON are PolicyFileErrors', () => {
    assert.throws(() => loadPolicyFile(join(dir, 'none.json')), { name: 'PolicyFileError', message: `policy file ${join(dir, 'none.json')}: cannot read: ENOENT` });
    const path = join(dir, 'bad.json');
    writeFileSync(path, '{"version": 1,');
    assert.throws(() => loadPolicyFile(path), (e: unknown) => e instanceof PolicyFileError && /^not JSON: /.test(e.problems[0]!));
  });
});

describe('defaultDevnetPolicy and toTxPolicy', () => {
  test('devnet defaults', () => {
    const p = defaultDevnetPolicy({ chainId: 900, batchInbox: INBOX, quorum: { distinctOrgs: 2, otherOrgs: 1 }, clients: ['batcher'] });
    assert.deepEqual(p, {
      version: 1,
      transactions: { ...EXPECTED.transactions, allowBlobsWithoutContent: false },
      blockPayloads: null,
      quorum: { distinctOrgs: 2, otherOrgs: 1 },
      clients: [{ name: 'batcher', maxRequestsPerMinute: 600 }],
      rawDigests: true,
      nonceWindow: 64,
      memberRequestsPerMinute: 1200,
    });
    assert.throws(() => defaultDevnetPolicy({ chainId: 0, batchInbox: INBOX, quorum: { distinctOrgs: 2, otherOrgs: 1 }, clients: [] }),
      { name: 'PolicyFileError', message: 'policy file defaultDevnetPolicy: transactions.chainIds[0]: must be a whole number in 1..9007199254740991, got 0' });
  });
  test('toTxPolicy adds the cluster address; a request passes evaluateTransaction', () => {
    const tp = toTxPolicy(parsePolicy(base()), CLUSTER.toLowerCase());
    assert.deepEqual(tp, { chainIds: [900], from: CLUSTER, to: EXPECTED.transactions.batchInbox, caps: EXPECTED.transactions.caps, allowBlobsWithoutContent: true });
    assert.equal(evaluateTransaction(tp, type2Request()).approve, true);
    assert.throws(() => toTxPolicy(parsePolicy(base()), '0x12'), { name: 'PolicyFileError', message: 'policy: from: not an address: "0x12"' });
  });
});

describe('quorumReason', () => {
  const p = parsePolicy(base()); // distinctOrgs 3, otherOrgs 2
  test('enough orgs', () => assert.deepEqual(quorumReason(p, { signerOrgs: ['acme', 'bravo', 'cobalt'], requesterOrg: 'acme' }), {
    rule: 'org-quorum', ok: true, detail: "signer set spans 3 org(s), 2 besides the requester's (acme); policy minimum 3 and 2",
  }));
  test('too few distinct orgs (two peers of one org count once)', () => assert.deepEqual(quorumReason(p, { signerOrgs: ['acme', 'bravo', 'bravo'], requesterOrg: 'acme' }), {
    rule: 'org-quorum', ok: false,
    detail: "signer set spans 2 org(s), this org's policy requires at least 3; signer set has 1 org(s) besides the requester's (acme), this org's policy requires at least 2",
  }));
  test("otherOrgs counts only the orgs other than the requester's", () => {
    const q = parsePolicy({ ...base(), quorum: { distinctOrgs: 2, otherOrgs: 2 } });
    assert.equal(quorumReason(q, { signerOrgs: ['acme', 'bravo'], requesterOrg: 'acme' }).ok, false);
    assert.equal(quorumReason(q, { signerOrgs: ['acme', 'bravo', 'cobalt'], requesterOrg: 'acme' }).ok, true);
  });
});
