/**
 * The org policy file, `<home>/policy.json` (issue 4 "Policy"; docs/policy.md "Policy file"):
 * what this org's peer signs or co-signs. Strict: unknown keys are refused and every problem
 * names its field, so a typo never silently widens or narrows the policy. The cluster address is
 * not in the file (it exists only after keygen); `toTxPolicy` adds it.
 */
import { readFileSync } from 'node:fs';
import { getAddress, isAddress, type Address } from 'viem';
import type { TxPolicy } from './tx-policy.ts';
import type { Reason } from './verdict.ts';
import { isObj, JsonProblems, show, type Obj } from './json-problems.ts';

export interface ClientPolicy {
  /** The API client's certificate DNS SAN (op-signer `auth` entry `name`, system-anchors §1.3). */
  name: string;
  maxRequestsPerMinute: number;
}

export interface PolicyFile {
  version: 1;
  transactions: {
    chainIds: number[];
    /** EIP-55 checksummed. */
    batchInbox: Address;
    caps: TxPolicy['caps'];
    allowBlobsWithoutContent: boolean;
  };
  /** null: this org signs no block payloads. */
  blockPayloads: { chainIds: number[] } | null;
  /** This org's own minimum for any signer set it joins (on top of the cluster definition's rule). */
  quorum: { distinctOrgs: number; otherOrgs: number };
  clients: ClientPolicy[];
  /** Allow the admin `potluck sign --digest` path (tests and devnets only: a raw digest has no content to check). */
  rawDigests: boolean;
  /**
   * Issue 11: approve nonce k only within [confirmed, confirmed + nonceWindow] (the L1's confirmed
   * nonce, with `--l1-rpc`), or up to the highest nonce approved + nonceWindow without one.
   */
  nonceWindow: number;
  /** Issue 11: approval requests and sign proposals accepted per minute from each other member org. */
  memberRequestsPerMinute: number;
}

/** Defaults of the optional issue-11 fields: a batcher posts far fewer than 64 pending txs or 20 requests a second. */
export const DEFAULT_NONCE_WINDOW = 64;
export const DEFAULT_MEMBER_REQUESTS_PER_MINUTE = 1200;

/** A policy file that does not validate; `problems` name each field (`transactions.caps.gas: …`). */
export class PolicyFileError extends Error {
  override readonly name = 'PolicyFileError';
  readonly problems: readonly string[];
  constructor(problems: readonly string[], source?: string) {
    super(`${source ? `policy file ${source}` : 'policy'}: ${problems.join('; ')}`);
    this.problems = problems;
  }
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const DECIMAL = /^(?:0|[1-9][0-9]*)$/;
/** A DNS name as it appears in a certificate SAN. */
const DNS_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/;
const MAX_RATE = 1_000_000;

/** The policy file's readers on top of the shared problem collector. */
class Reader extends JsonProblems {
  /** An object with exactly these keys (required ones present, nothing else). */
  object(v: unknown, path: string, required: string[], optional: string[] = []): Obj | undefined {
    if (!isObj(v)) return this.bad(path || '(file)', `must be an object, got ${show(v)}`);
    this.keys(v, path, required, optional);
    return v;
  }
  int(v: unknown, path: string, min: number, max: number): number | undefined {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) return this.bad(path, `must be a whole number in ${min}..${max}, got ${show(v)}`);
    return v;
  }
  bool(v: unknown, path: string): boolean | undefined {
    if (typeof v !== 'boolean') return this.bad(path, `must be true or false, got ${show(v)}`);
    return v;
  }
  /** A decimal string (any size up to `bits`) or a JSON number ≤ 2^53−1. */
  big(v: unknown, path: string, bits: number): bigint | undefined {
    let x: bigint;
    if (typeof v === 'string' && DECIMAL.test(v)) x = BigInt(v);
    else if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) x = BigInt(v);
    else return this.bad(path, `must be a decimal string or a whole number ≤ 2^53-1, got ${show(v)}`);
    if (x >= 1n << BigInt(bits)) return this.bad(path, `exceeds ${bits} bits`);
    return x;
  }
  chainIds(v: unknown, path: string): number[] | undefined {
    if (!Array.isArray(v) || v.length === 0) return this.bad(path, `must be a non-empty array of chain ids, got ${show(v)}`);
    const out = v.map((c: unknown, i) => this.int(c, `${path}[${i}]`, 1, Number.MAX_SAFE_INTEGER));
    v.forEach((c, i) => { if (v.indexOf(c) !== i) this.bad(`${path}[${i}]`, `duplicate chain id ${show(c)}`); });
    return out.every((c) => c !== undefined) ? (out as number[]) : undefined;
  }
}

