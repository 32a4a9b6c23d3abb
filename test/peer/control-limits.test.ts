import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DecodeError } from '../../src/crypto/errors.ts';
import { CONTROL_MAX_BYTES, MAX_REASON_BYTES, decodeControl, encodeControl, type Control } from '../../src/peer/control.ts';

/** The control decoder's per-case size table (issue 11): its values, and one refusal per case. */
test('the table: the longest encoding of each case', () => {
  assert.deepEqual({ ...CONTROL_MAX_BYTES }, {
    join: 4414, ack: 230, presignProposal: 197, signProposal: 279_610, decision: 4172, pairSetupProposal: 108, checkpoint: 14_522,
    approvalRequest: 2_097_152, approval: 1027, checkpointReply: 439,
  });
  assert.equal(MAX_REASON_BYTES, 4096);
});

const z = (n: number) => new Uint8Array(n);
/** A well-formed message of each case, grown by `pad` bytes in a free-length field. */
const samples = (pad: number): Control[] => [
  { case: 'join', value: { kind: 'refresh', keyId: 'k', nonce: z(32), params: z(pad) } },
  { case: 'ack', value: { kind: 'refresh', keyId: 'k'.repeat(pad), epoch: 1, dkgSessionId: z(32), publicKey: z(33), publicSharesHash: z(32), echo: z(32) } },
  { case: 'presignProposal', value: { keyId: 'k'.repeat(pad), epoch: 1, signers: [1, 2], owner: 1, nonce: z(32) } },
  { case: 'signProposal', value: { keyId: 'k', epoch: 1, signers: [1, 2], presignature: z(32), digest: z(32), request: z(pad), certificate: z(0) } },
  { case: 'decision', value: { session: z(32), accept: false, reason: 'r'.repeat(pad), code: '' } },
  { case: 'pairSetupProposal', value: { keyId: 'k'.repeat(pad), epoch: 1, nonce: z(32) } },
  { case: 'checkpoint', value: { note: 'n'.repeat(Math.min(pad, 4096)), previousSize: 1, consistency: Array.from({ length: Math.max(0, Math.ceil((pad - 4096) / 34)) }, () => z(32)).slice(0, 64), resetSize: 0, resetRoot: z(0) } },
  { case: 'approvalRequest', value: { keyId: 'k', requestId: z(32), request: z(pad) } },
  { case: 'approval', value: z(Math.max(1, Math.min(pad, 1024))) },
  { case: 'checkpointReply', value: { origin: 'o'.repeat(Math.max(1, Math.min(pad, 256))), size: 1, root: z(32), authorSignature: z(64), cosignature: z(0), conflict: true } },
];

for (const c of Object.keys(CONTROL_MAX_BYTES) as Control['case'][])
  test(`${c}: one byte over its limit is refused naming the case; at most the limit it decodes`, () => {
    const max = CONTROL_MAX_BYTES[c];
    const sized = (target: number) => {
      // Grow the free field until the encoding reaches `target` (or the field's own bound).
      let lo = 0, hi = max;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (encodeControl(samples(mid).find((s) => s.case === c)!).length <= target) lo = mid;
        else hi = mid - 1;
      }
      return encodeControl(samples(lo).find((s) => s.case === c)!);
    };
    const atMost = sized(max);
    assert.ok(atMost.length <= max);
    assert.equal(decodeControl(atMost).case, c);
    const over = new Uint8Array(max + 1);
    over.set(atMost.subarray(0, 4)); // the case's tag and a length: the size check reads only the tag
    assert.throws(() => decodeControl(over), (e: unknown) => e instanceof DecodeError && e.message === `control: control ${c} of ${max + 1} bytes exceeds its limit of ${max} bytes`);
  });
