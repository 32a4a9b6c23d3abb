import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { numberToHex } from 'viem';
import {
  CONTENT_FIELDS, FREE_FIELDS, MONOTONE_FEE_FIELDS, checkEquivocation, contentKey, recordAfterApproval, slotKey,
} from '../../src/policy/equivocation.ts';
import { decodeTransactionArgs, type BatchTransaction } from '../../src/policy/transaction-args.ts';
import { INBOX, SAMPLE_BATCH, type2Request, type3Request } from './helpers.ts';

const q = (n: bigint | number) => numberToHex(n);
function tx(req: Record<string, unknown>): BatchTransaction {
  const d = decodeTransactionArgs(req);
  assert.ok(d.ok, d.ok ? '' : d.problems.join('; '));
  return d.tx;
}
const SLOT2 = '900/0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266/42';
const SLOT3 = '900/0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266/43';
const first2 = tx(type2Request());
const first3 = tx(type3Request());
/** txmgr's bump (§1.4): +10 % tip and fee cap for type 2, +100 % (and blob fee) for type 3; gas re-estimated. */
const bumped2 = tx(type2Request({ maxFeePerGas: q(2_200_000_000), maxPriorityFeePerGas: q(1_100_000_000), gas: q(99_000) }));
const bumped3 = tx(type3Request({ maxFeePerGas: q(4_000_000_000), maxPriorityFeePerGas: q(2_000_000_000), maxFeePerBlobGas: q(2_000_000_000) }));

describe('checkEquivocation: allowed', () => {
  test('nothing recorded yet', () => {
    assert.deepEqual(checkEquivocation(null, first2), { rule: 'equivocation', ok: true, detail: `first request at ${SLOT2}` });
  });
  test('the same request again', () => {
    assert.deepEqual(checkEquivocation(first2, tx(type2Request())), {
      rule: 'equivocation', ok: true, detail: `same content as the request approved at ${SLOT2}, fees not lower`,
    });
  });
  test('txmgr fee bump, type 2, with a lower re-estimated gas limit', () => assert.equal(checkEquivocation(first2, bumped2).ok, true));
  test('txmgr fee bump, type 3, with a higher gas limit', () => {
    assert.equal(checkEquivocation(first3, tx(type3Request({ maxFeePerBlobGas: q(2_000_000_000), gas: q(30_000) }))).ok, true);
    assert.equal(checkEquivocation(first3, bumped3).ok, true);
  });
  test('the same content sent in "data" instead of "input", from checksummed, type field set', () => {
    const alt = tx({ ...type2Request({ input: null, data: SAMPLE_BATCH, type: '0x2' }), from: '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266' });
    assert.equal(checkEquivocation(first2, alt).ok, true);
  });
});

