import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { numberToHex } from 'viem';
import { contentKey } from '../../src/policy/equivocation.ts';
import { parsePolicy, toTxPolicy } from '../../src/policy/policy-file.ts';
import { decodeOrThrow, type BatchTransaction } from '../../src/policy/transaction-args.ts';
import { digestOf, evaluateTransaction } from '../../src/policy/tx-policy.ts';
import { verdictOf } from '../../src/policy/verdict.ts';
import { PeerStore } from '../../src/store/database.ts';
import {
  InterchangeConflictError, InterchangeError, PolicyRecords, PolicyRecordsError, parseBatchTx, serializeBatchTx,
  type Interchange, type VerdictMeta,
} from '../../src/store/policy-records.ts';
import { CLUSTER, INBOX, SAMPLE_BATCH, type2Request, type3Request } from '../policy/helpers.ts';

const q = (n: bigint | number) => numberToHex(n);
const SENDER = CLUSTER.toLowerCase();
const SLOT = (nonce: number) => `900/${SENDER}/${nonce}`;
const T0 = Date.UTC(2025, 0, 1, 12, 0, 0);
const iso = (ms: number) => new Date(ms).toISOString();
const POLICY = toTxPolicy(parsePolicy({
  version: 1,
  transactions: {
    chainIds: [900], batchInbox: INBOX, allowBlobsWithoutContent: true,
    caps: { gas: '30000000', maxFeePerGas: '500000000000', maxPriorityFeePerGas: '50000000000', maxFeePerBlobGas: '100000000000', maxBlobs: 6 },
  },
  quorum: { distinctOrgs: 2, otherOrgs: 1 },
}), CLUSTER);
const META: VerdictMeta = { session: null, requester: 'acme', client: 'batcher', role: 'requester' };

function fresh() {
  return join(mkdtempSync(join(tmpdir(), 'potluck-records-')), 'potluck.db');
}

/** A store on a real file with a clock that advances 1 s per reading. */
function open(path = fresh(), start = T0) {
  let t = start;
  const store = new PeerStore(path);
  const rec = new PolicyRecords(store.db, { now: () => (t += 1000) - 1000 });
  return { store, rec, path };
}

const decide = (rec: PolicyRecords, req: Record<string, unknown>, meta: VerdictMeta = META) =>
  rec.decideTransaction(decodeOrThrow(req), (recorded) => evaluateTransaction(POLICY, req, { recorded }), meta);

const first2 = type2Request();
const bumped2 = type2Request({ maxFeePerGas: q(2_200_000_000), maxPriorityFeePerGas: q(1_100_000_000) });
const tx = (r: Record<string, unknown>): BatchTransaction => decodeOrThrow(r);

describe('serializeBatchTx / parseBatchTx', () => {
  test('canonical JSON round-trips exactly, types 2 and 3, with an access list', () => {
    for (const r of [first2, type3Request(), type2Request({ accessList: [{ address: INBOX, storageKeys: [`0x${'00'.repeat(31)}01`] }], value: '0xde0b6b3a7640000' })]) {
      const s = serializeBatchTx(tx(r));
      assert.deepEqual(parseBatchTx(s), tx(r));
      assert.equal(serializeBatchTx(parseBatchTx(s)), s);
    }
    assert.equal(serializeBatchTx(tx(first2)), JSON.stringify({
      type: 'eip1559', chainId: 900, from: CLUSTER, to: '0xFf00000000000000000000000000000000000901', nonce: 42, gas: '100000',
      maxFeePerGas: '2000000000', maxPriorityFeePerGas: '1000000000', maxFeePerBlobGas: null, value: '0', data: SAMPLE_BATCH,
      accessList: [], blobVersionedHashes: null,
    }));
  });
  test('malformed stored requests are refused naming the field', () => {
    const j = JSON.parse(serializeBatchTx(tx(type3Request())));
    assert.throws(() => parseBatchTx(JSON.stringify({ ...j, gas: '0x5208', maxFeePerBlobGas: null, extra: 1 })), {
      name: 'PolicyRecordsError',
      message: 'stored request is malformed: request.extra: unknown key; request.gas: must be a decimal string, got "0x5208"; request.maxFeePerBlobGas: required for eip4844',
    });
    assert.throws(() => parseBatchTx('{'), PolicyRecordsError);
  });
});

