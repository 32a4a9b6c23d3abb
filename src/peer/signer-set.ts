/**
 * Choosing a signer set under the cluster's org-quorum rule (issue 3): exactly t key holders,
 * the requester among them, at least `distinctOrgs` distinct orgs, of which at least
 * `otherOrgs` differ from the requester's org. Pure; the daemon supplies who is usable.
 */
export interface QuorumRule {
  distinctOrgs: number;
  otherOrgs: number;
}

/** Why `signers` does not satisfy the rule for `requester`, or undefined if it does. */
export function quorumViolation(signers: readonly number[], requester: number, orgOf: (party: number) => string, rule: QuorumRule): string | undefined {
  if (!signers.includes(requester)) return 'the requester is not in the signer set';
  const orgs = new Set(signers.map(orgOf));
  const own = orgOf(requester);
  const others = [...orgs].filter((o) => o !== own).length;
  if (orgs.size < rule.distinctOrgs) return `signer set spans ${orgs.size} orgs, the quorum needs ${rule.distinctOrgs}`;
  if (others < rule.otherOrgs) return `signer set has ${others} orgs besides the requester's (${own}), the quorum needs ${rule.otherOrgs}`;
  return undefined;
}

function* combinations(items: readonly number[], k: number, start = 0, acc: number[] = []): Generator<number[]> {
  if (acc.length === k) {
    yield [...acc];
    return;
  }
  for (let i = start; i <= items.length - (k - acc.length); i++) {
    acc.push(items[i]!);
    yield* combinations(items, k, i + 1, acc);
    acc.pop();
  }
}

/**
 * Every ascending t-set of parties 1..n that contains `self`, uses only `usable` parties and
 * satisfies the rule, in lexicographic order.
 */
export function candidateSets(n: number, t: number, self: number, orgOf: (party: number) => string, rule: QuorumRule, usable: (party: number) => boolean = () => true): number[][] {
  const others = Array.from({ length: n }, (_, k) => k + 1).filter((j) => j !== self && usable(j));
  const out: number[][] = [];
  for (const c of combinations(others, t - 1)) {
    const set = [...c, self].sort((a, b) => a - b);
    if (!quorumViolation(set, self, orgOf, rule)) out.push(set);
  }
  return out;
}
