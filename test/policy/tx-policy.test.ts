import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bytesToHex, hexToBytes, keccak256, numberToHex, parseTransaction, recoverAddress, recoverTransactionAddress, serializeTransaction,
  type TransactionSerializableEIP1559, type TransactionSerializableEIP4844,
} from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import {
  RULE_ERROR_CODES, RequestError, decodeTransactionArgs, digestOf, evaluateTransaction, signedTransaction,
  type EvaluationContext, type RuleName, type TxPolicy, type Verdict,
} from '../../src/policy/tx-policy.ts';
import { N } from '../../src/crypto/scalar-point.ts';
import {
  BLOB_HASH_1, BLOB_HASH_2, CHAIN_ID, CLUSTER, INBOX, SAMPLE_BATCH, TEST_KEY, buildBatch, type2Request, type3Request,
} from './helpers.ts';

const q = (n: bigint | number) => numberToHex(n);
const GWEI = 1_000_000_000n;
const POLICY: TxPolicy = {
  chainIds: [CHAIN_ID],
  from: CLUSTER,
  to: INBOX,
  caps: { gas: 1_000_000n, maxFeePerGas: 100n * GWEI, maxPriorityFeePerGas: 10n * GWEI, maxFeePerBlobGas: 50n * GWEI, maxBlobs: 6 },
  allowBlobsWithoutContent: false,
};
const LENIENT: TxPolicy = { ...POLICY, allowBlobsWithoutContent: true };

const without = (req: Record<string, unknown>, ...keys: string[]) => {
  const c = { ...req };
  for (const k of keys) delete c[k];
  return c;
};
const names = (v: Verdict) => v.reasons.map((r) => r.rule);
const failing = (v: Verdict) => v.reasons.filter((r) => !r.ok).map((r) => ({ rule: r.rule, detail: r.detail }));
/** Asserts a refusal by exactly one rule with exactly this detail. */
function refusedBy(v: Verdict, rule: RuleName, detail: string) {
  assert.equal(v.approve, false);
  assert.deepEqual(failing(v), [{ rule, detail }]);
}

const TYPE2_RULES = ['args', 'chain-id', 'from', 'to', 'value-zero', 'gas-cap', 'fee-cap', 'priority-fee-cap', 'access-list', 'calldata-frames'];
const TYPE3_RULES = ['args', 'chain-id', 'from', 'to', 'value-zero', 'gas-cap', 'fee-cap', 'priority-fee-cap', 'access-list', 'calldata-empty', 'blob-fee-cap', 'blob-count', 'blob-content'];

