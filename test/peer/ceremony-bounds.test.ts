import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { systemRng } from '../../src/crypto/random.ts';
import { mulG } from '../../src/crypto/scalar-point.ts';
import { MAX_CEREMONY_PARAMS_BYTES, encodeParams, paramsProblem, type CeremonyParams } from '../../src/peer/ceremony-params.ts';
import { CONTROL_MAX_BYTES, decodeControl, encodeControl, type CeremonyAck, type Control } from '../../src/peer/control.ts';
import {
  CeremonyCoordinator, CeremonyError, JOIN_TTL_MS, MAX_ACKS_PER_MEMBER, MAX_CEREMONY_TIMEOUT_MS, MAX_JOINS_PER_MEMBER, joinSessionOf, publicSharesHash, type CeremonyRefusal,
} from '../../src/peer/dealing-ceremony.ts';
import { cluster, host, quiet, type Cluster } from './toy-session.ts';

/**
 * Ceremony bounds (issue 11) and the binding of acks to the outcome (issue 12): joins and acks a
 * peer can make a coordinator hold are counted, sized, refused by name and expire; an ack for
 * another outcome of the same DKG (new public shares, round-4 echo) is refused at once.
 */
let c: Cluster;
before(async () => {
  c = await cluster(3);
});

const params = (over: Partial<CeremonyParams> = {}): CeremonyParams => ({
  v: 1, kind: 'refresh', keyId: 'batcher', epoch: 3, oldThreshold: 2, threshold: 2, publicKey: '02' + 'ab'.repeat(32),
  holders: ['12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq', '12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo'], remove: [], add: [], tag: '', ...over,
});

function coordinator(over: { now?: () => number } = {}) {
  const refusals: string[] = [];
  const coord = new CeremonyCoordinator({
    home: '/nonexistent', passphrase: 'x', log: quiet, rng: systemRng, host: host(c, 1), self: c.members[0]!, clusterHash: c.clusterHash, members: c.members,
    isConnected: () => true, onRefuse: (m, why: CeremonyRefusal, detail) => refusals.push(`${m.org}:${why}:${detail}`), ...over,
  });
  return { coord, refusals };
}

const join = (keyId: string, p: Uint8Array = encodeParams(params({ keyId }))): Control => ({ case: 'join', value: { kind: 'refresh', keyId, nonce: systemRng(32), params: p } });

describe('join parameters', () => {
  test('the limit: every list at 16 of the longest names, a 128-character tag escaped at 6 bytes a character', () => {
    assert.equal(MAX_CEREMONY_PARAMS_BYTES, 4290);
    assert.equal(CONTROL_MAX_BYTES.join, 4414);
    assert.equal(paramsProblem(encodeParams(params())), undefined);
  });

  test('each refusal names what is wrong', () => {
    const enc = (p: object) => new TextEncoder().encode(JSON.stringify(p));
    const cases: [Uint8Array, string][] = [
      [new Uint8Array(MAX_CEREMONY_PARAMS_BYTES + 1), `parameters of ${MAX_CEREMONY_PARAMS_BYTES + 1} bytes exceed the limit of ${MAX_CEREMONY_PARAMS_BYTES} bytes`],
      [new Uint8Array([0xff]), 'parameters are not JSON'],
      [enc({ ...params(), v: 2 }), 'parameters: unknown version or kind'],
      [encodeParams(params({ keyId: 'Bad Name' })), 'parameters: bad key name'],
      [encodeParams(params({ publicKey: '04' + 'ab'.repeat(32) })), 'parameters: bad public key'],
      [encodeParams(params({ epoch: -1 })), 'parameters: bad epoch or threshold'],
      [encodeParams(params({ holders: Array(17).fill('12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq') })), 'parameters: holders, remove and add must be at most 16 peer ids or org names'],
      [encodeParams(params({ remove: ['a b'] })), 'parameters: holders, remove and add must be at most 16 peer ids or org names'],
      [encodeParams(params({ tag: 't'.repeat(129) })), 'parameters: tag must be a string of at most 128 characters'],
      [enc({ ...params(), remove: ['b', 'a'] }), 'parameters are not in canonical form'],
    ];
    for (const [bytes, why] of cases) assert.equal(paramsProblem(bytes), why);
  });
});

