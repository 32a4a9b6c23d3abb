import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_FRAME_LIFETIME_MS, REPLAY_PAIRS_PER_SENDER, REPLAY_TTL_MS, ReplayGuard } from '../../src/net/replay-guard.ts';

const clock = (start = 5_000_000) => {
  const c = { now: start, fn: () => c.now };
  return c;
};

test('the defaults: a 1 h window, 32,768 pairs per sender, frames live at most half the window', () => {
  assert.equal(REPLAY_TTL_MS, 3_600_000);
  assert.equal(REPLAY_PAIRS_PER_SENDER, 32_768);
  assert.equal(MAX_FRAME_LIFETIME_MS, 1_800_000);
});

test('a replay within the window is refused, per sender', () => {
  const g = new ReplayGuard();
  assert.equal(g.check(1, 10), undefined);
  assert.equal(g.check(1, 10), 'replay');
  assert.equal(g.check(2, 10), undefined); // another sender's numbers are its own
  assert.equal(g.check(1, 9), undefined); // out of order is fine: nothing was evicted
});

test('after the window a pair is forgotten but the floor still refuses it; newer numbers pass', () => {
  const c = clock();
  const g = new ReplayGuard({ ttlMs: 60_000, now: c.fn });
  g.check(1, 100);
  g.check(1, 101);
  c.now += 30_000;
  g.check(1, 102);
  c.now += 30_001; // 100 and 101 are now older than the window; 102 is not
  assert.equal(g.check(1, 100), 'below-window');
  assert.equal(g.floorOf(1), 101);
  assert.equal(g.check(1, 101), 'below-window');
  assert.equal(g.check(1, 102), 'replay');
  assert.equal(g.check(1, 103), undefined);
  assert.deepEqual(g.stats(), { senders: 1, pairs: 2, maxPairsPerSender: 2 });
});

test('past the per-sender cap the oldest arrival is evicted and becomes the floor', () => {
  const g = new ReplayGuard({ perSender: 3 });
  for (const seq of [1, 2, 3, 4]) assert.equal(g.check(7, seq), undefined);
  assert.equal(g.floorOf(7), 1);
  assert.equal(g.check(7, 1), 'below-window');
  assert.equal(g.check(7, 2), 'replay');
  assert.deepEqual(g.stats(), { senders: 1, pairs: 3, maxPairsPerSender: 3 });
});

test("a live session's frames resent after a reconnect: the lost one is accepted, the delivered ones are refused", () => {
  const c = clock();
  const g = new ReplayGuard({ now: c.fn });
  // The sender numbered a session's frames 10, 11, 12; frame 11 was lost with a closing stream.
  assert.equal(g.check(3, 10), undefined);
  assert.equal(g.check(3, 12), undefined);
  // Other traffic from the same sender meanwhile, for four minutes.
  for (let seq = 13; seq < 2013; seq++) {
    c.now += 120;
    assert.equal(g.check(3, seq), undefined);
  }
  assert.deepEqual([10, 11, 12].map((seq) => g.check(3, seq)), ['replay', undefined, 'replay']);
});

test('a flood of fresh numbers from one sender keeps the guard at its cap and leaves the others alone', () => {
  const g = new ReplayGuard({ perSender: 1000 });
  g.check(2, 5);
  for (let seq = 1; seq <= 50_000; seq++) g.check(1, seq);
  assert.deepEqual(g.stats(), { senders: 2, pairs: 1001, maxPairsPerSender: 1000 });
  assert.equal(g.floorOf(1), 49_000);
  assert.equal(g.check(1, 49_000), 'below-window');
  assert.equal(g.check(2, 5), 'replay');
  assert.equal(g.floorOf(2), -1);
});
