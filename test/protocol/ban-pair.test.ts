import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { systemRng } from '../../src/crypto/random.ts';
import { AbortError, BanPairError } from '../../src/protocol/errors.ts';
import { PresignSession } from '../../src/protocol/sign.ts';
import type { KeyShare } from '../../src/protocol/key-share.ts';
import { decodeBody, encodeBody } from '../../src/protocol/messages.ts';
import type { Outgoing } from '../../src/protocol/machine.ts';
import { keygen } from '../../src/sim/simulator.ts';

let shares: Map<number, KeyShare>;
before(() => {
  shares = keygen(2, 3, { seed: 'ban-pair' });
});

/** Deliver everything in `queue` among `machines`, rewriting party 2's flight-2 message to `victim`. */
function pump(machines: Map<number, PresignSession>, queue: { from: number; msg: Outgoing }[], tamperTo?: number) {
  const results = new Map<number, unknown>();
  while (queue.length) {
    const { from, msg } = queue.shift()!;
    let bytes = msg.bytes;
    const body = decodeBody(bytes);
    if (tamperTo !== undefined && from === 2 && msg.to === tamperTo && body.case === 'signExtension') {
      const u = new Uint8Array(body.value.u);
      u[7]! ^= 1;
      bytes = encodeBody({ case: 'signExtension', value: { ...body.value, u } });
    }
    for (const to of msg.to === null ? [...machines.keys()].filter((k) => k !== from) : [msg.to]) {
      const res = machines.get(to)!.receive({ from, to: msg.to, bytes }, systemRng);
      for (const out of res.out) queue.push({ from: to, msg: out });
      if (res.error) results.set(to, res.error);
      if (res.output) results.set(to, res.output);
    }
  }
  return results;
}

test('a BAN_PAIR in one session aborts a concurrent session with the same peer, and the pair stays burned', () => {
  const T = [1, 2];
  const a = new Map(T.map((i) => [i, new PresignSession(shares.get(i)!, { signers: T, request: new Uint8Array([1]) })]));
  const b = new Map(T.map((i) => [i, new PresignSession(shares.get(i)!, { signers: T, request: new Uint8Array([2]) })]));
  const qa: { from: number; msg: Outgoing }[] = [], qb: { from: number; msg: Outgoing }[] = [];
  for (const i of T) {
    for (const m of a.get(i)!.start(systemRng).out) qa.push({ from: i, msg: m });
    for (const m of b.get(i)!.start(systemRng).out) qb.push({ from: i, msg: m });
  }
  // Session a: party 2 corrupts its OT-extension message to party 1.
  const ra = pump(a, qa, 1);
  const err = ra.get(1);
  assert.ok(err instanceof BanPairError);
  assert.equal(err.check, 'softspoken-check');
  assert.equal(err.culprit, 2);
  // The peer layer's duty (spec §2.10): abort every concurrent session with the culprit …
  b.get(1)!.abort(new AbortError('burned-pair', 'concurrent session aborted after BAN_PAIR', 2));
  const rb = pump(b, qb);
  assert.ok(b.get(1)!.failed instanceof AbortError);
  assert.equal(b.get(1)!.failed!.check, 'burned-pair');
  assert.equal(rb.has(1) && !(rb.get(1) instanceof AbortError), false, 'party 1 produced no presignature');
  // … and refuse new sessions with it until the OT setup is redone.
  assert.throws(
    () => new PresignSession(shares.get(1)!, { signers: T, request: new Uint8Array([3]), burned: new Set([2]) }),
    (e: unknown) => e instanceof AbortError && e.check === 'burned-pair' && e.culprit === 2,
  );
  // A signer set without the burned peer still works.
  assert.doesNotThrow(() => new PresignSession(shares.get(1)!, { signers: [1, 3], request: new Uint8Array([4]), burned: new Set([2]) }));
});
