import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AbortError } from '../../src/protocol/errors.ts';
import { DealingSession, type DealingRequest } from '../../src/protocol/dkg.ts';
import type { KeyShare } from '../../src/protocol/key-share.ts';
import { keygenRequest, syntheticIdentities } from '../../src/sim/simulator.ts';

/**
 * Every refusal of a dealing request, with its exact reason: the request is local input, so a bad
 * one is refused with ABORT bad-input before anything is sent (DealingSession's constructor).
 */
const keygen3 = keygenRequest(2, 3, 'k', new Uint8Array(32));
/** Only the fields the request check reads: a share of a 2-of-3 key at epoch 0. */
const old = (index: number, over: Partial<KeyShare> = {}) => ({ keyId: 'k', epoch: 0, threshold: 2, index, parties: syntheticIdentities(3), ...over }) as KeyShare;
const refresh3: DealingRequest = { ...keygen3, kind: 'refresh', epoch: 1, dealerOldIndices: [1, 2, 3] };
const reshare: DealingRequest = { ...keygen3, kind: 'reshare', epoch: 1, dealers: [1, 2], receivers: [1, 2, 3], dealerOldIndices: [1, 2] };

const cases: [string, DealingRequest, number, KeyShare | undefined, string][] = [
  ['one participant', { ...keygen3, participants: syntheticIdentities(1), dealers: [1], receivers: [1] }, 1, undefined, 'participant count 1 not in 2..64'],
  ['65 participants', keygenRequest(2, 65), 1, undefined, 'participant count 65 not in 2..64'],
  ['participants out of order', { ...keygen3, participants: [...syntheticIdentities(3)].reverse() }, 1, undefined, 'participants must be sorted and distinct'],
  ['self outside 1..p', keygen3, 4, undefined, 'self index 4 not in 1..3'],
  ['a dealer index outside 1..p', { ...keygen3, dealers: [1, 2, 4] }, 1, undefined, 'dealers must be distinct indices in 1..3'],
  ['a repeated receiver', { ...keygen3, receivers: [1, 2, 2] }, 1, undefined, 'receivers must be distinct indices in 1..3'],
  ['dealers not ascending', { ...keygen3, dealers: [2, 1, 3] }, 1, undefined, 'dealers must be ascending'],
  ['threshold 1', { ...keygen3, threshold: 1 }, 1, undefined, 'threshold 1 not in 2..3'],
  ['threshold above the receivers', { ...keygen3, threshold: 4 }, 1, undefined, 'threshold 4 not in 2..3'],
  ['a nonce of 31 bytes', { ...keygen3, nonce: new Uint8Array(31) }, 1, undefined, 'nonce must be 32 bytes'],
  ['a participant that neither deals nor receives', { ...reshare, receivers: [1, 2] }, 1, old(1), 'every participant must deal or receive'],
  ['keygen where one only receives', { ...keygen3, dealers: [1, 2] }, 1, undefined, 'keygen: every participant deals and receives'],
  ['keygen at epoch 1', { ...keygen3, epoch: 1 }, 1, undefined, 'keygen produces epoch 0'],
  ['keygen with an old share', keygen3, 1, old(1), 'keygen takes no old share'],
  ['refresh without old indices', { ...refresh3, dealerOldIndices: undefined }, 1, old(1), 'refresh: dealerOldIndices must list the old index of every dealer'],
  ['old index 0', { ...reshare, dealerOldIndices: [0, 2] }, 1, old(1), 'dealerOldIndices must be distinct indices ≥ 1'],
  ['refresh that moves an index', { ...refresh3, dealerOldIndices: [1, 3, 2] }, 1, old(1), 'refresh keeps every index'],
  ['a dealer without its old share', reshare, 1, undefined, 'a dealer needs its old key share'],
  ['an old share of another key', reshare, 1, old(1, { keyId: 'other' }), 'old share is for another key'],
  ['a new epoch that skips one', { ...reshare, epoch: 2 }, 1, old(1), 'new epoch must be 1'],
  ['refresh that changes the threshold', { ...refresh3, threshold: 3 }, 1, old(1), 'refresh keeps the threshold'],
  ['reshare by three dealers of a 2-of-3 key', { ...reshare, dealers: [1, 2, 3], dealerOldIndices: [1, 2, 3] }, 1, old(1), 'reshare needs exactly 2 dealers'],
  ['a dealer listed under another old index', { ...reshare, dealerOldIndices: [2, 1] }, 1, old(1), 'my old index does not match my share'],
  ['an old index above the old n', { ...reshare, dealerOldIndices: [1, 4] }, 1, old(1), 'dealerOldIndices must be in 1..3'],
];

for (const [name, req, self, share, reason] of cases)
  test(`refused: ${name} (“${reason}”)`, () => {
    assert.throws(() => new DealingSession(req, self, share), (e: unknown) => {
      assert.ok(e instanceof AbortError, String(e));
      assert.equal(e.check, 'bad-input');
      assert.equal(e.culprit, undefined);
      assert.ok(e.message.includes(reason), `expected "${reason}" in "${e.message}"`);
      return true;
    });
  });

test('the requests the refusals start from are accepted', () => {
  assert.ok(new DealingSession(keygen3, 1));
  assert.ok(new DealingSession(refresh3, 2, old(2)));
  assert.ok(new DealingSession(reshare, 1, old(1)));
  assert.ok(new DealingSession(reshare, 3)); // the newcomer
});
