/**
 * `npm run bench` (timing part, also `npm run bench:timing`): a dudect-style check that the code
 * handling secret bits takes the same time whatever the secret (spec §4.3.16). Not a test: timing
 * on a shared machine is noisy, so it never runs in `npm test`.
 *
 * For each function, every measurement times one call (or a small fixed batch of calls, for the
 * fast ones) whose secret comes from one of two classes, chosen at random per measurement:
 * class 0 = one fixed secret, class 1 = a fresh random secret. The fixed secret is all-zero for
 * the choice bits of the OT code, and one fixed random β for the sums (β = 0 would make the sum
 * itself 0, whose reduction is faster for a reason that has nothing to do with selecting). Each
 * measurement gets fresh public inputs, prepared outside the timed region. Welch's t statistic compares the two classes' times, on all
 * measurements and on those below several percentiles (dudect's cropping, which removes the
 * slow tail that interrupts and GC add); the table shows the largest |t|. |t| < 4.5 is the usual
 * threshold for "no leak detected". A control row runs the branching code this replaced, to show
 * that the harness does see a leak when there is one.
 *
 * Env: BENCH_TIMING_RUNS (measurements per function, default 100,000), BENCH_TIMING_ONLY (a
 * comma-separated subset of the names below).
 */
import { randomBytes } from 'node:crypto';
import { hash32 } from '../src/crypto/hash.ts';
import { G, N } from '../src/crypto/scalar-point.ts';
import { seededRng } from '../src/crypto/random.ts';
import { selectPoint } from '../src/ot/endemic-ot.ts';
import { GROUPS, K, LEAVES, SEED_BYTES, XI } from '../src/ot/params.ts';
import { PPRF_GROUP_BYTES, pprfBuild, pprfEvalGroup } from '../src/ot/pprf.ts';
import { gadget, maskedSum, pickScalar } from '../src/mul/rvole.ts';

const RUNS = Number(process.env.BENCH_TIMING_RUNS ?? 100_000);
const ONLY = process.env.BENCH_TIMING_ONLY?.split(',');
const THRESHOLD = 4.5;
const rng = seededRng('bench/timing');
const bitOf = (b: Uint8Array, i: number) => (b[i >>> 3]! >>> (i & 7)) & 1;
const big = (b: Uint8Array) => BigInt('0x' + Buffer.from(b).toString('hex'));

interface Unit {
  name: string;
  what: string;
  /** Calls per measurement. */
  batch: number;
  /** Fresh input for one measurement of class 0 (fixed secret) or 1 (random secret); returns the call. */
  prepare: (cls: 0 | 1) => () => unknown;
}

/** Welch's t for two samples. */
function welch(a: Float64Array, na: number, b: Float64Array, nb: number): number {
  const mean = (x: Float64Array, n: number) => { let s = 0; for (let i = 0; i < n; i++) s += x[i]!; return s / n; };
  const variance = (x: Float64Array, n: number, m: number) => { let s = 0; for (let i = 0; i < n; i++) s += (x[i]! - m) ** 2; return s / (n - 1); };
  const ma = mean(a, na), mb = mean(b, nb);
  const se = Math.sqrt(variance(a, na, ma) / na + variance(b, nb, mb) / nb);
  return se === 0 ? 0 : (ma - mb) / se;
}

interface Result { name: string; what: string; runs: number; batch: number; nsPerCall: [number, number]; tRaw: number; tMax: number; cropAtMax: string; pass: boolean }

