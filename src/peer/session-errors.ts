/** How a session run by the session host can end besides a ProtocolError: silence, or a decline. */
import type { Member } from '../cluster/members.ts';

export class SessionTimeoutError extends Error {
  override readonly name = 'SessionTimeoutError';
  readonly waitingFor: Member[];
  constructor(what: string, round: number, rounds: number, waitingFor: Member[]) {
    super(`${what} timed out in round ${round}/${rounds} waiting for: ${waitingFor.map((m) => `${m.org} (${m.peerId})`).join(', ') || 'nobody (local delay)'}`);
    this.waitingFor = waitingFor;
  }
}

export class DeclinedError extends Error {
  override readonly name = 'DeclinedError';
  readonly member: Member;
  /** The decliner's own words, e.g. its policy's refusal (issue 4). */
  readonly reason: string;
  /** The decliner's machine-readable reason (control `Decision.code`; issue 11). */
  readonly code: string;
  constructor(what: string, member: Member, reason: string, code = '') {
    super(`${member.org} declined ${what}: ${reason}`);
    this.member = member;
    this.reason = reason;
    this.code = code;
  }
}