describe('evaluateTransaction: approvals', () => {
  test('type-2 calldata batch as the Go client sends it: every rule passes', () => {
    const v = evaluateTransaction(POLICY, type2Request());
    assert.deepEqual(v, {
      approve: true,
      reasons: [
        { rule: 'args', ok: true, detail: 'well-formed type 2 TransactionArgs' },
        { rule: 'chain-id', ok: true, detail: 'chainId 900 allowed' },
        { rule: 'from', ok: true, detail: 'from 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266 is the cluster address' },
        { rule: 'to', ok: true, detail: 'to 0xFf00000000000000000000000000000000000901 is the batch inbox' },
        { rule: 'value-zero', ok: true, detail: 'value is 0' },
        { rule: 'gas-cap', ok: true, detail: 'gas 100000 within cap 1000000' },
        { rule: 'fee-cap', ok: true, detail: 'maxFeePerGas 2000000000 within cap 100000000000' },
        { rule: 'priority-fee-cap', ok: true, detail: 'maxPriorityFeePerGas 1000000000 within cap 10000000000' },
        { rule: 'access-list', ok: true, detail: 'access list is empty' },
        { rule: 'calldata-frames', ok: true, detail: 'calldata: 2 frame(s) in 1 channel(s)' },
      ],
    });
  });

  test('viem / ethers style: checksummed from, type "0x2", no gasPrice/data keys, calldata in "data"', () => {
    const v = evaluateTransaction(POLICY, { ...without(type2Request(), 'gasPrice', 'input', 'accessList'), from: CLUSTER, type: '0x2', data: SAMPLE_BATCH });
    assert.equal(v.approve, true);
    assert.deepEqual(names(v), TYPE2_RULES);
  });

  test('caps are inclusive; data equal to input is fine', () => {
    const v = evaluateTransaction(POLICY, type2Request({
      gas: q(POLICY.caps.gas), maxFeePerGas: q(POLICY.caps.maxFeePerGas), maxPriorityFeePerGas: q(POLICY.caps.maxPriorityFeePerGas), data: SAMPLE_BATCH,
    }));
    assert.equal(v.approve, true, JSON.stringify(failing(v)));
  });

  test('type-3 blob tx without content, allowed by policy', () => {
    const v = evaluateTransaction(LENIENT, type3Request({ type: '0x3', maxFeePerBlobGas: q(POLICY.caps.maxFeePerBlobGas) }));
    assert.equal(v.approve, true);
    assert.deepEqual(names(v), TYPE3_RULES);
    assert.deepEqual(v.reasons.slice(9), [
      { rule: 'calldata-empty', ok: true, detail: 'blob tx has no calldata' },
      { rule: 'blob-fee-cap', ok: true, detail: 'maxFeePerBlobGas 50000000000 within cap 50000000000' },
      { rule: 'blob-count', ok: true, detail: '2 blob(s), at most 6' },
      { rule: 'blob-content', ok: true, detail: 'blobs not handed over; allowed by policy (allowBlobsWithoutContent)' },
    ]);
  });

  test('type-3 blob tx with its payloads handed over: frames parsed per blob', () => {
    const payload = hexToBytes(SAMPLE_BATCH);
    const v = evaluateTransaction(POLICY, type3Request(), { blobPayloads: [payload, payload] });
    assert.equal(v.approve, true);
    assert.deepEqual(v.reasons.at(-1), {
      rule: 'blob-content', ok: true, detail: 'blob 0: 2 frame(s) in 1 channel(s); blob 1: 2 frame(s) in 1 channel(s)',
    });
  });

  test('6 blobs = maxBlobs passes', () => {
    const hashes = Array.from({ length: 6 }, (_, i) => `0x01${i.toString(16).padStart(2, '0').repeat(31)}`);
    assert.equal(evaluateTransaction(LENIENT, type3Request({ blobVersionedHashes: hashes })).approve, true);
  });
});

