import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RateLimiter } from '../../src/policy/rate-limit.ts';

function fakeClock(start = 1_700_000_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => { t += ms; } };
}

test('a full bucket allows a burst of maxRequestsPerMinute, then refuses naming the client and the limit', () => {
  const clock = fakeClock();
  const rl = new RateLimiter([{ name: 'batcher', maxRequestsPerMinute: 600 }], { now: clock.now });
  assert.deepEqual(rl.take('batcher'), { rule: 'rate-limit', ok: true, detail: 'client batcher: 599 of 600 requests per minute left' });
  for (let i = 1; i < 600; i++) assert.equal(rl.take('batcher').ok, true, `request ${i}`);
  assert.deepEqual(rl.take('batcher'), { rule: 'rate-limit', ok: false, detail: 'client batcher exceeded 600 requests per minute' });
  assert.equal(rl.retryAfterMs('batcher'), 100);
});

test('refill is continuous: one request per 60000/limit ms, never above the capacity', () => {
  const clock = fakeClock();
  const rl = new RateLimiter([{ name: 'batcher', maxRequestsPerMinute: 600 }, { name: 'slow', maxRequestsPerMinute: 7 }], { now: clock.now });
  for (let i = 0; i < 600; i++) rl.take('batcher');
  clock.advance(99);
  assert.equal(rl.take('batcher').ok, false);
  clock.advance(1);
  assert.equal(rl.take('batcher').ok, true);
  assert.equal(rl.take('batcher').ok, false);
  clock.advance(250); // 2.5 requests
  assert.equal(rl.take('batcher').ok, true);
  assert.equal(rl.take('batcher').ok, true);
  assert.equal(rl.take('batcher').ok, false);
  assert.equal(rl.retryAfterMs('batcher'), 50);
  clock.advance(10 * 60_000); // idle: full again, not more
  let n = 0;
  while (rl.take('batcher').ok) n++;
  assert.equal(n, 600);
  // 7 per minute: 60000/7 ms per request, exactly at the boundary with integer units.
  for (let i = 0; i < 7; i++) assert.equal(rl.take('slow').ok, true);
  assert.equal(rl.take('slow').ok, false);
  clock.advance(8571);
  assert.equal(rl.take('slow').ok, false);
  clock.advance(1);
  assert.equal(rl.take('slow').ok, true);
});

test('clients are independent; a refused request takes nothing', () => {
  const clock = fakeClock();
  const rl = new RateLimiter([{ name: 'a', maxRequestsPerMinute: 1 }, { name: 'b', maxRequestsPerMinute: 1 }], { now: clock.now });
  assert.equal(rl.take('a').ok, true);
  for (let i = 0; i < 5; i++) assert.equal(rl.take('a').ok, false);
  assert.equal(rl.take('b').ok, true);
  clock.advance(60_000);
  assert.equal(rl.take('a').ok, true);
});

test('a clock stepping back refills nothing', () => {
  const clock = fakeClock();
  const rl = new RateLimiter([{ name: 'a', maxRequestsPerMinute: 60 }], { now: clock.now });
  for (let i = 0; i < 60; i++) rl.take('a');
  clock.advance(-30_000);
  assert.equal(rl.take('a').ok, false);
  clock.advance(30_000 + 999);
  assert.equal(rl.take('a').ok, false);
  clock.advance(1);
  assert.equal(rl.take('a').ok, true);
});

test('unknown clients are refused', () => {
  const rl = new RateLimiter([{ name: 'batcher', maxRequestsPerMinute: 600 }], { now: () => 0 });
  assert.deepEqual(rl.take('proposer'), { rule: 'rate-limit', ok: false, detail: 'client "proposer" is not in the policy' });
  assert.equal(rl.retryAfterMs('proposer'), Number.POSITIVE_INFINITY);
  assert.throws(() => new RateLimiter([{ name: 'x', maxRequestsPerMinute: 0 }]), { name: 'RangeError' });
});
