/**
 * A graceful shutdown that always ends (issue 12): its steps run in order, and the whole has a
 * deadline. Past it the caller reports which step was still running, which never started, and
 * what the process still holds open, then exits non-zero, instead of waiting forever on a
 * connection or a session that will not close.
 */
export interface ShutdownStep {
  name: string;
  run(): Promise<void> | void;
}

export interface ShutdownResult {
  /** Every step finished (some may have failed) within the deadline. */
  done: boolean;
  /** The step still running at the deadline, then those never started. */
  pending: string[];
  /** Steps that threw, with their message. */
  failed: { step: string; error: string }[];
}

/** Runs `steps` one after another; resolves when all are done or at `deadlineMs`, whichever is first. */
export async function shutdownWithin(steps: ShutdownStep[], deadlineMs: number): Promise<ShutdownResult> {
  const failed: ShutdownResult['failed'] = [];
  let next = 0;
  const all = (async () => {
    for (; next < steps.length; next++) {
      const s = steps[next]!;
      try {
        await s.run();
      } catch (e) {
        failed.push({ step: s.name, error: (e as Error).message });
      }
    }
  })();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<'expired'>((res) => { timer = setTimeout(() => res('expired'), deadlineMs); });
  const outcome = await Promise.race([all.then(() => 'done' as const), expired]);
  clearTimeout(timer);
  return { done: outcome === 'done', pending: outcome === 'done' ? [] : steps.slice(next).map((s) => s.name), failed };
}

/** What keeps the process alive, by kind (Node's own names: TCPSocketWrap, Timeout, PipeWrap, …). */
export function openResources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) counts[r] = (counts[r] ?? 0) + 1;
  return counts;
}
