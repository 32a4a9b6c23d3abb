/**
 * Replay detection for signed envelopes (spec §4.3.7), in bounded memory (issue 11).
 *
 * Every envelope carries the sender's sequence number. A SessionHost numbers every envelope it
 * seals from one counter that starts at its start time × 1024 (`SessionHost.seq`), so a sender's
 * numbers are unique across all its sessions and grow over time, also across restarts. The guard
 * therefore remembers (sender, seq) pairs, not sessions: a session that never ran here costs the
 * same as one that did, and nothing has to be forgotten by hand.
 *
 * Memory is bounded per sender: a pair is remembered for `ttlMs` after it arrived, and at most
 * `perSender` pairs are kept, the oldest arrivals evicted first. Whatever is evicted raises the
 * sender's floor to the highest evicted seq, and anything at or below the floor is refused: an
 * old envelope replayed after its pair was forgotten is still refused.
 *
 * Why this never refuses a legitimate frame: a pair evicted by age arrived more than `ttlMs` ago,
 * so every envelope the sender numbered below it was sealed more than `ttlMs` ago; no frame lives
 * that long (the mesh drops frames past their session's deadline, and the ceremonies refuse a
 * timeout longer than `MAX_FRAME_LIFETIME_MS`). Eviction by count can raise the floor sooner, but
 * only for a sender that sent `perSender` envelopes within the window: at 100 envelopes a second
 * (far beyond what a 2-core peer signs) the default keeps the last 5 minutes.
 */
export type ReplayRefusal = 'replay' | 'below-window';

/** Remembered (sender, seq) pairs expire this long after they arrived: 1 h. */
export const REPLAY_TTL_MS = 60 * 60_000;
/**
 * No frame may live longer than this (session deadlines, control expiries, ceremony timeouts):
 * half the replay window, so a resent frame always finds its pair remembered or never seen.
 */
export const MAX_FRAME_LIFETIME_MS = REPLAY_TTL_MS / 2;
/**
 * Pairs remembered per sender: 32,768. A pair costs about 60 bytes of V8 heap (a Map entry with
 * two heap numbers), so a sender can pin at most ~2 MiB here, and 16 members (the cluster
 * maximum) ~32 MiB.
 */
export const REPLAY_PAIRS_PER_SENDER = 32_768;

export interface ReplayGuardOptions {
  ttlMs?: number;
  perSender?: number;
  /** Clock in ms (default Date.now; tests). */
  now?: () => number;
}

interface SenderWindow {
  /** seq → arrival time, in arrival order (a Map keeps insertion order). */
  seen: Map<number, number>;
  /** Highest seq ever evicted; -1 before the first eviction. */
  floor: number;
}

export class ReplayGuard {
  private readonly senders = new Map<number, SenderWindow>();
  private readonly ttlMs: number;
  private readonly perSender: number;
  private readonly now: () => number;

  constructor(opts: ReplayGuardOptions = {}) {
    this.ttlMs = opts.ttlMs ?? REPLAY_TTL_MS;
    this.perSender = opts.perSender ?? REPLAY_PAIRS_PER_SENDER;
    this.now = opts.now ?? Date.now;
  }

  /**
   * Record (from, seq) if it is fresh; otherwise say why not. `from` must be authenticated
   * (checked after the signature), so only members get a window.
   */
  check(from: number, seq: number): ReplayRefusal | undefined {
    let w = this.senders.get(from);
    if (!w) this.senders.set(from, (w = { seen: new Map(), floor: -1 }));
    const now = this.now();
    this.expire(w, now);
    if (seq <= w.floor) return 'below-window';
    if (w.seen.has(seq)) return 'replay';
    w.seen.set(seq, now);
    if (w.seen.size > this.perSender) this.evictOldest(w);
    return undefined;
  }

  /** The lowest seq still accepted from `from`, minus one (-1: nothing evicted yet). */
  floorOf(from: number): number {
    return this.senders.get(from)?.floor ?? -1;
  }

  /** Sizes, for tests and status: the guard's memory is `pairs` entries. */
  stats(): { senders: number; pairs: number; maxPairsPerSender: number } {
    let pairs = 0, max = 0;
    for (const w of this.senders.values()) {
      pairs += w.seen.size;
      max = Math.max(max, w.seen.size);
    }
    return { senders: this.senders.size, pairs, maxPairsPerSender: max };
  }

  /** Drop pairs older than the window (amortized O(1): arrivals are in time order). */
  private expire(w: SenderWindow, now: number): void {
    for (const [seq, at] of w.seen) {
      if (now - at <= this.ttlMs) break;
      w.seen.delete(seq);
      if (seq > w.floor) w.floor = seq;
    }
  }

  private evictOldest(w: SenderWindow): void {
    const first = w.seen.keys().next();
    if (first.done) return;
    w.seen.delete(first.value);
    if (first.value > w.floor) w.floor = first.value;
  }
}