/** Validates parsed JSON into a `PolicyFile`; throws `PolicyFileError` listing every problem. */
export function parsePolicy(json: unknown, source?: string): PolicyFile {
  const r = new Reader();
  const top = r.object(json, '', ['version', 'transactions', 'quorum'], ['blockPayloads', 'clients', 'rawDigests', 'nonceWindow', 'memberRequestsPerMinute']);
  if (!top) throw new PolicyFileError(r.problems, source);
  if (top.version !== 1) r.bad('version', `must be 1, got ${show(top.version)}`);

  const tx = r.object(top.transactions, 'transactions', ['chainIds', 'batchInbox', 'caps'], ['allowBlobsWithoutContent']);
  const chainIds = tx && r.chainIds(tx.chainIds, 'transactions.chainIds');
  let batchInbox: Address | undefined;
  if (tx && Object.hasOwn(tx, 'batchInbox')) {
    // viem's isAddress checks the EIP-55 checksum of mixed-case input.
    if (typeof tx.batchInbox !== 'string' || !isAddress(tx.batchInbox)) r.bad('transactions.batchInbox', `not an address (0x + 40 hex, valid EIP-55 checksum if mixed case): ${show(tx.batchInbox)}`);
    else batchInbox = getAddress(tx.batchInbox);
  }
  const c = tx && r.object(tx.caps, 'transactions.caps', ['gas', 'maxFeePerGas', 'maxPriorityFeePerGas', 'maxFeePerBlobGas', 'maxBlobs']);
  const caps = c && {
    gas: r.big(c.gas, 'transactions.caps.gas', 64),
    maxFeePerGas: r.big(c.maxFeePerGas, 'transactions.caps.maxFeePerGas', 256),
    maxPriorityFeePerGas: r.big(c.maxPriorityFeePerGas, 'transactions.caps.maxPriorityFeePerGas', 256),
    maxFeePerBlobGas: r.big(c.maxFeePerBlobGas, 'transactions.caps.maxFeePerBlobGas', 256),
    maxBlobs: r.int(c.maxBlobs, 'transactions.caps.maxBlobs', 0, Number.MAX_SAFE_INTEGER),
  };
  const allowBlobs = tx && Object.hasOwn(tx, 'allowBlobsWithoutContent')
    ? r.bool(tx.allowBlobsWithoutContent, 'transactions.allowBlobsWithoutContent') : false;

  let blockPayloads: PolicyFile['blockPayloads'] | undefined = null;
  if (top.blockPayloads !== undefined && top.blockPayloads !== null) {
    const b = r.object(top.blockPayloads, 'blockPayloads', ['chainIds']);
    const ids = b && r.chainIds(b.chainIds, 'blockPayloads.chainIds');
    blockPayloads = ids && { chainIds: ids };
  }

  const q = r.object(top.quorum, 'quorum', ['distinctOrgs', 'otherOrgs']);
  // Same bounds as the cluster definition (at most 16 members, so at most 16 orgs).
  const distinctOrgs = q && r.int(q.distinctOrgs, 'quorum.distinctOrgs', 1, 16);
  const otherOrgs = q && r.int(q.otherOrgs, 'quorum.otherOrgs', 0, distinctOrgs ?? 16);

  let clients: ClientPolicy[] | undefined = [];
  if (top.clients !== undefined) {
    if (!Array.isArray(top.clients)) clients = r.bad('clients', `must be an array, got ${show(top.clients)}`);
    else {
      const seen = new Set<string>();
      clients = top.clients.map((e: unknown, i): ClientPolicy | undefined => {
        const at = `clients[${i}]`;
        const o = r.object(e, at, ['name', 'maxRequestsPerMinute']);
        if (!o) return undefined;
        let name: string | undefined;
        if (typeof o.name !== 'string' || !DNS_NAME.test(o.name)) r.bad(`${at}.name`, `must be a certificate DNS name, got ${show(o.name)}`);
        else if (seen.has(o.name)) r.bad(`${at}.name`, `duplicate client ${show(o.name)}`);
        else seen.add(name = o.name);
        const rate = r.int(o.maxRequestsPerMinute, `${at}.maxRequestsPerMinute`, 1, MAX_RATE);
        return name !== undefined && rate !== undefined ? { name, maxRequestsPerMinute: rate } : undefined;
      }) as ClientPolicy[];
    }
  }
  const rawDigests = top.rawDigests === undefined ? false : r.bool(top.rawDigests, 'rawDigests');
  const nonceWindow = top.nonceWindow === undefined ? DEFAULT_NONCE_WINDOW : r.int(top.nonceWindow, 'nonceWindow', 0, 1_000_000);
  const memberRate = top.memberRequestsPerMinute === undefined ? DEFAULT_MEMBER_REQUESTS_PER_MINUTE : r.int(top.memberRequestsPerMinute, 'memberRequestsPerMinute', 1, MAX_RATE);

  if (r.problems.length > 0) throw new PolicyFileError(r.problems, source);
  return {
    version: 1,
    transactions: { chainIds: chainIds!, batchInbox: batchInbox!, caps: caps as TxPolicy['caps'], allowBlobsWithoutContent: allowBlobs! },
    blockPayloads: blockPayloads!,
    quorum: { distinctOrgs: distinctOrgs!, otherOrgs: otherOrgs! },
    clients: clients!,
    rawDigests: rawDigests!,
    nonceWindow: nonceWindow!,
    memberRequestsPerMinute: memberRate!,
  };
}