describe('decideTransaction', () => {
  test('the first request is recorded, with a verdict row', () => {
    const { rec, store } = open();
    const v = decide(rec, first2);
    assert.equal(v.approve, true);
    assert.deepEqual(v.reasons.at(-1), { rule: 'equivocation', ok: true, detail: `first request at ${SLOT(42)}` });
    assert.deepEqual(rec.recordAt(900, CLUSTER, 42), {
      chainId: 900, from: SENDER, nonce: 42, contentKey: contentKey(tx(first2)), request: tx(first2), firstApprovedAt: iso(T0), lastApprovedAt: iso(T0),
    });
    assert.equal(rec.recordAt(900, CLUSTER, 43), null);
    assert.deepEqual(rec.verdicts(), [{
      id: 1, session: null, kind: 'transaction', role: 'requester', requester: 'acme', client: 'batcher', approve: true, reasons: v.reasons, digest: digestOf(first2), at: iso(T0),
    }]);
    store.close();
  });

  test('a fee bump is approved without touching the floor; only a signature raises it, and a lower fee is then refused, writing nothing', () => {
    const { rec, store } = open();
    decide(rec, first2);
    assert.equal(decide(rec, bumped2).approve, true);
    const r = rec.recordAt(900, SENDER, 42)!;
    assert.deepEqual([r.request, r.firstApprovedAt, r.lastApprovedAt], [tx(first2), iso(T0), iso(T0)], 'an approval alone never raises the floor');
    rec.raiseFloor(tx(bumped2));
    const raised = rec.recordAt(900, SENDER, 42)!;
    assert.deepEqual([raised.request, raised.lastApprovedAt], [tx(bumped2), iso(T0 + 2000)]);
    const detail = `maxFeePerGas decreased from 2200000000 to 2000000000, maxPriorityFeePerGas decreased from 1100000000 to 1000000000 at ${SLOT(42)}`;
    const refused = decide(rec, first2, { session: '0xABCD', requester: 'bravo', client: null, role: 'approver' });
    assert.equal(refused.approve, false);
    assert.deepEqual(refused.reasons.filter((x) => !x.ok), [{ rule: 'equivocation', ok: false, detail }]);
    assert.deepEqual(rec.recordAt(900, SENDER, 42)!.request, tx(bumped2), 'the floor never falls');
    assert.deepEqual(rec.verdicts().map((x) => [x.approve, x.role, x.session, x.digest]), [
      [true, 'requester', null, digestOf(first2)], [true, 'requester', null, digestOf(bumped2)],
    ], 'the refusal wrote no verdict row');
    store.close();
  });

  test('raiseFloor needs this peer\'s own claim of the slot, with the same content', () => {
    const { rec, store } = open();
    assert.throws(() => rec.raiseFloor(tx(first2)), { name: 'PolicyRecordsError', message: `no record at ${SLOT(42)}: a signature needs this peer's approval first` });
    decide(rec, first2);
    assert.throws(() => rec.raiseFloor(tx(type2Request({ value: '0x1' }))), { name: 'PolicyRecordsError', message: `the record at ${SLOT(42)} holds other content` });
    rec.raiseFloor(tx(first2));
    assert.deepEqual(rec.recordAt(900, SENDER, 42)!.request, tx(first2));
    store.close();
  });

  test('highestNonce and release', () => {
    const { rec, store } = open();
    assert.equal(rec.highestNonce(900, CLUSTER), null);
    decide(rec, first2);
    decide(rec, type3Request());
    assert.equal(rec.highestNonce(900, CLUSTER), 43);
    assert.equal(rec.highestNonce(901, CLUSTER), null);
    const released = rec.release(900, CLUSTER, 43)!;
    assert.deepEqual([released.nonce, released.contentKey], [43, contentKey(tx(type3Request()))]);
    assert.equal(rec.recordAt(900, SENDER, 43), null);
    assert.equal(rec.release(900, CLUSTER, 43), null);
    assert.equal(rec.highestNonce(900, CLUSTER), 42);
    store.close();
  });

  test('different data at the same nonce is refused, writing nothing; the record keeps the first content', () => {
    const { rec, store } = open();
    decide(rec, first2);
    const other = type2Request({ input: `${SAMPLE_BATCH.slice(0, -4)}9d01` });
    const v = decide(rec, other);
    assert.equal(v.approve, false);
    const detail = `differs from the request approved at ${SLOT(42)} in data (only gas and fee fields may change)`;
    assert.deepEqual(v.reasons.at(-1), { rule: 'equivocation', ok: false, detail });
    assert.deepEqual(rec.recordAt(900, SENDER, 42)!.request, tx(first2));
    assert.equal(rec.verdicts().length, 1);
    store.close();
  });

  test('a lower gas limit at the same fees is allowed (txmgr re-estimates gas)', () => {
    const { rec, store } = open();
    decide(rec, type3Request());
    const lower = type3Request({ gas: q(21_000 - 1000) });
    assert.equal(decide(rec, lower).approve, true);
    assert.equal(rec.recordAt(900, SENDER, 43)!.request.gas, 21_000n, 'the first approval is the floor; gas is free');
    store.close();
  });

  test('a refusal by another rule writes nothing at all', () => {
    const { rec, store } = open();
    const v = decide(rec, type2Request({ to: '0x70997970c51812dc3a010c7d01b50e0d17dc79c8' }));
    assert.equal(v.approve, false);
    assert.equal(rec.recordAt(900, SENDER, 42), null);
    assert.equal(rec.verdicts().length, 0);
    store.close();
  });

  test('an approval that skipped the equivocation rule is an error and writes nothing', () => {
    const { rec, store } = open();
    assert.throws(() => rec.decideTransaction(tx(first2), () => evaluateTransaction(POLICY, first2), META), {
      name: 'PolicyRecordsError', message: `approved ${SLOT(42)} without the equivocation rule: evaluate must pass context.recorded`,
    });
    decide(rec, first2);
    // An evaluator that approves equivocating content is caught by recordAfterApproval.
    const other = type2Request({ value: '0x1' });
    assert.throws(() => rec.decideTransaction(tx(other), () => verdictOf([{ rule: 'equivocation', ok: true, detail: 'wrong' }]), META), PolicyRecordsError);
    assert.deepEqual(rec.recordAt(900, SENDER, 42)!.request, tx(first2));
    assert.equal(rec.verdicts().length, 1);
    store.close();
  });

  test('verdicts for other kinds; since and limit', () => {
    const { rec, store } = open();
    const reasons = [{ rule: 'raw-digest', ok: false, detail: 'raw digests are refused' }];
    assert.equal(rec.recordVerdict({ ...META, kind: 'raw-digest', verdict: verdictOf(reasons), digest: `0x${'AB'.repeat(32)}` }), 1);
    rec.recordVerdict({ session: null, requester: 'acme', client: 'batcher', kind: 'block-payload', verdict: verdictOf([{ rule: 'block-args', ok: false, detail: 'x' }]), digest: null });
    decide(rec, first2);
    assert.deepEqual(rec.verdicts()[0], {
      id: 1, session: null, kind: 'raw-digest', role: 'requester', requester: 'acme', client: 'batcher', approve: false, reasons, digest: `0x${'ab'.repeat(32)}`, at: iso(T0),
    });
    assert.deepEqual(rec.verdicts({ since: iso(T0 + 1000) }).map((v) => [v.id, v.kind, v.role]), [[2, 'block-payload', null], [3, 'transaction', 'requester']]);
    assert.deepEqual(rec.verdicts({ since: new Date(T0), limit: 1 }).map((v) => v.id), [1]);
    assert.throws(() => rec.recordVerdict({ ...META, session: 'nothex', kind: 'raw-digest', verdict: verdictOf(reasons), digest: null }), PolicyRecordsError);
    store.close();
  });

  test('the record is committed before decideTransaction returns: a second connection sees it, and it survives reopening', () => {
    const { rec, store, path } = open();
    decide(rec, first2);
    // While the first connection is still open (no checkpoint, no close):
    const reader = new Database(path, { readonly: true });
    const row = reader.prepare('SELECT content_key, request FROM nonce_records WHERE chain_id = 900 AND sender = ? AND nonce = 42').get(SENDER) as { content_key: string; request: string };
    assert.deepEqual(row, { content_key: contentKey(tx(first2)), request: serializeBatchTx(tx(first2)) });
    reader.close();
    const second = open(path);
    assert.deepEqual(second.rec.recordAt(900, SENDER, 42)!.request, tx(first2));
    second.store.close();
    store.close();
    const again = open(path);
    assert.equal(decide(again.rec, type2Request({ value: '0x1' })).approve, false);
    assert.equal(again.rec.verdicts().length, 1);
    again.store.close();
  });

  test('BEGIN IMMEDIATE: while another process holds the write lock, nothing is read or evaluated', () => {
    const { rec, store, path } = open();
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    store.db.pragma('busy_timeout = 50');
    let evaluated = 0;
    assert.throws(() => rec.decideTransaction(tx(first2), (recorded) => { evaluated++; return evaluateTransaction(POLICY, first2, { recorded }); }, META), { code: 'SQLITE_BUSY' });
    assert.equal(evaluated, 0);
    other.exec('ROLLBACK');
    other.close();
    assert.equal(decide(rec, first2).approve, true);
    store.close();
  });

  test('a schema version from another Potluck is refused', () => {
    const { store, path } = open();
    store.db.prepare('UPDATE policy_schema SET version = 9').run();
    store.close();
    const s = new PeerStore(path);
    assert.throws(() => new PolicyRecords(s.db), { name: 'PolicyRecordsError', message: 'policy records have schema 9; this Potluck expects 2' });
    s.close();
  });
});

