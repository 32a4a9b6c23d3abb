/** Shared by the cluster and API benches: percentiles and a sustained closed-loop load. */
export const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll `count` once a second until it is positive and stops changing (a refilled pool), at most 2 minutes. */
export async function untilSteady(count: () => Promise<number>): Promise<void> {
  let last = -1;
  for (let i = 0; i < 120; i++) {
    await sleep(1000);
    const n = await count();
    if (n === last && n > 0) return;
    last = n;
  }
}

export interface LoadResult {
  seconds: number;
  concurrency: number;
  signatures: number;
  failed: number;
  perSecond: number;
  /** Failure messages (hex elided) and how often each happened. */
  failures: Record<string, number>;
}

/** `concurrency` clients each call `work(k)` in a loop for `seconds`. */
export async function sustained(concurrency: number, seconds: number, work: (client: number) => Promise<unknown>): Promise<LoadResult> {
  let done = 0, failed = 0;
  const failures = new Map<string, number>();
  const end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async (_, k) => {
    while (performance.now() < end) {
      try {
        await work(k);
        done++;
      } catch (e) {
        failed++;
        const why = (e as Error).message.replace(/0x[0-9a-f]+/g, '0x…').slice(0, 160);
        failures.set(why, (failures.get(why) ?? 0) + 1);
      }
    }
  }));
  const s = (performance.now() - t0) / 1000;
  return { seconds: s, concurrency, signatures: done, failed, perSecond: done / s, failures: Object.fromEntries(failures) };
}