/** Reads and validates a policy file; throws `PolicyFileError` (also for an unreadable file or bad JSON). */
export function loadPolicyFile(path: string): PolicyFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new PolicyFileError([`cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`], path);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new PolicyFileError([`not JSON: ${(e as Error).message}`], path);
  }
  return parsePolicy(json, path);
}

/** The JSON form (caps as decimal strings); `parsePolicy(policyToJson(p))` gives `p` back. */
export function policyToJson(p: PolicyFile): Record<string, unknown> {
  const c = p.transactions.caps;
  return {
    version: p.version,
    transactions: {
      chainIds: p.transactions.chainIds,
      batchInbox: p.transactions.batchInbox,
      caps: {
        gas: c.gas.toString(), maxFeePerGas: c.maxFeePerGas.toString(), maxPriorityFeePerGas: c.maxPriorityFeePerGas.toString(),
        maxFeePerBlobGas: c.maxFeePerBlobGas.toString(), maxBlobs: c.maxBlobs,
      },
      allowBlobsWithoutContent: p.transactions.allowBlobsWithoutContent,
    },
    blockPayloads: p.blockPayloads,
    quorum: p.quorum,
    clients: p.clients,
    rawDigests: p.rawDigests,
    nonceWindow: p.nonceWindow,
    memberRequestsPerMinute: p.memberRequestsPerMinute,
  };
}

export interface DevnetPolicyOptions {
  chainId: number;
  batchInbox: string;
  quorum: { distinctOrgs: number; otherOrgs: number };
  /** Client names (certificate DNS SANs), each allowed `maxRequestsPerMinute`. */
  clients: readonly string[];
  maxRequestsPerMinute?: number;
  /** Chain ids whose block payloads are signed; default none. */
  blockPayloadChainIds?: number[];
  allowBlobsWithoutContent?: boolean;
  /** Default true: the devnet keeps the admin digest path of issue 3. */
  rawDigests?: boolean;
  /** Default: the policy file's default (64). */
  nonceWindow?: number;
}

/**
 * A devnet policy: caps far above what a local chain charges (30M gas, 500 gwei fee cap, 50 gwei
 * tip, 100 gwei blob fee, 6 blobs per tx as EIP-7594 allows), validated like a file.
 */
export function defaultDevnetPolicy(o: DevnetPolicyOptions): PolicyFile {
  return parsePolicy({
    version: 1,
    transactions: {
      chainIds: [o.chainId],
      batchInbox: o.batchInbox,
      caps: { gas: '30000000', maxFeePerGas: '500000000000', maxPriorityFeePerGas: '50000000000', maxFeePerBlobGas: '100000000000', maxBlobs: 6 },
      allowBlobsWithoutContent: o.allowBlobsWithoutContent ?? false,
    },
    blockPayloads: o.blockPayloadChainIds ? { chainIds: o.blockPayloadChainIds } : null,
    quorum: o.quorum,
    clients: o.clients.map((name) => ({ name, maxRequestsPerMinute: o.maxRequestsPerMinute ?? 600 })),
    rawDigests: o.rawDigests ?? true,
    ...(o.nonceWindow !== undefined ? { nonceWindow: o.nonceWindow } : {}),
  }, 'defaultDevnetPolicy');
}

/** The `TxPolicy` of tx-policy.ts; `from` is the cluster key's address (known after keygen). */
export function toTxPolicy(p: PolicyFile, from: string): TxPolicy {
  if (!isAddress(from)) throw new PolicyFileError([`from: not an address: ${show(from)}`]);
  const t = p.transactions;
  return { chainIds: t.chainIds, from: getAddress(from), to: t.batchInbox, caps: t.caps, allowBlobsWithoutContent: t.allowBlobsWithoutContent };
}

/**
 * The 'org-quorum' rule: this org joins a signer set only if it spans at least `distinctOrgs`
 * orgs, at least `otherOrgs` of them other than the requester's (the cluster rule of
 * peer/signer-set.ts, with this org's own minimum).
 */
export function quorumReason(p: PolicyFile, set: { signerOrgs: readonly string[]; requesterOrg: string }): Reason {
  const orgs = new Set(set.signerOrgs);
  const others = [...orgs].filter((o) => o !== set.requesterOrg).length;
  const { distinctOrgs, otherOrgs } = p.quorum;
  const failed: string[] = [];
  if (orgs.size < distinctOrgs) failed.push(`signer set spans ${orgs.size} org(s), this org's policy requires at least ${distinctOrgs}`);
  if (others < otherOrgs) failed.push(`signer set has ${others} org(s) besides the requester's (${set.requesterOrg}), this org's policy requires at least ${otherOrgs}`);
  if (failed.length > 0) return { rule: 'org-quorum', ok: false, detail: failed.join('; ') };
  return {
    rule: 'org-quorum', ok: true,
    detail: `signer set spans ${orgs.size} org(s), ${others} besides the requester's (${set.requesterOrg}); policy minimum ${distinctOrgs} and ${otherOrgs}`,
  };
}
