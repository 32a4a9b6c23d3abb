/** A policy verdict: approve only if every evaluated rule passed (issue 4: every verdict carries its reasons). */
export interface Reason {
  rule: string;
  ok: boolean;
  detail: string;
}

export interface Verdict {
  approve: boolean;
  reasons: Reason[];
}

export const verdictOf = (reasons: Reason[]): Verdict => ({
  approve: reasons.length > 0 && reasons.every((r) => r.ok),
  reasons,
});
