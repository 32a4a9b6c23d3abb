import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { sha256 } from '@noble/hashes/sha2.js';
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import {
  CheckpointError, checkpointBody, cosignCheckpoint, noteKeyId, noteOfCosignature, openCheckpoint, originOf, parseCheckpointBody, parseNote, signNote, verifyNote,
} from '../../src/audit/checkpoint.ts';
import { signerOf } from '../../src/audit/entry.ts';
import { consistencyProof, leafHash, rootFromLeafHashes } from '../../src/audit/merkle.ts';

// Fixed keys: Ed25519 from seeds SHA-256("checkpoint-author") and SHA-256("checkpoint-witness").
let author: PrivateKey, witness: PrivateKey;
let aOrigin: string, wOrigin: string;
const clusterHash = new Uint8Array(32).fill(0xab);
const root = sha256(new TextEncoder().encode('root'));
before(async () => {
  author = await generateKeyPairFromSeed('Ed25519', sha256(new TextEncoder().encode('checkpoint-author')));
  witness = await generateKeyPairFromSeed('Ed25519', sha256(new TextEncoder().encode('checkpoint-witness')));
  aOrigin = originOf(clusterHash, peerIdFromPrivateKey(author).toString());
  wOrigin = originOf(clusterHash, peerIdFromPrivateKey(witness).toString());
});
const signer = (k: PrivateKey, name: string) => ({ name, publicKey: k.publicKey.raw, sign: signerOf(k) });

test('tlog-checkpoint body: origin, decimal size, base64 root, each newline-terminated', () => {
  const body = checkpointBody({ origin: aOrigin, size: 12345, root });
  assert.equal(body, `${aOrigin}\n12345\n${Buffer.from(root).toString('base64')}\n`);
  assert.match(aOrigin, /^potluck\/(ab){32}\/12D3KooW\w+$/);
  assert.deepEqual(parseCheckpointBody(body), { origin: aOrigin, size: 12345, root });
  for (const bad of [body.slice(0, -1), body.replace('12345', '012345'), body.replace('12345', '-1'), body + 'extension\n', `${aOrigin}\n1\n${Buffer.alloc(31).toString('base64')}\n`])
    assert.throws(() => parseCheckpointBody(bad), CheckpointError);
});

test('signed-note key ID = SHA-256(name ‖ 0x0A ‖ 0x01 ‖ key)[:4], line "— name base64(keyID ‖ sig)"', () => {
  const pk = author.publicKey.raw;
  const expected = sha256(new Uint8Array([...new TextEncoder().encode(aOrigin), 0x0a, 0x01, ...pk])).subarray(0, 4);
  assert.deepEqual(noteKeyId(aOrigin, pk), expected);
  const body = checkpointBody({ origin: aOrigin, size: 3, root });
  const note = signNote(body, [signer(author, aOrigin)]);
  const lines = note.split('\n');
  assert.equal(lines[3], '');
  assert.match(lines[4]!, new RegExp(`^\u2014 ${aOrigin.replace(/\//g, '\\/')} [A-Za-z0-9+/]{91}=$`));
  const blob = Buffer.from(lines[4]!.split(' ')[2]!, 'base64');
  assert.deepEqual(new Uint8Array(blob.subarray(0, 4)), expected);
  assert.ok(author.publicKey.verify(new TextEncoder().encode(body), blob.subarray(4)));
  // Ed25519 is deterministic: the note for fixed keys is fixed.
  assert.equal(signNote(body, [signer(author, aOrigin)]), note);
});

test('open and verify: author required, unknown keys ignored, a bad known signature refused', () => {
  const body = checkpointBody({ origin: aOrigin, size: 3, root });
  const note = signNote(body, [signer(author, aOrigin)]);
  assert.deepEqual(openCheckpoint(note).verified, [aOrigin]);
  const stranger = `${note}\u2014 someone-else ${Buffer.alloc(68, 7).toString('base64')}\n`;
  assert.deepEqual(openCheckpoint(stranger).verified, [aOrigin]);
  const onlyWitness = signNote(body, [signer(witness, wOrigin)]);
  assert.throws(() => openCheckpoint(onlyWitness), /not signed by its author/);
  const tampered = note.replace('\n3\n', '\n4\n');
  assert.throws(() => openCheckpoint(tampered), /does not verify/);
  assert.throws(() => parseNote(body), /no signature/);
  assert.throws(() => verifyNote(note.replace('\u2014', '-'), []), /malformed signature line/);
});

test('a witness cosigns after checking the author and consistency with what it cosigned before', () => {
  const leaves = Array.from({ length: 9 }, (_, i) => leafHash(new Uint8Array([i])));
  const r5 = rootFromLeafHashes(leaves.slice(0, 5)), r9 = rootFromLeafHashes(leaves);
  const note9 = signNote(checkpointBody({ origin: aOrigin, size: 9, root: r9 }), [signer(author, aOrigin)]);
  const w = signer(witness, wOrigin);
  const out = cosignCheckpoint(note9, { ...w, previous: { size: 5, root: r5, proof: consistencyProof(leaves, 5) } });
  assert.deepEqual(openCheckpoint(out.note).verified, [aOrigin, wOrigin]);
  assert.equal(noteOfCosignature({ ...out.checkpoint, authorSignature: out.authorSignature, cosignature: out.cosignature }, wOrigin), out.note);
  // A rewritten log: the old root is not a prefix of the new one.
  const forked = [...leaves];
  forked[2] = leafHash(new Uint8Array([99]));
  const bad = signNote(checkpointBody({ origin: aOrigin, size: 9, root: rootFromLeafHashes(forked) }), [signer(author, aOrigin)]);
  assert.throws(() => cosignCheckpoint(bad, { ...w, previous: { size: 5, root: r5, proof: consistencyProof(forked, 5) } }), /not consistent/);
  assert.throws(() => cosignCheckpoint(signNote(checkpointBody({ origin: aOrigin, size: 9, root: r9 }), [w]), w), /not signed by its author/);
});