describe('joins and acks held per member', () => {
  test('a join on the wrong session, for a bad key name or with bad parameters is refused by name and not held', () => {
    const { coord, refusals } = coordinator();
    const from = c.members[2]!;
    coord.onControl(from, systemRng(32), join('batcher'));
    coord.onControl(from, joinSessionOf(c.clusterHash, 'refresh', 'x'), join('X!'));
    coord.onControl(from, joinSessionOf(c.clusterHash, 'refresh', 'batcher'), join('batcher', new Uint8Array(10)));
    assert.deepEqual(refusals, ['org3:join-session:not the join session of its kind and key', 'org3:join-key:not a key name', 'org3:join-params:parameters are not JSON']);
    assert.deepEqual(coord.stats(), { joinSessions: 0, joins: 0, acks: 0, refused: { 'join-session': 1, 'join-key': 1, 'join-params': 1 } });
  });

  test('a flood of valid joins for made-up keys holds at most 4 per member, the newest; joins expire after 10 minutes', () => {
    let now = 10_000_000;
    const { coord } = coordinator({ now: () => now });
    for (let i = 0; i < 500; i++) coord.onControl(c.members[2]!, joinSessionOf(c.clusterHash, 'refresh', `k${i}`), join(`k${i}`));
    coord.onControl(c.members[1]!, joinSessionOf(c.clusterHash, 'refresh', 'batcher'), join('batcher'));
    assert.deepEqual(coord.stats(), { joinSessions: MAX_JOINS_PER_MEMBER + 1, joins: MAX_JOINS_PER_MEMBER + 1, acks: 0, refused: {} });
    now += JOIN_TTL_MS + 1;
    coord.onControl(c.members[2]!, joinSessionOf(c.clusterHash, 'refresh', 'fresh'), join('fresh'));
    assert.deepEqual(coord.stats().joins, 1);
  });

  test('acks: at most 4 per member (the newest), refresh and reshare only', () => {
    const { coord, refusals } = coordinator();
    const ack = (): Control => ({ case: 'ack', value: { kind: 'refresh', keyId: 'batcher', epoch: 4, dkgSessionId: systemRng(32), publicKey: new Uint8Array(33), publicSharesHash: new Uint8Array(32), echo: new Uint8Array(32) } });
    for (let i = 0; i < 300; i++) coord.onControl(c.members[2]!, systemRng(32), ack());
    coord.onControl(c.members[2]!, systemRng(32), { case: 'ack', value: { ...(ack().value as CeremonyAck), kind: 'keygen' } });
    assert.deepEqual(coord.stats(), { joinSessions: 0, joins: 0, acks: MAX_ACKS_PER_MEMBER, refused: { 'ack-kind': 1 } });
    assert.deepEqual(refusals, ['org3:ack-kind:kind "keygen"']);
  });
});

describe('acks bind the outcome (issue 12)', () => {
  const shares = [1n, 2n, 3n].map((k) => mulG(k));
  const ours: CeremonyAck = { kind: 'refresh', keyId: 'batcher', epoch: 4, dkgSessionId: new Uint8Array(32).fill(1), publicKey: mulG(9n).toBytes(true), publicSharesHash: publicSharesHash(shares), echo: new Uint8Array(32).fill(2) };
  const others = () => [c.members[1]!, c.members[2]!];

  test('H(S′) depends on every public share and their order', () => {
    assert.notDeepEqual(publicSharesHash([shares[1]!, shares[0]!, shares[2]!]), ours.publicSharesHash);
    assert.notDeepEqual(publicSharesHash(shares.slice(0, 2)), ours.publicSharesHash);
    assert.deepEqual(decodeControl(encodeControl({ case: 'ack', value: ours })), { case: 'ack', value: ours });
  });

  test('matching acks from every other holder complete the wait', async () => {
    const { coord } = coordinator();
    const wait = coord.awaitAcks(ours, others(), Date.now() + 5000, 'kept');
    for (const m of others()) coord.onControl(m, ours.dkgSessionId, { case: 'ack', value: { ...ours } });
    await wait;
    assert.equal(coord.stats().acks, 0);
  });

  for (const [field, value] of [['publicSharesHash', publicSharesHash(shares.slice(0, 2))], ['echo', new Uint8Array(32).fill(3)]] as const)
    test(`an ack with another ${field} is refused at once, naming its sender`, async () => {
      const { coord } = coordinator();
      const wait = coord.awaitAcks(ours, others(), Date.now() + 60_000, 'the old share stays active');
      coord.onControl(c.members[1]!, ours.dkgSessionId, { case: 'ack', value: { ...ours } });
      coord.onControl(c.members[2]!, ours.dkgSessionId, { case: 'ack', value: { ...ours, [field]: value } });
      await assert.rejects(wait, (e: unknown) => e instanceof CeremonyError && e.message === 'org3 acknowledged another outcome of this refresh (its new public shares, round-4 echo, key or epoch differ from ours); the old share stays active');
    });

  test('a ceremony timeout beyond the replay window is refused before anything is sent', async () => {
    const { coord } = coordinator();
    assert.equal(MAX_CEREMONY_TIMEOUT_MS, 1_740_000);
    await assert.rejects(coord.run(undefined, undefined, { kind: 'refresh', keyId: 'batcher', threshold: 2, remove: [], add: [] }, MAX_CEREMONY_TIMEOUT_MS + 1),
      (e: unknown) => e instanceof CeremonyError && e.message === 'the timeout must be between 1 and 1740 seconds (the replay window outlasts every frame of a ceremony)');
  });
});