describe('evaluateTransaction: every rule refuses, naming itself', () => {
  const other = '0x70997970c51812dc3a010c7d01b50e0d17dc79c8';
  test('chain-id', () => refusedBy(evaluateTransaction(POLICY, type2Request({ chainId: '0x1' })), 'chain-id', 'chainId 1 not in [900]'));
  test('from', () => refusedBy(evaluateTransaction(POLICY, type2Request({ from: other })), 'from',
    'from 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 is not the cluster address 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266'));
  test('to: another address', () => refusedBy(evaluateTransaction(POLICY, type2Request({ to: other })), 'to',
    'to 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 is not the batch inbox 0xff00000000000000000000000000000000000901'));
  test('to: missing (contract creation)', () => refusedBy(evaluateTransaction(POLICY, type2Request({ to: null })), 'to',
    'to is missing (contract creation); expected the batch inbox'));
  test('value-zero', () => refusedBy(evaluateTransaction(POLICY, type2Request({ value: '0x1' })), 'value-zero', 'value 1 is not 0'));
  test('gas-cap', () => refusedBy(evaluateTransaction(POLICY, type2Request({ gas: q(1_000_001) })), 'gas-cap', 'gas 1000001 exceeds cap 1000000'));
  test('fee-cap', () => refusedBy(evaluateTransaction(POLICY, type2Request({ maxFeePerGas: q(100n * GWEI + 1n) })), 'fee-cap',
    'maxFeePerGas 100000000001 exceeds cap 100000000000'));
  test('priority-fee-cap', () => refusedBy(
    evaluateTransaction(POLICY, type2Request({ maxFeePerGas: q(20n * GWEI), maxPriorityFeePerGas: q(10n * GWEI + 1n) })),
    'priority-fee-cap', 'maxPriorityFeePerGas 10000000001 exceeds cap 10000000000'));
  test('access-list', () => refusedBy(
    evaluateTransaction(POLICY, type2Request({ accessList: [{ address: INBOX, storageKeys: [`0x${'00'.repeat(32)}`] }] })),
    'access-list', 'access list has 1 entries; batch txs carry none'));
  test('calldata-frames: empty, wrong version, bad is_last, trailing byte', () => {
    refusedBy(evaluateTransaction(POLICY, type2Request({ input: '0x' })), 'calldata-frames', 'calldata: byte 0: empty batch, expected derivation version 0');
    refusedBy(evaluateTransaction(POLICY, type2Request({ input: `0x01${SAMPLE_BATCH.slice(4)}` })), 'calldata-frames',
      'calldata: byte 0: derivation version must be 0, got 1');
    refusedBy(evaluateTransaction(POLICY, type2Request({ input: `${SAMPLE_BATCH.slice(0, -2)}02` })), 'calldata-frames',
      'calldata: frame 1 at byte 166: is_last must be 0 or 1, got 2');
    refusedBy(evaluateTransaction(POLICY, type2Request({ input: `${SAMPLE_BATCH}00` })), 'calldata-frames',
      'calldata: frame 2 at byte 167: truncated frame header: 1 bytes left, need 22 (no trailing bytes allowed)');
    const tooLong = buildBatch([{ channelId: `0x${'ab'.repeat(16)}`, frameNumber: 0, data: new Uint8Array(0), isLast: true }]);
    tooLong.set([0x00, 0x0f, 0x42, 0x41], 19); // frame_data_length 1,000,001
    refusedBy(evaluateTransaction(POLICY, type2Request({ input: bytesToHex(tooLong) })), 'calldata-frames',
      'calldata: frame 0 at byte 19: frame_data_length 1000001 exceeds 1000000');
  });
  test('calldata-empty (blob tx with calldata)', () => refusedBy(evaluateTransaction(LENIENT, type3Request({ input: '0x00' })), 'calldata-empty',
    'blob tx carries 1 bytes of calldata; must be empty'));
  test('blob-fee-cap', () => refusedBy(evaluateTransaction(LENIENT, type3Request({ maxFeePerBlobGas: q(50n * GWEI + 1n) })), 'blob-fee-cap',
    'maxFeePerBlobGas 50000000001 exceeds cap 50000000000'));
  test('blob-count', () => {
    const hashes = Array.from({ length: 7 }, (_, i) => `0x01${i.toString(16).padStart(2, '0').repeat(31)}`);
    refusedBy(evaluateTransaction(LENIENT, type3Request({ blobVersionedHashes: hashes })), 'blob-count', '7 blobs exceed the cap of 6');
  });
  test('blob-content: not handed over, wrong count, bad frames', () => {
    refusedBy(evaluateTransaction(POLICY, type3Request()), 'blob-content',
      'blobs not handed over and the policy requires their content (allowBlobsWithoutContent: false)');
    const good = hexToBytes(SAMPLE_BATCH);
    refusedBy(evaluateTransaction(POLICY, type3Request(), { blobPayloads: [good] }), 'blob-content', '1 blob payload(s) for 2 versioned hash(es)');
    refusedBy(evaluateTransaction(LENIENT, type3Request(), { blobPayloads: [good, Uint8Array.of(1, 2)] }), 'blob-content',
      'blob 1: byte 0: derivation version must be 0, got 1');
  });
  test('equivocation (context.recorded): refused when content differs, evaluated last', () => {
    const context: EvaluationContext = { recorded: null };
    const first = evaluateTransaction(POLICY, type2Request(), context);
    assert.deepEqual(first.reasons.at(-1), { rule: 'equivocation', ok: true, detail: 'first request at 900/0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266/42' });
    const recorded = decodeTransactionArgs(type2Request());
    assert.ok(recorded.ok);
    const v = evaluateTransaction(POLICY, type2Request({ input: `${SAMPLE_BATCH.slice(0, -4)}9d01` }), { recorded: recorded.tx });
    refusedBy(v, 'equivocation', 'differs from the request approved at 900/0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266/42 in data (only gas and fee fields may change)');
    assert.deepEqual(names(v), [...TYPE2_RULES, 'equivocation']);
  });
  test('several rules fail at once: each is named', () => {
    const v = evaluateTransaction(POLICY, type2Request({ chainId: '0x1', value: '0x5', input: '0x01' }));
    assert.deepEqual(failing(v).map((f) => f.rule), ['chain-id', 'value-zero', 'calldata-frames']);
    assert.deepEqual(names(v), TYPE2_RULES);
  });
});

