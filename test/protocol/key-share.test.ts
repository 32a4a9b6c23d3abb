import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { decodeKeyShare, encodeKeyShare, type KeyShare } from '../../src/protocol/key-share.ts';
import { DecodeError } from '../../src/crypto/errors.ts';
import { keygen } from '../../src/sim/simulator.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));

test('the generated protobuf descriptor matches proto/potluck.proto', () => {
  const fresh = execFileSync(process.execPath, [`${root}node_modules/protobufjs-cli/bin/pbjs`, '-t', 'json', `${root}proto/potluck.proto`], { encoding: 'utf8' });
  assert.deepEqual(JSON.parse(fresh), JSON.parse(readFileSync(`${root}src/protocol/gen/potluck.json`, 'utf8')));
});

let shares: Map<number, KeyShare>;
before(() => {
  shares = keygen(2, 2, { seed: 'key-share-test' });
});

test('a key share survives encode → decode unchanged', () => {
  for (const s of shares.values()) {
    const bytes = encodeKeyShare(s);
    const back = decodeKeyShare(bytes);
    assert.deepEqual(encodeKeyShare(back), bytes);
    assert.equal(back.secretShare, s.secretShare);
    assert.ok(back.publicKey.equals(s.publicKey));
    assert.equal(back.pairs.size, 1);
  }
});

test('decodeKeyShare rejects trailing bytes, truncation and a wrong version with DecodeError', () => {
  const bytes = encodeKeyShare(shares.get(1)!);
  assert.throws(() => decodeKeyShare(new Uint8Array([...bytes, 0])), DecodeError);
  assert.throws(() => decodeKeyShare(bytes.subarray(0, bytes.length - 1)), DecodeError);
  const s = { ...shares.get(1)! };
  const wrongIndex = encodeKeyShare({ ...s, index: 3 });
  assert.throws(() => decodeKeyShare(wrongIndex), (e: unknown) => e instanceof DecodeError && e.what === 'keyShare.index');
});
