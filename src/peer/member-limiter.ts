/**
 * Requests accepted per minute from each other member org (issue 11: approvals and sign
 * proposals, counted apart), at the policy's `memberRequestsPerMinute`. A token bucket per org
 * (policy/rate-limit.ts), rebuilt when a policy reload changes the rate.
 */
import type { Member } from '../cluster/members.ts';
import { RateLimiter } from '../policy/rate-limit.ts';

export class MemberLimiter {
  private readonly orgs: string[];
  private readonly rateOf: () => number;
  private rate = -1;
  private limiter: RateLimiter | undefined;
  private readonly told = new Map<string, number>();

  constructor(members: readonly Member[], self: Member, rateOf: () => number) {
    this.orgs = [...new Set(members.filter((m) => m !== self).map((m) => m.org))];
    this.rateOf = rateOf;
  }

  /** The rate in force (requests per minute). */
  get perMinute(): number {
    return this.rate;
  }

  /** Take one request from `org`'s bucket; false if it is empty. */
  take(org: string): boolean {
    const rate = Math.max(1, this.rateOf());
    if (rate !== this.rate || !this.limiter) {
      this.rate = rate;
      this.limiter = new RateLimiter(this.orgs.map((name) => ({ name, maxRequestsPerMinute: rate })));
    }
    return this.limiter.take(org).ok;
  }

  /**
   * Whether to tell `org` it is over its rate now: once a second at most. The rest is dropped
   * unanswered, so a flood costs no reply (a sealed, queued control message) per request.
   */
  tellOverRate(org: string, now = Date.now()): boolean {
    if (now - (this.told.get(org) ?? 0) < 1000) return false;
    this.told.set(org, now);
    return true;
  }
}
