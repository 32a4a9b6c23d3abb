import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nonceWindowReason } from '../../src/policy/nonce-window.ts';

/** The 'nonce-window' rule (issue 11) on its own: each bound, exact detail, both sides of it. */
test('with the L1\'s confirmed nonce: confirmed ≤ k ≤ confirmed + W', () => {
  const at = (k: number) => nonceWindowReason(k, { confirmed: 10, highest: 30 }, 4);
  assert.deepEqual(at(9), { rule: 'nonce-window', ok: false, detail: "nonce 9 is below the L1's confirmed nonce 10: that slot is spent" });
  assert.deepEqual(at(10), { rule: 'nonce-window', ok: true, detail: 'nonce 10 within [10, 14] (L1 confirmed 10)' });
  assert.equal(at(14).ok, true);
  assert.deepEqual(at(15), { rule: 'nonce-window', ok: false, detail: "nonce 15 is beyond the L1's confirmed nonce 10 + window 4" });
});

test('without an L1: any k before the first approval, then k ≤ highest approved + W', () => {
  assert.deepEqual(nonceWindowReason(1000, { highest: null }, 4), { rule: 'nonce-window', ok: true, detail: 'nonce 1000: no nonce approved yet and no L1 to compare with' });
  assert.deepEqual(nonceWindowReason(14, { highest: 10 }, 4), { rule: 'nonce-window', ok: true, detail: 'nonce 14 ≤ highest approved 10 + window 4' });
  assert.deepEqual(nonceWindowReason(15, { highest: 10 }, 4), { rule: 'nonce-window', ok: false, detail: 'nonce 15 is beyond the highest approved nonce 10 + window 4' });
  assert.equal(nonceWindowReason(0, { highest: 10 }, 4).ok, true, 'a lower nonce is for the equivocation rule to judge');
});
