import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { seededRng, type Rng } from '../../src/crypto/random.ts';
import { DealingSession } from '../../src/protocol/dkg.ts';
import { OnlineSession, PresignSession } from '../../src/protocol/sign.ts';
import type { Outgoing, RoundMachine } from '../../src/protocol/machine.ts';
import { runMachines, type Delivery } from '../../src/sim/run-machines.ts';
import { keygenRequest } from '../../src/sim/simulator.ts';

/**
 * Known-answer test of the whole engine: a seeded 2-of-2 keygen, presign and sign, hashed over
 * every message on the wire and the outputs. It pins the bytes of base OT, the PPRF, the
 * SoftSpokenOT PRG rows and pads, RVOLE and the signature, so that a faster implementation of
 * any primitive (libsecp256k1 multiplications, OpenSSL hashing, batched PRG calls) must give
 * exactly the same transcript. The expected digest was computed before those changes.
 */
function transcript<O>(machines: Map<number, RoundMachine<O>>, label: string, h: ReturnType<typeof sha256.create>): Map<number, O> {
  const rngs = new Map<number, Rng>([...machines.keys()].map((i) => [i, seededRng(`kat/${label}/${i}`)]));
  const tamper = (from: number, msg: Outgoing, recipients: number[]): Delivery[] => {
    h.update(Uint8Array.of(from, msg.to ?? 0)).update(msg.bytes);
    return recipients.map((to) => ({ to, bytes: msg.bytes, broadcast: msg.to === null }));
  };
  const res = runMachines(machines, rngs, tamper);
  assert.equal(res.errors.size, 0, [...res.errors.values()].map((e) => e.message).join('; '));
  return res.outputs;
}

test('seeded 2-of-2 keygen, presign and sign give the pinned transcript', () => {
  const h = sha256.create();
  const req = keygenRequest(2, 2);
  const dkg = transcript(new Map([1, 2].map((i) => [i, new DealingSession(req, i)])), 'dkg', h);
  const shares = new Map([...dkg].map(([i, o]) => [i, o.share!]));
  const pre = transcript(new Map([1, 2].map((i) => [i, new PresignSession(shares.get(i)!, { signers: [1, 2], request: new Uint8Array(0) })])), 'presign', h);
  const digest = sha256(new TextEncoder().encode('potluck transcript kat'));
  const sigs = transcript(new Map([1, 2].map((i) => [i, new OnlineSession(pre.get(i)!, digest)])), 'online', h);
  const sig = sigs.get(1)!;
  assert.equal(shares.get(1)!.publicKey.toHex(true), EXPECTED_PUBLIC_KEY);
  assert.equal(`${sig.r.toString(16)}/${sig.s.toString(16)}/${sig.yParity}`, EXPECTED_SIGNATURE);
  assert.equal(bytesToHex(h.digest()), EXPECTED_TRANSCRIPT);
});

const EXPECTED_PUBLIC_KEY = '030377f0b112de89c9348eb6275068ed47923dd32073593c9a8e8ede47b565f429';
const EXPECTED_SIGNATURE = '30412b924537a9fa54628f1de8237c3569d63bf22e3013eff5d5e67126e459b2/2d62d1743e5702dfcad52d3e646cf35da2b292a675fe34b381834b504ffe7ad8/0';
const EXPECTED_TRANSCRIPT = '515c0f209acdfb35a03a4296a7ec34b860ecfc698dd2ce4a0fd7e96a9085ce37';