describe('interchange (EIP-3076 style)', () => {
  /** Records at nonces 42 (bumped by a signature), 43 (type 3) and 44, plus one for another sender. */
  function populated() {
    const s = open();
    decide(s.rec, first2);
    s.rec.raiseFloor(tx(bumped2)); // a signature at the bumped fees
    decide(s.rec, type3Request());
    decide(s.rec, type2Request({ nonce: '0x2c' }));
    return s;
  }

  test('export: metadata and one group per (chain, sender), integers as decimal strings', () => {
    const { rec, store } = populated();
    const file = rec.exportInterchange({ clusterAddress: SENDER });
    assert.deepEqual(file.metadata, { interchange_format: 'potluck.nonce-records', interchange_format_version: '1', exported_at: iso(T0 + 4000), cluster: CLUSTER });
    assert.equal(file.data.length, 1);
    assert.deepEqual(file.data[0]!.records.map((r) => [r.nonce, r.first_approved_at, r.last_approved_at]), [
      ['42', iso(T0), iso(T0 + 1000)], ['43', iso(T0 + 2000), iso(T0 + 2000)], ['44', iso(T0 + 3000), iso(T0 + 3000)],
    ]);
    assert.deepEqual(file.data[0]!.records[0], {
      nonce: '42', content_key: contentKey(tx(first2)), request: JSON.parse(serializeBatchTx(tx(bumped2))), first_approved_at: iso(T0), last_approved_at: iso(T0 + 1000),
    });
    assert.deepEqual({ chain_id: file.data[0]!.chain_id, from: file.data[0]!.from }, { chain_id: '900', from: SENDER });
    assert.deepEqual(rec.exportInterchange({ clusterAddress: '0x70997970c51812dc3a010c7d01b50e0d17dc79c8' }).data, []);
    store.close();
  });

  test('export → import into a fresh database → the same export', () => {
    const a = populated();
    const file = JSON.parse(JSON.stringify(a.rec.exportInterchange()));
    const b = open(fresh(), T0 + 4000);
    assert.deepEqual(b.rec.importInterchange(file), { inserted: 3, raised: 0, unchanged: 0 });
    // b's clock reads what a's did at the export, so exported_at matches too.
    assert.deepEqual(b.rec.exportInterchange(), file);
    // Importing the same file again changes nothing.
    assert.deepEqual(b.rec.importInterchange(file), { inserted: 0, raised: 0, unchanged: 3 });
    // The imported record protects like a local one.
    assert.equal(decide(b.rec, first2).approve, false);
    assert.equal(decide(b.rec, type2Request({ input: '0x', nonce: '0x2b' })).approve, false);
    a.store.close();
    b.store.close();
  });

  test('a conflict refuses the whole import, lists every conflicting slot, and writes nothing', () => {
    const src = open();
    decide(src.rec, first2); // 42: same content as the destination
    decide(src.rec, type2Request({ nonce: '0x2b', value: '0x0', input: `${SAMPLE_BATCH.slice(0, -4)}9d01` })); // 43: conflicts
    decide(src.rec, type2Request({ nonce: '0x2c', input: `${SAMPLE_BATCH.slice(0, -4)}9d01` })); // 44: conflicts
    decide(src.rec, type2Request({ nonce: '0x2d' })); // 45: new
    const dst = open();
    decide(dst.rec, bumped2);
    decide(dst.rec, type2Request({ nonce: '0x2b' }));
    decide(dst.rec, type2Request({ nonce: '0x2c' }));
    const before = dst.rec.exportInterchange();
    const file = src.rec.exportInterchange();
    assert.throws(() => dst.rec.importInterchange(file), (e: unknown) => {
      assert.equal((e as Error).constructor, InterchangeConflictError);
      assert.deepEqual((e as InterchangeConflictError).slots, [SLOT(43), SLOT(44)]);
      const k = (n: number) => contentKey(tx(type2Request({ nonce: q(n) })));
      const kk = (n: number) => contentKey(tx(type2Request({ nonce: q(n), input: `${SAMPLE_BATCH.slice(0, -4)}9d01` })));
      assert.equal((e as Error).message, `import refused, nothing written: 2 slot(s) hold other content locally: ${SLOT(43)} (local ${k(43)}, imported ${kk(43)}), ${SLOT(44)} (local ${k(44)}, imported ${kk(44)})`);
      return true;
    });
    const after = dst.rec.exportInterchange();
    assert.deepEqual(after.data, before.data);
    assert.equal(dst.rec.recordAt(900, SENDER, 45), null);
    src.store.close();
    dst.store.close();
  });

  test('same content: the fee floor rises to the higher value of each field, never falls', () => {
    const src = open();
    decide(src.rec, bumped2);
    const dst = open(fresh(), T0 - 60_000);
    decide(dst.rec, first2);
    assert.deepEqual(dst.rec.importInterchange(src.rec.exportInterchange()), { inserted: 0, raised: 1, unchanged: 0 });
    const r = dst.rec.recordAt(900, SENDER, 42)!;
    assert.deepEqual([r.request, r.firstApprovedAt, r.lastApprovedAt], [tx(bumped2), iso(T0 - 60_000), iso(T0)]);
    // A lower (older) file does not lower it.
    const low = open();
    decide(low.rec, first2);
    assert.deepEqual(dst.rec.importInterchange(low.rec.exportInterchange()), { inserted: 0, raised: 0, unchanged: 1 });
    assert.deepEqual(dst.rec.recordAt(900, SENDER, 42)!.request, tx(bumped2));
    // Mixed: a higher tip but a lower fee cap raises only the tip.
    const mixed = open();
    decide(mixed.rec, type2Request({ maxFeePerGas: q(2_100_000_000), maxPriorityFeePerGas: q(1_500_000_000), gas: q(90_000) }));
    assert.deepEqual(dst.rec.importInterchange(mixed.rec.exportInterchange()), { inserted: 0, raised: 1, unchanged: 0 });
    const m = dst.rec.recordAt(900, SENDER, 42)!.request;
    assert.deepEqual([m.maxFeePerGas, m.maxPriorityFeePerGas, m.gas], [2_200_000_000n, 1_500_000_000n, 100_000n]);
    assert.equal(decide(dst.rec, bumped2).approve, false, 'the tip is now the floor');
    for (const s of [src, dst, low, mixed]) s.store.close();
  });

  test('a tampered content key is refused', () => {
    const { rec, store } = populated();
    const file = rec.exportInterchange() as Interchange;
    const good = file.data[0]!.records[1]!.content_key;
    file.data[0]!.records[1]!.content_key = file.data[0]!.records[0]!.content_key;
    const dst = open();
    assert.throws(() => dst.rec.importInterchange(file), (e: unknown) => {
      assert.equal((e as Error).constructor, InterchangeError);
      assert.deepEqual((e as InterchangeError).problems, [`data[0].records[1].content_key: does not match its request (computed ${good})`]);
      return true;
    });
    // Also the request edited under an unchanged key (another batch smuggled in).
    file.data[0]!.records[1]!.content_key = good;
    (file.data[0]!.records[1]!.request as Record<string, unknown>).to = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8';
    assert.throws(() => dst.rec.importInterchange(file), { name: 'InterchangeError', message: /data\[0\]\.records\[1\]\.content_key: does not match its request/ });
    assert.deepEqual(dst.rec.exportInterchange().data, []);
    store.close();
    dst.store.close();
  });

  test('a malformed file is refused naming the path of every bad field', () => {
    const { rec, store } = populated();
    const file = JSON.parse(JSON.stringify(rec.exportInterchange()));
    file.metadata.interchange_format_version = 1;
    file.metadata.genesis_validators_root = '0x00';
    file.data[0].chain_id = 900;
    file.data[0].records[0].nonce = 42;
    file.data[0].records[1].request.gas = '0x5208';
    file.data[0].records[2].first_approved_at = 'yesterday';
    file.data[0].records.push({ ...file.data[0].records[0], nonce: '42' });
    file.data[0].records.push({ ...file.data[0].records[2], nonce: '45' });
    const dst = open();
    assert.throws(() => dst.rec.importInterchange(file), (e: unknown) => {
      assert.equal((e as Error).constructor, InterchangeError);
      assert.deepEqual((e as InterchangeError).problems, [
        'metadata.genesis_validators_root: unknown key',
        'metadata.interchange_format_version: must be "1", got 1',
        'data[0].chain_id: must be a decimal string in 1..2^53-1, got 900',
        'data[0].records[0].nonce: must be a decimal string in 0..2^53-1, got 42',
        'data[0].records[1].request.gas: must be a decimal string, got "0x5208"',
        'data[0].records[2].first_approved_at: must be an ISO-8601 UTC time, got "yesterday"',
        `data[0].records[3]: duplicate slot ${SLOT(42)} (also at data[0].records[0])`,
        'data[0].records[4].first_approved_at: must be an ISO-8601 UTC time, got "yesterday"',
        'data[0].records[4].request.nonce: 44 is not the record\'s nonce 45',
        `data[0].records[4]: duplicate slot ${SLOT(44)} (also at data[0].records[2])`,
      ]);
      return true;
    });
    assert.throws(() => dst.rec.importInterchange([]), { name: 'InterchangeError', message: 'invalid nonce-record interchange: (file): must be an object, got an array' });
    assert.throws(() => dst.rec.importInterchange({ metadata: {}, data: {} }), (e: unknown) => e instanceof InterchangeError && e.problems.includes('data: must be an array, got object'));
    assert.deepEqual(dst.rec.exportInterchange().data, []);
    store.close();
    dst.store.close();
  });

  test('a file for another cluster is refused', () => {
    const { rec, store } = populated();
    const file = rec.exportInterchange({ clusterAddress: CLUSTER });
    const dst = open();
    const other = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8';
    assert.throws(() => dst.rec.importInterchange(file, { clusterAddress: other }), {
      name: 'InterchangeError',
      message: `invalid nonce-record interchange: metadata.cluster: file is for ${CLUSTER}, this cluster is ${other}; data[0].from: ${SENDER} is not the cluster address ${other}`,
    });
    assert.deepEqual(dst.rec.importInterchange(file, { clusterAddress: SENDER }), { inserted: 3, raised: 0, unchanged: 0 });
    store.close();
    dst.store.close();
  });
});

test('a missing field is reported once, as required', () => {
  const j = JSON.parse(serializeBatchTx(tx(first2)));
  delete j.maxFeePerBlobGas;
  assert.throws(() => parseBatchTx(JSON.stringify(j)), { name: 'PolicyRecordsError', message: 'stored request is malformed: request.maxFeePerBlobGas: required' });
});
