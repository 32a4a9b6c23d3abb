/**
 * Frames held for one peer at a time, in bounded memory (issue 11): a per-peer budget of frames
 * and bytes, expiry, and oldest-first eviction. The session host keeps three of these: frames that
 * arrived before their session started, control messages to resend on reconnect, and the last
 * flights of finished sessions. Whatever a peer can make us hold is charged to that peer, so a
 * peer that floods only ever evicts its own entries.
 */
export interface Buffered {
  /** The member the entry is charged to. */
  member: number;
  /** Session id (hex), for taking or dropping a session's entries at once. */
  session: string;
  /** Bytes charged (the frame's length). */
  bytes: number;
  /** Dropped at or after this time (ms). */
  expires: number;
}

export interface PeerBudget {
  /** Entries per member. */
  frames: number;
  /** Bytes per member. */
  bytes: number;
}

export interface BufferStats {
  frames: number;
  bytes: number;
  sessions: number;
  /** The fullest member's share, to compare with the budget. */
  maxFramesPerMember: number;
  maxBytesPerMember: number;
  /** Entries evicted to stay within budget (expiry not counted). */
  evicted: number;
}

interface Account<E> {
  entries: Set<E>; // insertion order = oldest first
  bytes: number;
}

export class PeerBuffer<E extends Buffered> {
  readonly budget: PeerBudget;
  private readonly byMember = new Map<number, Account<E>>();
  private readonly bySession = new Map<string, Set<E>>();
  private evicted = 0;

  constructor(budget: PeerBudget) {
    this.budget = budget;
  }

  /**
   * Hold `e`, evicting the member's expired entries and then its oldest ones to make room.
   * Returns false (nothing held) if `e` alone exceeds the byte budget.
   */
  add(e: E, now: number): boolean {
    if (e.bytes > this.budget.bytes) return false;
    let a = this.byMember.get(e.member);
    if (!a) this.byMember.set(e.member, (a = { entries: new Set(), bytes: 0 }));
    if (a.entries.size + 1 > this.budget.frames || a.bytes + e.bytes > this.budget.bytes) {
      for (const old of a.entries) if (old.expires <= now) this.remove(old);
      for (const old of a.entries) {
        if (a.entries.size + 1 <= this.budget.frames && a.bytes + e.bytes <= this.budget.bytes) break;
        this.remove(old);
        this.evicted++;
      }
      this.byMember.set(e.member, a); // emptied accounts are deleted by remove()
    }
    a.entries.add(e);
    a.bytes += e.bytes;
    let s = this.bySession.get(e.session);
    if (!s) this.bySession.set(e.session, (s = new Set()));
    s.add(e);
    return true;
  }

  /** Remove and return a session's live entries, oldest first. */
  take(session: string, now: number): E[] {
    const s = this.bySession.get(session);
    if (!s) return [];
    const out = [...s];
    for (const e of out) this.remove(e);
    return out.filter((e) => e.expires > now);
  }

  /** Drop a session's entries. */
  drop(session: string): void {
    for (const e of [...(this.bySession.get(session) ?? [])]) this.remove(e);
  }

  /** A member's live entries, oldest first. */
  of(member: number, now: number): E[] {
    return [...(this.byMember.get(member)?.entries ?? [])].filter((e) => e.expires > now);
  }

  /** Drop every expired entry: O(entries), so callers run it at most every so often. */
  sweep(now: number): void {
    for (const a of this.byMember.values()) for (const e of a.entries) if (e.expires <= now) this.remove(e);
  }

  stats(): BufferStats {
    let frames = 0, bytes = 0, maxF = 0, maxB = 0;
    for (const a of this.byMember.values()) {
      frames += a.entries.size;
      bytes += a.bytes;
      maxF = Math.max(maxF, a.entries.size);
      maxB = Math.max(maxB, a.bytes);
    }
    return { frames, bytes, sessions: this.bySession.size, maxFramesPerMember: maxF, maxBytesPerMember: maxB, evicted: this.evicted };
  }

  private remove(e: E): void {
    const a = this.byMember.get(e.member);
    if (a?.entries.delete(e)) {
      a.bytes -= e.bytes;
      if (a.entries.size === 0) this.byMember.delete(e.member);
    }
    const s = this.bySession.get(e.session);
    if (s?.delete(e) && s.size === 0) this.bySession.delete(e.session);
  }
}
