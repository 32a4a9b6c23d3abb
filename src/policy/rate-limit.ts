/**
 * Per-client request limits (issue 4 "Policy": `maxRequestsPerMinute`): a token bucket per API
 * client, full at start, holding at most `maxRequestsPerMinute` requests and refilling
 * continuously at that rate. The clock is injected, so the limiter is deterministic under test.
 */
import type { Reason } from './verdict.ts';

export interface ClientLimit {
  name: string;
  maxRequestsPerMinute: number;
}

/** One request costs this many units; a client refills `maxRequestsPerMinute` units per ms. Integer maths for integer clocks. */
const UNITS_PER_REQUEST = 60_000;

interface Bucket {
  rate: number;
  units: number;
  at: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly now: () => number;

  /** `now` in milliseconds (default `Date.now`). */
  constructor(clients: readonly ClientLimit[], opts: { now?: () => number } = {}) {
    this.now = opts.now ?? Date.now;
    const t = this.now();
    for (const c of clients) {
      if (!Number.isInteger(c.maxRequestsPerMinute) || c.maxRequestsPerMinute < 1) throw new RangeError(`client ${c.name}: maxRequestsPerMinute must be a whole number ≥ 1`);
      this.buckets.set(c.name, { rate: c.maxRequestsPerMinute, units: c.maxRequestsPerMinute * UNITS_PER_REQUEST, at: t });
    }
  }

  private refill(b: Bucket): void {
    const t = this.now();
    // A clock that steps back refills nothing; a full minute refills everything.
    const elapsed = Math.min(Math.max(t - b.at, 0), UNITS_PER_REQUEST);
    b.units = Math.min(b.units + elapsed * b.rate, b.rate * UNITS_PER_REQUEST);
    b.at = Math.max(t, b.at);
  }

  /** The 'rate-limit' rule: takes one request from the client's bucket, or refuses (and takes nothing). Unknown clients are refused. */
  take(client: string): Reason {
    const b = this.buckets.get(client);
    if (!b) return { rule: 'rate-limit', ok: false, detail: `client ${JSON.stringify(client.slice(0, 64))} is not in the policy` };
    this.refill(b);
    if (b.units < UNITS_PER_REQUEST) return { rule: 'rate-limit', ok: false, detail: `client ${client} exceeded ${b.rate} requests per minute` };
    b.units -= UNITS_PER_REQUEST;
    return { rule: 'rate-limit', ok: true, detail: `client ${client}: ${Math.floor(b.units / UNITS_PER_REQUEST)} of ${b.rate} requests per minute left` };
  }

  /** Milliseconds until `client` may send one more request (0: now); for HTTP Retry-After. Infinity for unknown clients. */
  retryAfterMs(client: string): number {
    const b = this.buckets.get(client);
    if (!b) return Number.POSITIVE_INFINITY;
    this.refill(b);
    return b.units >= UNITS_PER_REQUEST ? 0 : Math.ceil((UNITS_PER_REQUEST - b.units) / b.rate);
  }
}