describe('evaluateTransaction: strict TransactionArgs (rule "args", op-signer -32010)', () => {
  const argsCases: [string, unknown, string][] = [
    ['not an object (array)', [], 'request: must be a JSON object, got an array'],
    ['not an object (null)', null, 'request: must be a JSON object, got null'],
    ['unknown field', type2Request({ gasLimit: '0x1' }), 'unknown field "gasLimit"'],
    ['field names are case-sensitive', type2Request({ Input: SAMPLE_BATCH }), 'unknown field "Input"'],
    ['blobs are not a TransactionArgs field', type3Request({ blobs: ['0x00'] }), 'unknown field "blobs"'],
    ['leading zero', type2Request({ gas: '0x0186a0' }), 'gas: not a canonical 0x-quantity (lowercase hex, no leading zeros): "0x0186a0"'],
    ['uppercase hex digit', type2Request({ nonce: '0x2A' }), 'nonce: not a canonical 0x-quantity (lowercase hex, no leading zeros): "0x2A"'],
    ['uppercase prefix', type2Request({ nonce: '0X2a' }), 'nonce: not a canonical 0x-quantity (lowercase hex, no leading zeros): "0X2a"'],
    ['empty quantity', type2Request({ value: '0x' }), 'value: not a canonical 0x-quantity (lowercase hex, no leading zeros): "0x"'],
    ['JSON number', type2Request({ nonce: 42 }), 'nonce: not a canonical 0x-quantity (lowercase hex, no leading zeros): number 42'],
    ['decimal string', type2Request({ chainId: '900' }), 'chainId: not a canonical 0x-quantity (lowercase hex, no leading zeros): "900"'],
    ['gas over 64 bits', type2Request({ gas: '0x10000000000000000' }), 'gas: exceeds 64 bits'],
    ['fee over 256 bits', type2Request({ maxFeePerGas: `0x1${'0'.repeat(64)}` }), 'maxFeePerGas: exceeds 256 bits'],
    ['nonce above 2^53-1', type2Request({ nonce: '0x20000000000000' }), 'nonce: 9007199254740992 above 2^53-1 is not supported'],
    ['gas missing', without(type2Request(), 'gas'), 'gas: required'],
    ['nonce null', type2Request({ nonce: null }), 'nonce: required'],
    ['chainId missing', without(type2Request(), 'chainId'), 'chainId: required'],
    ['maxFeePerGas missing', without(type2Request(), 'maxFeePerGas'), 'maxFeePerGas: required'],
    ['chainId 0', type2Request({ chainId: '0x0' }), 'chainId: must be at least 1'],
    ['gasPrice set', type2Request({ gasPrice: '0x1' }), 'gasPrice: must be null or absent (only maxFeePerGas/maxPriorityFeePerGas are accepted)'],
    ['maxFee below tip', type2Request({ maxFeePerGas: '0x1' }), 'maxFeePerGas (1) < maxPriorityFeePerGas (1000000000)'],
    ['data and input differ', type2Request({ data: '0x00' }), 'data, input: both set and not equal (use "input")'],
    ['uppercase bytes', type2Request({ input: '0xAB' }), 'input: not lowercase 0x-hex bytes of even length: "0xAB"'],
    ['odd-length bytes', type2Request({ input: '0x0' }), 'input: not lowercase 0x-hex bytes of even length: "0x0"'],
    ['from missing', without(type2Request(), 'from'), 'from: required'],
    ['from with a bad checksum', type2Request({ from: '0xF39Fd6e51aad88F6F4ce6aB8827279cffFb92266' }),
      'from: not an address (0x + 40 hex, valid EIP-55 checksum if mixed case): "0xF39Fd6e51aad88F6F4ce6aB8827279cffFb92266"'],
    ['to too short', type2Request({ to: '0xff00' }), 'to: not an address (0x + 40 hex, valid EIP-55 checksum if mixed case): "0xff00"'],
    ['contract creation without data', type2Request({ to: null, input: '0x' }), 'to: contract creation without any data'],
    ['accessList not an array', type2Request({ accessList: {} }), 'accessList: must be an array, got object'],
    ['accessList entry malformed', type2Request({ accessList: [{ address: '0x1', storageKeys: ['0x1'], slot: 1 }] }),
      'accessList[0]: unknown field "slot"; accessList[0].address: not an address: "0x1"; accessList[0].storageKeys[0]: not a lowercase 0x-hex 32-byte key: "0x1"'],
    ['empty blob hashes', type3Request({ blobVersionedHashes: [] }), 'blobVersionedHashes: must not be empty when present'],
    ['blob hash of 31 bytes', type3Request({ blobVersionedHashes: [BLOB_HASH_1.slice(0, -2)] }),
      `blobVersionedHashes[0]: not a lowercase 0x-hex 32-byte hash: "${BLOB_HASH_1.slice(0, -2)}"`],
    ['blob hash version 0x02', type3Request({ blobVersionedHashes: [BLOB_HASH_1, `0x02${BLOB_HASH_2.slice(4)}`] }),
      'blobVersionedHashes[1]: version byte must be 0x01, got 0x02'],
    ['blob hashes without blob fee', without(type3Request(), 'maxFeePerBlobGas'), 'maxFeePerBlobGas: required with blobVersionedHashes'],
    ['blob fee without hashes', type2Request({ maxFeePerBlobGas: '0x1' }), 'maxFeePerBlobGas: only allowed with blobVersionedHashes'],
    ['blob tx without to', type3Request({ to: null }), 'to: required for a blob transaction'],
    ['type 2 with blob hashes', type3Request({ type: '0x2' }), 'type: "0x2" does not match the request (expected "0x3"; only types 2 and 3 are signed)'],
    ['legacy type', type2Request({ type: '0x0' }), 'type: "0x0" does not match the request (expected "0x2"; only types 2 and 3 are signed)'],
    ['several problems at once', without(type2Request({ foo: 1, gas: '0x00' }), 'nonce'),
      'unknown field "foo"; gas: not a canonical 0x-quantity (lowercase hex, no leading zeros): "0x00"; nonce: required'],
  ];
  for (const [name, request, detail] of argsCases) {
    test(name, () => {
      assert.deepEqual(evaluateTransaction(POLICY, request), { approve: false, reasons: [{ rule: 'args', ok: false, detail }] });
    });
  }
  test('at most 20 problems are listed, the rest counted', () => {
    const v = evaluateTransaction(POLICY, type2Request({ accessList: Array.from({ length: 1000 }, () => 7) }));
    const parts = v.reasons[0]!.detail.split('; ');
    assert.equal(parts.length, 21);
    assert.equal(parts[0], 'accessList[0]: must be an object, got number 7');
    assert.equal(parts[20], 'and 980 more problems');
  });
  test('long values are cut in the detail', () => {
    const v = evaluateTransaction(POLICY, type2Request({ input: `0x${'AB'.repeat(1000)}` }));
    assert.equal(v.reasons[0]!.detail, `input: not lowercase 0x-hex bytes of even length: "0x${'AB'.repeat(34)}…"`);
  });
});

