/**
 * op-signer block-payload args, V1 and V2 (system-anchors §1.3 "Block payload signing";
 * op-service `signer/blockpayload_args.go`): strict decoding and the signing hash.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { concat, keccak256, numberToHex, toBytes, type Hex } from 'viem';
import {
  BlockPayloadError, blockSigningHash, decodeBlockPayloadArgs, decodeBlockPayloadArgsV1, decodeBlockPayloadArgsV2,
} from '../../src/policy/block-payload.ts';

const PAYLOAD_HASH: Hex = '0x98b76b660dc9dccff1a187938423d67ff71857f06ba054418038ae9737d98ab7';
const PAYLOAD_HASH_B64 = 'mLdrZg3J3M/xoYeThCPWf/cYV/BroFRBgDiulzfZirc=';
const ZERO32: Hex = `0x${'00'.repeat(32)}`;
const ONES32: Hex = `0x${'01'.repeat(32)}`;
const SENDER = '0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc';
const SENDER_CHECKSUMMED = '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC';
/** keccak256(0³² ‖ uint256(901) ‖ PAYLOAD_HASH), computed with ethers (another library than the code's viem). */
const HASH_ZERO_DOMAIN_901: Hex = '0x973594ed301f691ac08ffef61cca9dc8f8bcc42d722db36b87af3a7bba21dd2c';
/** keccak256(0x01³² ‖ uint256(2^64 + 1) ‖ PAYLOAD_HASH), computed with ethers. */
const HASH_ONES_DOMAIN_2_64_PLUS_1: Hex = '0xc9b884b6700665633181c5bc9bc9b6ef0ffd5ff622d3fff2417c5447253abae3';

const v1 = (over: Record<string, unknown> = {}) => ({
  domain: Array<number>(32).fill(0), chainId: 901, payloadHash: PAYLOAD_HASH_B64, senderAddress: SENDER, ...over,
});
const v2 = (over: Record<string, unknown> = {}) => ({
  domain: ZERO32, chainId: '901', payloadHash: PAYLOAD_HASH, senderAddress: SENDER, ...over,
});
/** The hash recomputed here from its definition: keccak256(domain ‖ chainId as 32 bytes BE ‖ payloadHash). */
const expected = (domain: Hex, chainId: bigint, payloadHash: Hex) => keccak256(concat([domain, numberToHex(chainId, { size: 32 }), payloadHash]));

function refused(version: 1 | 2, raw: unknown, problems: string[]) {
  assert.throws(() => decodeBlockPayloadArgs(raw, version), (e: unknown) => {
    assert.ok(e instanceof BlockPayloadError);
    assert.equal(e.version, version);
    assert.deepEqual(e.problems, problems);
    return true;
  });
}

describe('signing hash vectors', () => {
  test('the payload hash fixture is keccak256("potluck block payload")', () => {
    assert.equal(keccak256(toBytes('potluck block payload')), PAYLOAD_HASH);
    assert.equal(Buffer.from(PAYLOAD_HASH.slice(2), 'hex').toString('base64'), PAYLOAD_HASH_B64);
  });

  test('V1 as op-node sends it (zero domain, chainId number, base64 hash)', () => {
    const p = decodeBlockPayloadArgsV1(v1());
    assert.deepEqual(p, { domain: new Uint8Array(32), chainId: 901n, payloadHash: toBytes(PAYLOAD_HASH), senderAddress: SENDER_CHECKSUMMED });
    assert.equal(blockSigningHash(p), HASH_ZERO_DOMAIN_901);
    assert.equal(blockSigningHash(p), expected(ZERO32, 901n, PAYLOAD_HASH));
  });

  test('V2 gives the same hash for decimal and 0x-hex chain ids', () => {
    for (const chainId of ['901', '0x385']) {
      const p = decodeBlockPayloadArgsV2(v2({ chainId }));
      assert.equal(p.chainId, 901n);
      assert.equal(blockSigningHash(p), HASH_ZERO_DOMAIN_901);
    }
  });

  test('V2 with a non-zero domain and a chain id above 2^64', () => {
    const big = (1n << 64n) + 1n;
    const p = decodeBlockPayloadArgsV2(v2({ domain: ONES32, chainId: big.toString(), senderAddress: null }));
    assert.deepEqual(p, { domain: toBytes(ONES32), chainId: big, payloadHash: toBytes(PAYLOAD_HASH), senderAddress: null });
    assert.equal(blockSigningHash(p), HASH_ONES_DOMAIN_2_64_PLUS_1);
    assert.equal(blockSigningHash(p), expected(ONES32, big, PAYLOAD_HASH));
  });

  test('V1 and V2 of the same payload agree', () => {
    const d = Array.from({ length: 32 }, (_, i) => i);
    const domainHex = `0x${Buffer.from(d).toString('hex')}` as Hex;
    const a = decodeBlockPayloadArgsV1(v1({ domain: d, chainId: 10 }));
    const b = decodeBlockPayloadArgsV2(v2({ domain: domainHex, chainId: '10' }));
    assert.deepEqual(a, b);
    assert.equal(blockSigningHash(a), expected(domainHex, 10n, PAYLOAD_HASH));
  });

  test('senderAddress absent or null is null', () => {
    const { senderAddress: _, ...noSender } = v2();
    assert.equal(decodeBlockPayloadArgsV2(noSender).senderAddress, null);
    assert.equal(decodeBlockPayloadArgsV1(v1({ senderAddress: null })).senderAddress, null);
  });

  test('V1 accepts the legacy PayloadBytes field when it hashes to payloadHash', () => {
    const bytes = Buffer.from('potluck block payload').toString('base64');
    assert.equal(decodeBlockPayloadArgsV1(v1({ PayloadBytes: bytes })).chainId, 901n);
    refused(1, v1({ PayloadBytes: Buffer.from('other').toString('base64') }), ['PayloadBytes: keccak256 of it does not equal payloadHash']);
  });
});

