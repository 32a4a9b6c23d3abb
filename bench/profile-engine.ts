/**
 * Profile helper (not a test): one t-of-n keygen and K presign + online rounds, all parties on one
 * thread. Run: node --import tsx --cpu-prof --cpu-prof-dir=/tmp/prof bench/profile-engine.ts
 * Env: PROFILE_SIZE="3-5", PROFILE_SIGS=20, PROFILE_PHASE=all|dkg|sign.
 */
import { systemRng } from '../src/crypto/random.ts';
import { keygen, runOnline, runPresign } from '../src/sim/simulator.ts';

const [t, n] = (process.env.PROFILE_SIZE ?? '3-5').split('-').map(Number) as [number, number];
const K = Number(process.env.PROFILE_SIGS ?? 20);
const phase = process.env.PROFILE_PHASE ?? 'all';
let a = performance.now();
const shares = keygen(t, n);
console.log(`keygen ${t}-of-${n}: ${(performance.now() - a).toFixed(0)} ms`);
if (phase !== 'dkg') {
  const T = Array.from({ length: t }, (_, k) => k + 1);
  a = performance.now();
  for (let k = 0; k < K; k++) runOnline(runPresign(shares, T).outputs, systemRng(32));
  console.log(`${K} × presign + online: ${((performance.now() - a) / K).toFixed(1)} ms each`);
}