describe('RULE_ERROR_CODES', () => {
  test('every rule maps to -32010 (invalid) or -32011 (unauthorized)', () => {
    assert.deepEqual(Object.keys(RULE_ERROR_CODES).sort(), [...new Set([...TYPE3_RULES, ...TYPE2_RULES, 'equivocation'])].sort());
    assert.deepEqual(Object.entries(RULE_ERROR_CODES).filter(([, c]) => c === -32010).map(([k]) => k), ['args', 'from']);
  });
});

describe('digestOf and signedTransaction against viem', () => {
  const account = privateKeyToAccount(TEST_KEY);
  const viem1559: TransactionSerializableEIP1559 = {
    type: 'eip1559', chainId: 900, nonce: 42, gas: 100_000n, maxFeePerGas: 2n * GWEI, maxPriorityFeePerGas: GWEI,
    to: INBOX, value: 0n, data: SAMPLE_BATCH, accessList: [],
  };
  const viem4844: TransactionSerializableEIP4844 = {
    type: 'eip4844', chainId: 900, nonce: 43, gas: 21_000n, maxFeePerGas: 2n * GWEI, maxPriorityFeePerGas: GWEI,
    to: INBOX, value: 0n, data: '0x', accessList: [], maxFeePerBlobGas: GWEI, blobVersionedHashes: [BLOB_HASH_1, BLOB_HASH_2],
  };

  test('account fixture', () => assert.equal(account.address, CLUSTER));

  for (const [name, request, viemTx, digest] of [
    ['type 2', type2Request(), viem1559, '0x154093ac7931f0ef730ad2359c192fb74fd31da46e2092fcbe1ac8f9e5ef2202'],
    ['type 3 (no sidecar)', type3Request(), viem4844, '0x718341afda4882a440cb6521150439fd7ad46e34aba6de75fffc100104afa207'],
  ] as const) {
    test(`${name}: digest = keccak256(viem serialization); signed bytes = viem's signTransaction`, async () => {
      assert.equal(digestOf(request), keccak256(serializeTransaction(viemTx)));
      assert.equal(digestOf(request), digest);
      const viemSigned = await account.signTransaction(viemTx);
      const parsed = parseTransaction(viemSigned);
      const sig = { r: parsed.r!, s: parsed.s!, yParity: parsed.yParity! };
      assert.equal(await recoverAddress({ hash: digestOf(request), signature: sig }), CLUSTER);
      const ours = signedTransaction(request, sig);
      assert.equal(ours, viemSigned);
      assert.equal(ours.slice(0, 4), name === 'type 2' ? '0x02' : '0x03');
      assert.equal(await recoverTransactionAddress({ serializedTransaction: ours as never }), CLUSTER);
      assert.equal(signedTransaction(request, { r: BigInt(sig.r), s: BigInt(sig.s), yParity: sig.yParity }), viemSigned, 'bigint r, s');
    });
  }

  test('signedTransaction refuses non-canonical signatures (RangeError) and bad args (RequestError)', () => {
    const good = { r: 1n, s: 1n, yParity: 0 };
    assert.throws(() => signedTransaction(type2Request(), { ...good, s: N - 1n }), { name: 'RangeError', message: 'signature s out of range or not low-s' });
    assert.throws(() => signedTransaction(type2Request(), { ...good, r: 0n }), { name: 'RangeError', message: 'signature r out of range' });
    assert.throws(() => signedTransaction(type2Request(), { ...good, r: N }), { name: 'RangeError', message: 'signature r out of range' });
    assert.throws(() => signedTransaction(type2Request(), { ...good, yParity: 27 }), { name: 'RangeError', message: 'signature yParity must be 0 or 1, got 27' });
    assert.throws(() => signedTransaction(type2Request(), { ...good, r: '0xzz' }), { name: 'RangeError', message: 'signature r is not 0x-hex of at most 32 bytes' });
    assert.throws(() => signedTransaction(type2Request({ gas: '0x' }), good), (e: unknown) => {
      assert.ok(e instanceof RequestError);
      assert.equal(e.name, 'RequestError');
      assert.deepEqual(e.problems, ['gas: not a canonical 0x-quantity (lowercase hex, no leading zeros): "0x"']);
      assert.equal(e.message, 'invalid TransactionArgs: gas: not a canonical 0x-quantity (lowercase hex, no leading zeros): "0x"');
      return true;
    });
    assert.throws(() => digestOf({ nope: true }), RequestError);
  });
});
