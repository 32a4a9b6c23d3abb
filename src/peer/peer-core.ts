/**
 * What every role of a peer shares (issue 11 split the daemon by role: requester, approver,
 * co-signer, presignature pool, pair repair, witness): its place in the cluster, its keys, its
 * store, its session host and logs. The daemon builds one and hands it to each role.
 */
import type { Logger } from 'pino';
import type { ClusterDefinition } from '../cluster/definition.ts';
import type { Member } from '../cluster/members.ts';
import type { Signer } from '../cluster/signing.ts';
import type { Rng } from '../crypto/random.ts';
import type { Mesh, FaultHook } from '../net/mesh.ts';
import type { KeyShare } from '../protocol/key-share.ts';
import type { PeerStore } from '../store/database.ts';
import type { AuditRecorder } from './audit-recorder.ts';
import type { Control, DeclineCode } from './control.ts';
import type { Faults } from './faults.ts';
import type { DaemonMetrics } from './peer-metrics.ts';
import type { RequestPolicy } from './request-policy.ts';
import type { SessionHost } from './session-host.ts';

export interface DaemonOptions {
  home: string;
  passphrase: string;
  log: Logger;
  /** Presignatures this peer keeps ready per likely signer set (it owns them). 0 disables the pool. */
  poolTarget?: number;
  /** Presign sessions this peer starts at once for its pool. */
  poolConcurrency?: number;
  signTimeoutMs?: number;
  presignTimeoutMs?: number;
  /** How long a requester waits for approvals (issue 11; default 5 s). */
  approvalTimeoutMs?: number;
  maxAttempts?: number;
  faults?: Faults;
  meshFault?: FaultHook;
  /** scrypt cost for re-sealing the share after a pair re-setup (default: the vault's). */
  scryptLogN?: number;
  /** How often this peer sends its audit-log checkpoint to the others to co-sign (default 30 s). */
  checkpointIntervalMs?: number;
  /**
   * Proactive refresh (spec §2.11) on a wall-clock schedule: at every multiple of this period
   * (since the Unix epoch) every holder joins a refresh of each key, so all orgs meet without
   * coordination. 0 or absent: refresh only by command.
   */
  refreshEveryMs?: number;
  /** An L1 JSON-RPC URL: the nonce window follows the account's confirmed nonce (issue 11). */
  l1RpcUrl?: string;
  /**
   * Tests only (a hostile member driven by a test): sees every control message before the roles
   * do, and consumes it by returning true. Never set in production.
   */
  intercept?: (from: Member, session: Uint8Array, control: Control) => boolean;
}

export interface LoadedKey {
  /** Replaced after a pair re-setup; sessions already running keep the object they started with. */
  share: KeyShare;
  address: string;
  poolKey: Uint8Array;
  /** key party index → member index, and back. */
  memberOf: Map<number, number>;
  partyOf: Map<number, number>;
}

export interface PeerCore {
  readonly opts: DaemonOptions;
  readonly definition: ClusterDefinition;
  readonly clusterHash: Uint8Array;
  readonly members: readonly Member[];
  readonly self: Member;
  readonly log: Logger;
  readonly rng: Rng;
  readonly store: PeerStore;
  readonly host: SessionHost;
  readonly mesh: Mesh;
  readonly audit: AuditRecorder;
  readonly policy: RequestPolicy;
  readonly keys: ReadonlyMap<string, LoadedKey>;
  /** Signs with this peer's identity key (approvals, checkpoints). */
  readonly identity: Signer;
  readonly metrics: DaemonMetrics | undefined;
  readonly stopping: boolean;
}

export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** The org of a key party. */
export const partyOrg = (core: PeerCore, k: LoadedKey) => (p: number): string => core.host.member(k.memberOf.get(p)!).org;

/** Session party index → member index for a signer set. */
export const partiesMap = (k: LoadedKey, signers: readonly number[]): Map<number, number> => new Map(signers.map((p) => [p, k.memberOf.get(p)!]));

/** The members holding a share of `k`, in key party order. */
export const holdersOf = (core: PeerCore, k: LoadedKey): Member[] => k.share.parties.map((_, i) => core.host.member(k.memberOf.get(i + 1)!));

/** What `decline` needs: a log and a way to send a control message. */
export interface Decliner {
  readonly log: Logger;
  readonly host: Pick<SessionHost, 'sendControl'>;
}

// One warning per member and code a second: a member flooding refused requests must not flood the log.
const lastWarned = new WeakMap<Decliner, Map<string, number>>();

/** Refuse a proposal or approval request; the requester is told why, in words and as a code. */
export function decline(core: Decliner, to: Member, session: Uint8Array, reason: string, code: DeclineCode = ''): void {
  const seen = lastWarned.get(core) ?? new Map<string, number>();
  lastWarned.set(core, seen);
  const key = `${to.index}:${code}`;
  const now = Date.now();
  if (now - (seen.get(key) ?? 0) >= 1000) {
    seen.set(key, now);
    core.log.warn({ peer: to.org, reason, code }, 'declined a request from a member');
  } else core.log.debug({ peer: to.org, reason, code }, 'declined a request from a member');
  // A reason is a rule and its detail; cut to what a Decision may carry (control.ts MAX_REASON_BYTES).
  const text = Buffer.byteLength(reason) > 4000 ? Buffer.from(reason).subarray(0, 4000).toString().replace(/\uFFFD$/, '') + '…' : reason;
  core.host.sendControl(to.index, session, { case: 'decision', value: { session, accept: false, reason: text, code } }, now + 10_000);
}

export const sameSet = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);
