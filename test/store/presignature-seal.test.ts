import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { seededRng } from '../../src/crypto/random.ts';
import { DecodeError } from '../../src/crypto/errors.ts';
import type { KeyShare } from '../../src/protocol/key-share.ts';
import type { Presignature } from '../../src/protocol/sign.ts';
import { keygen, runPresign } from '../../src/sim/simulator.ts';
import { openPresignature, poolKey, PresignatureSealError, sealPresignature } from '../../src/store/presignature-seal.ts';

let shares: Map<number, KeyShare>;
let presig: Presignature;
before(() => {
  shares = keygen(2, 2, { seed: 'presig-seal' });
  presig = runPresign(shares, [1, 2], new Uint8Array(0), { seed: 'presig-seal' }).outputs.get(1)!;
});
const rng = seededRng('seal');

test('a sealed presignature row opens to the same presignature and hides it', () => {
  const key = poolKey(shares.get(1)!);
  const blob = sealPresignature(presig, key, rng);
  const back = openPresignature(blob, key, presig.sigSid);
  assert.equal(back.u, presig.u);
  assert.equal(back.v, presig.v);
  assert.equal(back.phi, presig.phi);
  assert.ok(back.R.equals(presig.R));
  assert.ok(!Buffer.from(blob).includes(Buffer.from(presig.u.toString(16).padStart(64, '0').slice(0, 16), 'hex')));
});

test('another sigSid, another party, another epoch, or a flipped bit does not open; a short row is DecodeError', () => {
  const key = poolKey(shares.get(1)!);
  const blob = sealPresignature(presig, key, rng);
  const other = presig.sigSid.slice();
  other[0]! ^= 1;
  assert.throws(() => openPresignature(blob, key, other), PresignatureSealError);
  assert.throws(() => openPresignature(blob, poolKey(shares.get(2)!), presig.sigSid), PresignatureSealError);
  assert.throws(() => openPresignature(blob, poolKey({ ...shares.get(1)!, epoch: 1 }), presig.sigSid), PresignatureSealError);
  const flipped = blob.slice();
  flipped[40]! ^= 1;
  assert.throws(() => openPresignature(flipped, key, presig.sigSid), PresignatureSealError);
  assert.throws(() => openPresignature(blob.subarray(0, 30), key, presig.sigSid), DecodeError);
});