function measure(unit: Unit): Result {
  // Fresh inputs for every measurement (prepared outside the timed region), so that the public
  // data has the same distribution in both classes and only the secret differs. Warm up first.
  for (let k = 0; k < Math.min(2000, RUNS / 10); k++) {
    const call = unit.prepare((k & 1) as 0 | 1);
    for (let j = 0; j < unit.batch; j++) call();
  }
  const classes = randomBytes(RUNS);
  const times = new Float64Array(RUNS);
  for (let r = 0; r < RUNS; r++) {
    const call = unit.prepare((classes[r]! & 1) as 0 | 1);
    const t0 = process.hrtime.bigint();
    for (let j = 0; j < unit.batch; j++) call();
    times[r] = Number(process.hrtime.bigint() - t0);
  }
  const sorted = Float64Array.from(times).sort();
  const crops: [string, number][] = [['all', Infinity], ...[50, 75, 90, 95, 99].map((p) => [`< p${p}`, sorted[Math.floor((RUNS * p) / 100)]!] as [string, number])];
  let tMax = 0, cropAtMax = 'all', tRaw = 0;
  const a = new Float64Array(RUNS), b = new Float64Array(RUNS);
  const sums = [0, 0], counts = [0, 0];
  for (const [label, limit] of crops) {
    let na = 0, nb = 0;
    for (let r = 0; r < RUNS; r++) {
      if (times[r]! >= limit) continue;
      if (classes[r]! & 1) b[nb++] = times[r]!;
      else a[na++] = times[r]!;
    }
    if (label === 'all') {
      for (let r = 0; r < RUNS; r++) {
        const c = classes[r]! & 1;
        sums[c] = sums[c]! + times[r]!;
        counts[c] = counts[c]! + 1;
      }
    }
    const t = welch(a, na, b, nb);
    if (label === 'all') tRaw = t;
    if (Math.abs(t) > Math.abs(tMax)) { tMax = t; cropAtMax = label; }
  }
  return {
    name: unit.name, what: unit.what, runs: RUNS, batch: unit.batch,
    nsPerCall: [sums[0]! / counts[0]! / unit.batch, sums[1]! / counts[1]! / unit.batch],
    tRaw, tMax, cropAtMax, pass: Math.abs(tMax) < THRESHOLD,
  };
}

// ---- the functions under test ----

/** One PPRF built once; a call evaluates one random group with E's choice bits of one class. */
function pprfUnit(): Unit {
  const sid = rng(32);
  const keys0 = Array.from({ length: K * GROUPS }, () => rng(32)), keys1 = Array.from({ length: K * GROUPS }, () => rng(32));
  const { message } = pprfBuild(sid, keys0, keys1);
  const out = new Uint8Array(LEAVES * SEED_BYTES);
  return {
    name: 'pprfEvalGroup', what: 'ot/pprf.ts: one group of the all-but-one OT evaluation; secret: E\'s 4 choice bits (fixed 0000, Δ = 15, vs random)', batch: 1,
    prepare: (cls) => {
      // Fresh copies for every call of both classes, so neither class reuses warmer memory.
      const choices = cls === 0 ? new Uint8Array(32) : rng(32);
      const g = rng(1)[0]! % GROUPS;
      const keys: Uint8Array[] = new Array(K * GROUPS);
      for (let i = K * g; i < K * (g + 1); i++) keys[i] = (bitOf(choices, i) ? keys1[i]! : keys0[i]!).slice();
      const msg = message.slice(g * PPRF_GROUP_BYTES, (g + 1) * PPRF_GROUP_BYTES);
      return () => pprfEvalGroup(sid, g, choices, keys, msg, out);
    },
  };
}

/** The base-OT receiver's choice of B_c between two reply points. */
function baseOtUnit(): Unit {
  const points = Array.from({ length: 64 }, (_, k) => G.multiply(BigInt('0x' + Buffer.from(hash32('bench/point', k)).toString('hex')) % N));
  return {
    name: 'selectPoint', what: 'ot/endemic-ot.ts: B_c from the base-OT reply (B_0, B_1); secret: the choice bit c (fixed 0 vs random)', batch: 8,
    prepare: (cls) => {
      const B0 = points[rng(1)[0]! % 64]!, B1 = points[rng(1)[0]! % 64]!;
      const c = cls === 0 ? 0 : rng(1)[0]! & 1;
      return () => selectPoint(c, B0, B1);
    },
  };
}

/** χ = Σ β_c·g_c over the 512 gadget entries. */
function chiUnit(name = 'maskedSum (χ)', aa = false): Unit {
  const g = gadget(rng(32));
  const fixed = rng(XI / 8);
  return {
    name, batch: 1,
    what: aa ? 'A/A check: maskedSum (χ) with a random β in both classes (the noise floor)' : 'mul/rvole.ts: χ = Σ β_c·g_c (RVOLE receiver start); secret: β, 512 bits (one fixed β vs random)',
    prepare: (cls) => {
      const beta = cls === 0 && !aa ? fixed.slice() : rng(XI / 8);
      return () => maskedSum(g, beta);
    },
  };
}

