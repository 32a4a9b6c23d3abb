import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PeerBuffer, type Buffered } from '../../src/peer/peer-buffer.ts';

interface E extends Buffered { id: number }
let next = 0;
const e = (member: number, session: string, bytes: number, expires = 1000): E => ({ member, session, bytes, expires, id: next++ });

test('a member over its frame or byte budget loses its oldest entries; others are untouched', () => {
  const b = new PeerBuffer<E>({ frames: 3, bytes: 100 });
  const first = [e(1, 'a', 10), e(1, 'b', 10), e(1, 'c', 10)];
  for (const x of first) assert.equal(b.add(x, 0), true);
  b.add(e(2, 'a', 90), 0);
  b.add(e(1, 'd', 10), 0); // frame budget: 'a' goes
  assert.deepEqual(b.of(1, 0).map((x) => x.session), ['b', 'c', 'd']);
  b.add(e(1, 'e', 85), 0); // byte budget: 10+10+10+85 > 100, so 'b' and 'c' go
  assert.deepEqual(b.of(1, 0).map((x) => x.session), ['d', 'e']);
  assert.deepEqual(b.of(2, 0).map((x) => x.bytes), [90]);
  assert.deepEqual(b.stats(), { frames: 3, bytes: 185, sessions: 3, maxFramesPerMember: 2, maxBytesPerMember: 95, evicted: 3 });
  assert.equal(b.add(e(1, 'f', 101), 0), false); // larger than the whole budget: refused, nothing evicted
  assert.equal(b.stats().evicted, 3);
});

test('expired entries are evicted before live ones, skipped by take and of, and swept', () => {
  const b = new PeerBuffer<E>({ frames: 2, bytes: 1000 });
  b.add(e(1, 's', 10, 50), 0);
  b.add(e(1, 't', 10, 500), 0);
  b.add(e(1, 'u', 10, 500), 100); // 's' has expired: it goes, not 't'
  assert.deepEqual(b.of(1, 100).map((x) => x.session), ['t', 'u']);
  assert.equal(b.stats().evicted, 0);
  assert.deepEqual(b.take('t', 600), []); // removed, but expired: not returned
  b.sweep(600);
  assert.deepEqual(b.stats(), { frames: 0, bytes: 0, sessions: 0, maxFramesPerMember: 0, maxBytesPerMember: 0, evicted: 0 });
});

test("take and drop remove a session's entries across members, oldest first", () => {
  const b = new PeerBuffer<E>({ frames: 10, bytes: 1000 });
  const x = e(1, 's', 1), y = e(2, 's', 2), z = e(1, 'r', 3);
  for (const v of [x, y, z]) b.add(v, 0);
  assert.deepEqual(b.take('s', 0).map((v) => v.id), [x.id, y.id]);
  b.drop('r');
  assert.equal(b.stats().frames, 0);
  b.add(e(1, 'q', 4), 0); // an emptied member account works again
  assert.equal(b.stats().bytes, 4);
});