describe('V1 strictness', () => {
  test('not an object', () => {
    refused(1, [v1()], ['request: must be a JSON object, got an array of 1']);
    refused(1, null, ['request: must be a JSON object, got null']);
  });

  test('missing fields and unknown fields are named', () => {
    refused(1, {}, ['domain: required', 'chainId: required', 'payloadHash: required']);
    refused(1, v1({ payloadhash: PAYLOAD_HASH_B64 }), ['unknown field "payloadhash"']);
    refused(1, v1({ chainId: null }), ['chainId: required']);
  });

  test('domain: exactly 32 byte values', () => {
    refused(1, v1({ domain: Array(31).fill(0) }), ['domain: must be an array of 32 byte values (Go [32]byte), got an array of 31']);
    refused(1, v1({ domain: ZERO32 }), [`domain: must be an array of 32 byte values (Go [32]byte), got "${ZERO32}"`]);
    refused(1, v1({ domain: [...Array(31).fill(0), 256] }), ['domain[31]: not a byte value 0..255: number 256']);
    refused(1, v1({ domain: [1.5, ...Array(31).fill(0)] }), ['domain[0]: not a byte value 0..255: number 1.5']);
    refused(1, v1({ domain: ['1', ...Array(31).fill(0)] }), ['domain[0]: not a byte value 0..255: "1"']);
  });

  test('chainId: a safe positive integer JSON number', () => {
    refused(1, v1({ chainId: '901' }), ['chainId: must be a non-negative integer JSON number (Go *big.Int), got "901"']);
    refused(1, v1({ chainId: -1 }), ['chainId: must be a non-negative integer JSON number (Go *big.Int), got number -1']);
    refused(1, v1({ chainId: 1.5 }), ['chainId: must be a non-negative integer JSON number (Go *big.Int), got number 1.5']);
    refused(1, v1({ chainId: 0 }), ['chainId: must be at least 1']);
    // 2^53 + 2 arrives from JSON.parse already as a double; above 2^53 - 1 exactness is lost.
    refused(1, JSON.parse('{"domain":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],"chainId":9007199254740993,"payloadHash":"mLdrZg3J3M/xoYeThCPWf/cYV/BroFRBgDiulzfZirc="}'),
      ['chainId: 9007199254740992 is above 2^53-1, where a JSON number loses precision; use opsigner_signBlockPayloadV2 (chainId as a string)']);
    assert.equal(decodeBlockPayloadArgsV1(v1({ chainId: Number.MAX_SAFE_INTEGER })).chainId, 9007199254740991n);
  });

  test('payloadHash: canonical standard base64 of 32 non-zero bytes', () => {
    refused(1, v1({ payloadHash: PAYLOAD_HASH }), [`payloadHash: not standard base64 with padding: "${PAYLOAD_HASH}"`]);
    refused(1, v1({ payloadHash: PAYLOAD_HASH_B64.slice(0, -1) }), [`payloadHash: not standard base64 with padding: "${PAYLOAD_HASH_B64.slice(0, -1)}"`]);
    refused(1, v1({ payloadHash: 'mLdrZg3J3M_xoYeThCPWf_cYV_BroFRBgDiulzfZirc=' }), ['payloadHash: not standard base64 with padding: "mLdrZg3J3M_xoYeThCPWf_cYV_BroFRBgDiulzfZirc="']);
    refused(1, v1({ payloadHash: 'mLdrZg3J3M/xoYeThCPWf/cYV/BroFRBgDiulzfZird=' }), ['payloadHash: not canonical base64 (non-zero padding bits): "mLdrZg3J3M/xoYeThCPWf/cYV/BroFRBgDiulzfZird="']);
    refused(1, v1({ payloadHash: Buffer.alloc(31, 7).toString('base64') }), ['payloadHash: must decode to 32 bytes, got 31']);
    refused(1, v1({ payloadHash: Buffer.alloc(32).toString('base64') }), ['payloadHash: must not be zero']);
  });

  test('senderAddress: an address', () => {
    refused(1, v1({ senderAddress: '0x1234' }), ['senderAddress: not an address (0x + 40 hex, valid EIP-55 checksum if mixed case): "0x1234"']);
    refused(1, v1({ senderAddress: '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293Bc' }),
      ['senderAddress: not an address (0x + 40 hex, valid EIP-55 checksum if mixed case): "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293Bc"']);
  });

  test('every problem is listed at once', () => {
    refused(1, { domain: [], chainId: 'x', payloadHash: 1, senderAddress: 2, extra: true }, [
      'unknown field "extra"',
      'domain: must be an array of 32 byte values (Go [32]byte), got an array of 0',
      'chainId: must be a non-negative integer JSON number (Go *big.Int), got "x"',
      'payloadHash: not standard base64 with padding: number 1',
      'senderAddress: not an address (0x + 40 hex, valid EIP-55 checksum if mixed case): number 2',
    ]);
  });
});