describe('checkEquivocation: refused, naming the field', () => {
  const refused = (recorded: BatchTransaction, next: BatchTransaction, detail: string) =>
    assert.deepEqual(checkEquivocation(recorded, next), { rule: 'equivocation', ok: false, detail });

  test('different calldata (another batch at the same nonce)', () => refused(first2, tx(type2Request({ input: `${SAMPLE_BATCH.slice(0, -4)}9d01` })),
    `differs from the request approved at ${SLOT2} in data (only gas and fee fields may change)`));
  test('different to and value', () => refused(first2, tx(type2Request({ to: '0x70997970c51812dc3a010c7d01b50e0d17dc79c8', value: '0x1' })),
    `differs from the request approved at ${SLOT2} in to, value (only gas and fee fields may change)`));
  test('an access list added', () => refused(first2, tx(type2Request({ accessList: [{ address: INBOX, storageKeys: [] }] })),
    `differs from the request approved at ${SLOT2} in accessList (only gas and fee fields may change)`));
  test('other blob hashes', () => refused(first3, tx(type3Request({ blobVersionedHashes: [`0x01${'33'.repeat(31)}`] })),
    `differs from the request approved at ${SLOT3} in blobVersionedHashes (only gas and fee fields may change)`));
  test('a blob tx replacing a calldata tx at the same nonce', () => refused(first2, tx(type3Request({ nonce: '0x2a' })),
    `differs from the request approved at ${SLOT2} in type, data, blobVersionedHashes (only gas and fee fields may change)`));
  test('a record from another slot is never matched', () => {
    refused(first2, tx(type2Request({ nonce: '0x2b' })), `differs from the request approved at ${SLOT2} in nonce (only gas and fee fields may change)`);
    refused(first2, tx(type2Request({ chainId: '0x385' })), `differs from the request approved at ${SLOT2} in chainId (only gas and fee fields may change)`);
    refused(first2, tx(type2Request({ from: '0x70997970c51812dc3a010c7d01b50e0d17dc79c8' })),
      `differs from the request approved at ${SLOT2} in from (only gas and fee fields may change)`);
  });
  test('each fee field that decreases is named', () => {
    refused(bumped2, first2, `maxFeePerGas decreased from 2200000000 to 2000000000, maxPriorityFeePerGas decreased from 1100000000 to 1000000000 at ${SLOT2}`);
    refused(first2, tx(type2Request({ maxPriorityFeePerGas: q(999_999_999) })), `maxPriorityFeePerGas decreased from 1000000000 to 999999999 at ${SLOT2}`);
    refused(first3, tx(type3Request({ maxFeePerBlobGas: q(999_999_999) })), `maxFeePerBlobGas decreased from 1000000000 to 999999999 at ${SLOT3}`);
    refused(first2, tx(type2Request({ maxFeePerGas: q(3_000_000_000), maxPriorityFeePerGas: q(900_000_000) })),
      `maxPriorityFeePerGas decreased from 1000000000 to 900000000 at ${SLOT2}`);
  });
});

describe('keys and recording', () => {
  test('field classes cover every BatchTransaction field exactly once', () => {
    const all = [...CONTENT_FIELDS, ...MONOTONE_FEE_FIELDS, ...FREE_FIELDS].sort();
    assert.deepEqual(all, Object.keys(first3).sort());
    assert.deepEqual(new Set(all).size, all.length);
  });
  test('slotKey', () => {
    assert.equal(slotKey(first2), SLOT2);
    assert.equal(slotKey(first3), SLOT3);
  });
  test('contentKey: pinned value; equal across fee bumps and gas changes; differs when content differs', () => {
    assert.equal(contentKey(first2), '0x993033c425957f6e3227a6e8aa75a37e0654994068770ac64288182539c3eb7e');
    assert.equal(contentKey(bumped2), contentKey(first2));
    assert.equal(contentKey(bumped3), contentKey(first3));
    assert.notEqual(contentKey(first3), contentKey(first2));
    assert.notEqual(contentKey(tx(type2Request({ value: '0x1' }))), contentKey(first2));
    assert.notEqual(contentKey(tx(type2Request({ from: '0x70997970c51812dc3a010c7d01b50e0d17dc79c8' }))), contentKey(first2));
    assert.notEqual(contentKey(tx(type2Request({ input: '0x00' }))), contentKey(first2));
  });
  test('recordAfterApproval keeps the latest approved fees; refuses to record a refused request', () => {
    let record = recordAfterApproval(null, first2);
    assert.equal(record, first2);
    record = recordAfterApproval(record, bumped2);
    assert.equal(record, bumped2);
    assert.equal(checkEquivocation(record, first2).ok, false, 'going back to the first fees is now a decrease');
    assert.throws(() => recordAfterApproval(record, first2), {
      name: 'RangeError',
      message: `cannot record a refused request: maxFeePerGas decreased from 2200000000 to 2000000000, maxPriorityFeePerGas decreased from 1100000000 to 1000000000 at ${SLOT2}`,
    });
  });
});
