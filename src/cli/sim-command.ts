import { recoverAddress, serializeSignature, toHex } from 'viem';
import { systemRng } from '../crypto/random.ts';
import { ethAddress } from '../protocol/sign.ts';
import { keygen, sign } from '../sim/simulator.ts';
import { keygenParallel } from '../sim/parallel.ts';
import { CliError, EXIT } from './errors.ts';
import type { Args } from './config.ts';

/** Uniform random t-subset of 1..n, ascending (CSPRNG, rejection-free Fisher–Yates on bytes). */
export function randomSigners(t: number, n: number): number[] {
  const ids = Array.from({ length: n }, (_, k) => k + 1);
  for (let k = n - 1; k > 0; k--) {
    const bytes = systemRng(4);
    const r = ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0;
    const j = r % (k + 1); // bias ≤ 16/2^32: irrelevant for choosing a test signer set
    [ids[k], ids[j]] = [ids[j]!, ids[k]!];
  }
  return ids.slice(0, t).sort((a, b) => a - b);
}

/**
 * `potluck sim --t T --n N --count K [--json] [--workers]`: DKG then K signatures over random
 * digests, all parties in this process. Every signature is verified by the engine (noble) and
 * recovered again here with viem before it is printed.
 */
export async function simCommand(a: Args): Promise<void> {
  const n = a.num('n')!, t = a.num('t')!, count = a.num('count')!;
  if (t > n) throw new CliError(`${a.origin('t')} must be an integer in 2..${n}, got "${t}"`);
  const log = (o: object, human: string) => console.log(a.flag('json') ? JSON.stringify(o) : human);
  const t0 = performance.now();
  const shares = a.flag('workers') ? await keygenParallel(t, n) : keygen(t, n);
  const any = shares.get(1)!;
  const address = ethAddress(any.publicKey);
  const publicKey = toHex(any.publicKey.toBytes(false));
  log({ kind: 'key', t, n, publicKey, address }, `key ${t}-of-${n}: address ${address} (DKG ${(performance.now() - t0).toFixed(0)} ms)`);
  for (let k = 0; k < count; k++) {
    const signers = randomSigners(t, n);
    const digest = systemRng(32);
    const s0 = performance.now();
    const sig = sign(shares, signers, digest);
    const ms = performance.now() - s0;
    const r = toHex(sig.r, { size: 32 }), s = toHex(sig.s, { size: 32 });
    const recovered = await recoverAddress({ hash: toHex(digest), signature: serializeSignature({ r, s, yParity: sig.yParity }) });
    if (recovered.toLowerCase() !== address) throw new CliError(`signature ${k} recovers to ${recovered}, expected ${address}`, EXIT.failed);
    log({ kind: 'sig', digest: toHex(digest), r, s, yParity: sig.yParity, signers }, `sig ${k + 1}/${count} by parties [${signers.join(',')}] over ${toHex(digest).slice(0, 18)}…: verified, recovers to the key address (${ms.toFixed(0)} ms)`);
  }
}