describe('V2 strictness', () => {
  test('missing and unknown fields', () => {
    refused(2, {}, ['domain: required', 'chainId: required', 'payloadHash: required']);
    refused(2, v2({ PayloadBytes: '' }), ['unknown field "PayloadBytes"']);
  });

  test('domain and payloadHash: lowercase 0x-hex of 32 bytes; payloadHash not zero', () => {
    refused(2, v2({ domain: ZERO32.slice(0, -2) }), [`domain: not lowercase 0x-hex of 32 bytes: "${ZERO32.slice(0, -2)}"`]);
    refused(2, v2({ domain: Array(32).fill(0) }), ['domain: not lowercase 0x-hex of 32 bytes: an array of 32']);
    refused(2, v2({ payloadHash: PAYLOAD_HASH.toUpperCase().replace('0X', '0x') }),
      [`payloadHash: not lowercase 0x-hex of 32 bytes: "${PAYLOAD_HASH.toUpperCase().replace('0X', '0x')}"`]);
    refused(2, v2({ payloadHash: PAYLOAD_HASH_B64 }), [`payloadHash: not lowercase 0x-hex of 32 bytes: "${PAYLOAD_HASH_B64}"`]);
    refused(2, v2({ payloadHash: ZERO32 }), ['payloadHash: must not be zero']);
  });

  test('chainId: a string, canonical decimal or lowercase 0x-hex, 1 .. 2^256-1', () => {
    refused(2, v2({ chainId: 901 }), ['chainId: must be a string, decimal or 0x-hex (eth.ChainID), got number 901']);
    refused(2, v2({ chainId: '0901' }), ['chainId: not a canonical decimal or lowercase 0x-hex integer (no leading zeros): "0901"']);
    refused(2, v2({ chainId: '0x0385' }), ['chainId: not a canonical decimal or lowercase 0x-hex integer (no leading zeros): "0x0385"']);
    refused(2, v2({ chainId: '0X385' }), ['chainId: not a canonical decimal or lowercase 0x-hex integer (no leading zeros): "0X385"']);
    refused(2, v2({ chainId: '' }), ['chainId: not a canonical decimal or lowercase 0x-hex integer (no leading zeros): ""']);
    refused(2, v2({ chainId: '0' }), ['chainId: must be at least 1']);
    refused(2, v2({ chainId: '0x0' }), ['chainId: must be at least 1']);
    refused(2, v2({ chainId: (1n << 256n).toString() }), ['chainId: exceeds 256 bits']);
    refused(2, v2({ chainId: `0x1${'0'.repeat(64)}` }), ['chainId: exceeds 256 bits']);
    assert.equal(decodeBlockPayloadArgsV2(v2({ chainId: ((1n << 256n) - 1n).toString() })).chainId, (1n << 256n) - 1n);
  });
});