/** The RVOLE receiver's finish: d_1, d_2 as two lanes of one masked sum over the 512 entries. */
function lanesUnit(): Unit {
  const lanes = Array.from({ length: XI }, () => (big(rng(32)) % N) + ((big(rng(32)) % N) << 320n));
  const fixed = rng(XI / 8);
  return {
    name: 'maskedSum (d lanes)', batch: 1,
    what: 'mul/rvole.ts: Σ β_c·(g_c·ã_{c,1} + 2^320·g_c·ã_{c,2}) (RVOLE receiver finish); secret: β (one fixed β vs random)',
    prepare: (cls) => {
      const beta = cls === 0 ? fixed.slice() : rng(XI / 8);
      return () => maskedSum(lanes, beta);
    },
  };
}

/** One entry's μ-check input in the RVOLE receiver's finish: v or v + a (mod n), picked by β_c. */
function muUnit(name = 'pickScalar', aa = false): Unit {
  const out = new Uint8Array(32);
  return {
    name, batch: 8,
    what: aa ? 'A/A check: pickScalar with a random bit in both classes (the noise floor)' : 'mul/rvole.ts: μ-check input of one entry, v or v + a mod n written as 32 bytes (RVOLE receiver finish); secret: β_c (fixed 0 vs random)',
    prepare: (cls) => {
      const bit = cls === 0 && !aa ? 0 : rng(1)[0]! & 1;
      const v = big(rng(32)) % N, va = big(rng(32)) % N;
      return () => pickScalar(bit, v, va, out, 0);
    },
  };
}

/** Control: the χ loop as it was (BigInt × secret bit). Its |t| should be far above 4.5. */
function controlUnit(): Unit {
  const g = gadget(rng(32));
  const before = (beta: Uint8Array) => {
    let chi = 0n;
    for (let c = 0; c < XI; c++) chi += g[c]! * BigInt(bitOf(beta, c));
    return chi % N;
  };
  return {
    name: 'control: Σ g_c·BigInt(β_c)', what: 'the χ loop before this change (not used by the code): must show a leak', batch: 1,
    prepare: (cls) => {
      const beta = cls === 0 ? new Uint8Array(XI / 8) : rng(XI / 8);
      return () => before(beta);
    },
  };
}

const units = [pprfUnit(), baseOtUnit(), chiUnit(), chiUnit('A/A: maskedSum (χ)', true), lanesUnit(), muUnit(), muUnit('A/A: pickScalar', true), controlUnit()].filter((u) => !ONLY || ONLY.includes(u.name));
const results: Result[] = [];
for (const u of units) {
  const t0 = performance.now();
  results.push(measure(u));
  console.error(`done ${u.name} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
}

const f = (x: number, d = 1) => x.toFixed(d);
console.log(`\nTiming of secret-dependent code: Welch's t, class 0 (one fixed secret) vs class 1 (random secrets), ${RUNS} measurements per function, node ${process.version}\n`);
console.log('| function | secret | measurements × calls | ns per call (fixed / random) | \\|t\\| all | max \\|t\\| (crop) | < 4.5 |');
console.log('|---|---|---|---|---|---|---|');
for (const r of results)
  console.log(`| ${r.name} | ${r.what} | ${r.runs} × ${r.batch} | ${f(r.nsPerCall[0], 0)} / ${f(r.nsPerCall[1], 0)} | ${f(Math.abs(r.tRaw), 2)} | ${f(Math.abs(r.tMax), 2)} (${r.cropAtMax}) | ${r.name.startsWith('control') ? (r.pass ? 'no leak seen (!)' : 'leak seen, as expected') : r.pass ? 'yes' : 'NO'} |`);
console.log('\n' + JSON.stringify({ bench: 'potluck-timing', node: process.version, runs: RUNS, threshold: THRESHOLD, results }));
