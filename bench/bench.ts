/**
 * `npm run bench`: DKG and signing cost for 2-of-3, 3-of-5, 5-of-9, 7-of-10 (not a test).
 * All parties run on one thread. "wall" is the total of all parties (≈ their total CPU);
 * "critical path" is the slowest party per round, summed over rounds (compute latency with a
 * zero-delay network). Every signature is verified and its address recovered by the engine.
 * "cpu" is this process's CPU time (process.cpuUsage, user + system) over the same span: on a
 * shared 2-core host it moves far less with other load than wall time does, so before/after
 * comparisons use it. "online per party" is the online cpu divided by t.
 * Options (env): BENCH_SIZES="2-3,3-5" to choose sizes, BENCH_SIGS=K signatures per size.
 */
import { systemRng } from '../src/crypto/random.ts';
import { encodeKeyShare } from '../src/protocol/key-share.ts';
import { criticalPathMs } from '../src/sim/run-machines.ts';
import { SimulationError, keygenRequest, runDealing, runOnline, runPresign } from '../src/sim/simulator.ts';

const sizes = (process.env.BENCH_SIZES ?? '2-3,3-5,5-9,7-10').split(',').map((s) => s.split('-').map(Number) as [number, number]);
const K = Number(process.env.BENCH_SIGS ?? 10);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const sum = (m: Map<number, number>) => [...m.values()].reduce((a, b) => a + b, 0);
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

interface Row {
  size: string; dkgWallMs: number; dkgCriticalMs: number; presignMs: number; presignCriticalMs: number;
  onlineMs: number; onlineCriticalMs: number; fullSignMs: number; fullSignCriticalMs: number;
  sigsPerSec: number; bytesPerSign: number; bytesPerSignPerParty: number; keyShareBytes: number;
  dkgCpuMs: number; presignCpuMs: number; onlineCpuMs: number; onlineCpuPerPartyMs: number; fullSignCpuMs: number;
}
const rows: Row[] = [];
for (const [t, n] of sizes) {
  const d0 = performance.now(), dc0 = cpuMs();
  const dkg = runDealing(keygenRequest(t, n));
  const dkgWallMs = performance.now() - d0, dkgCpuMs = cpuMs() - dc0;
  if (dkg.errors.size) throw new SimulationError('keygen', dkg.errors);
  const shares = new Map([...dkg.outputs].map(([i, o]) => [i, o.share!]));
  const T = Array.from({ length: t }, (_, k) => k + 1);
  // warm-up
  runOnline(runPresign(shares, T).outputs, systemRng(32));
  const pre: number[] = [], preCp: number[] = [], on: number[] = [], onCp: number[] = [], bytes: number[] = [];
  const preCpu: number[] = [], onCpu: number[] = [];
  const s0 = performance.now();
  for (let k = 0; k < K; k++) {
    const a = performance.now(), ac = cpuMs();
    const p = runPresign(shares, T);
    const b = performance.now(), bc = cpuMs();
    if (p.errors.size) throw new SimulationError('presign', p.errors);
    const digest = systemRng(32);
    const b2 = performance.now(), b2c = cpuMs();
    const o = runOnline(p.outputs, digest);
    const c = performance.now(), cc = cpuMs();
    if (o.errors.size || o.outputs.size !== t) throw new SimulationError('sign', o.errors);
    pre.push(b - a); on.push(c - b2);
    preCpu.push(bc - ac); onCpu.push(cc - b2c);
    preCp.push(criticalPathMs(p.stats)); onCp.push(criticalPathMs(o.stats));
    bytes.push(sum(p.stats.bytesSent) + sum(o.stats.bytesSent));
  }
  const total = performance.now() - s0;
  const row: Row = {
    size: `${t}-of-${n}`, dkgWallMs: dkgWallMs, dkgCriticalMs: criticalPathMs(dkg.stats),
    presignMs: median(pre), presignCriticalMs: median(preCp), onlineMs: median(on), onlineCriticalMs: median(onCp),
    fullSignMs: median(pre.map((x, k) => x + on[k]!)), fullSignCriticalMs: median(preCp.map((x, k) => x + onCp[k]!)),
    sigsPerSec: (K * 1000) / total, bytesPerSign: median(bytes), bytesPerSignPerParty: median(bytes) / t,
    keyShareBytes: encodeKeyShare(shares.get(1)!).length,
    dkgCpuMs, presignCpuMs: median(preCpu), onlineCpuMs: median(onCpu), onlineCpuPerPartyMs: median(onCpu) / t,
    fullSignCpuMs: median(preCpu.map((x, k) => x + onCpu[k]!)),
  };
  rows.push(row);
  console.error(`done ${row.size}`);
}

const f = (x: number, d = 1) => x.toFixed(d);
const kb = (b: number) => (b >= 1e6 ? `${f(b / 1e6, 2)} MB` : `${f(b / 1e3, 1)} KB`);
console.log(`\nPotluck DKLs23 engine, all parties on one thread, ${K} signatures per size (medians), node ${process.version}\n`);
console.log('| t-of-n | DKG wall | DKG critical path | presign wall / crit | online wall / crit | full sign wall / crit | sigs/s | bytes per sign (all / per party) | key share |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const r of rows)
  console.log(`| ${r.size} | ${f(r.dkgWallMs / 1000, 2)} s | ${f(r.dkgCriticalMs / 1000, 2)} s | ${f(r.presignMs)} / ${f(r.presignCriticalMs)} ms | ${f(r.onlineMs, 2)} / ${f(r.onlineCriticalMs, 2)} ms | ${f(r.fullSignMs)} / ${f(r.fullSignCriticalMs)} ms | ${f(r.sigsPerSec, 2)} | ${kb(r.bytesPerSign)} / ${kb(r.bytesPerSignPerParty)} | ${kb(r.keyShareBytes)} |`);
console.log('\nCPU time of this process (user + system), same runs:\n');
console.log('| t-of-n | DKG cpu | presign cpu | online cpu (all / per party) | full sign cpu |');
console.log('|---|---|---|---|---|');
for (const r of rows)
  console.log(`| ${r.size} | ${f(r.dkgCpuMs / 1000, 2)} s | ${f(r.presignCpuMs)} ms | ${f(r.onlineCpuMs, 2)} / ${f(r.onlineCpuPerPartyMs, 2)} ms | ${f(r.fullSignCpuMs)} ms |`);
console.log('\n' + JSON.stringify({ bench: 'potluck-engine', node: process.version, signaturesPerSize: K, rows }));
