import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { systemRng } from '../../src/crypto/random.ts';
import { DecodeError } from '../../src/crypto/errors.ts';
import { AbortError } from '../../src/protocol/errors.ts';
import { decodePresignature, encodePresignature } from '../../src/protocol/presignature-codec.ts';
import { createPartial, type Presignature } from '../../src/protocol/sign.ts';
import { keygen, runOnline, runPresign } from '../../src/sim/simulator.ts';

let presigs: Map<number, Presignature>;
before(() => {
  presigs = runPresign(keygen(2, 2, { seed: 'presig-codec' }), [1, 2]).outputs;
});

test('a presignature survives encode → decode, and the restored copies still sign', () => {
  const restored = new Map([...presigs].map(([i, p]) => [i, decodePresignature(encodePresignature(p))]));
  for (const [i, p] of restored) {
    assert.deepEqual(encodePresignature(p), encodePresignature(presigs.get(i)!));
    assert.equal(p.used, false);
  }
  const res = runOnline(restored, systemRng(32));
  assert.equal(res.errors.size, 0);
  assert.equal(res.outputs.size, 2);
});

test('the used mark survives a round trip, so a restored used presignature refuses to sign', () => {
  const p = decodePresignature(encodePresignature(presigs.get(1)!));
  createPartial(p, systemRng(32));
  const again = decodePresignature(encodePresignature(p));
  assert.equal(again.used, true);
  assert.throws(() => createPartial(again, systemRng(32)), (e: unknown) => e instanceof AbortError && e.check === 'presignature-used');
});

test('decodePresignature: 10,000 mutations and every 7th truncation give DecodeError or a canonical value', () => {
  const bytes = encodePresignature(presigs.get(2)!);
  let rejected = 0;
  for (let k = 0; k < 10_000; k++) {
    const b = new Uint8Array(bytes);
    const r = systemRng(3);
    b[(r[0]! << 8 | r[1]!) % b.length]! ^= r[2]! | 1;
    try {
      const p = decodePresignature(b);
      assert.equal(Buffer.from(encodePresignature(p)).toString("hex"), Buffer.from(b).toString("hex")); // anything accepted is canonical
    } catch (e) {
      assert.ok(e instanceof DecodeError, String(e));
      rejected++;
    }
  }
  assert.ok(rejected > 1500, `only ${rejected} of 10,000 rejected`); // most bytes are scalars, where any value < n is valid
  for (let cut = 0; cut < bytes.length; cut += 7) assert.throws(() => decodePresignature(bytes.subarray(0, cut)), DecodeError);
});
