/**
 * A consortium with one hostile member, for test/system/hostile-member.test.ts (issue 11): the
 * honest orgs are real `potluck start` processes (TLS API, policy, --l1-rpc); the hostile org runs
 * a Daemon in this process with a valid identity and share, and the test drives it: it asks for
 * approvals of whatever it likes, approves anything itself, proposes presignatures with crafted
 * certificates, co-signs anything, and floods. Nothing here is production code.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadIdentity } from '../../src/cluster/identity.ts';
import { sealEnvelope } from '../../src/net/envelope.ts';
import { join } from 'node:path';
import { pino } from 'pino';
import { bytesToHex, keccak256, numberToHex, serializeTransaction, toHex, type Address, type Hex } from 'viem';
import { RpcClient } from '../../src/api/client.ts';
import { createLocalCa, issueCertificate, writeTlsFiles, type PemPair } from '../../src/api/tls-certs.ts';
import type { Member } from '../../src/cluster/members.ts';
import { decodeApproval, signApproval, subjectOf, type Approval } from '../../src/policy/approval.ts';
import { defaultDevnetPolicy, policyToJson } from '../../src/policy/policy-file.ts';
import { decodeTransactionArgs, toSerializable } from '../../src/policy/transaction-args.ts';
import { OnlineSession, type Signature } from '../../src/protocol/sign.ts';
import { openPresignature } from '../../src/store/presignature-seal.ts';
import type { Control, Decision } from '../../src/peer/control.ts';
import { Daemon } from '../../src/peer/daemon.ts';
import { partiesMap, type LoadedKey } from '../../src/peer/peer-core.ts';
import { decodeSigningRequest, encodeSigningRequest, type SigningRequest } from '../../src/peer/signing-request.ts';
import { calldataFor, sampleChannel } from '../../src/devnet/sample-batch.ts';
import { LocalCluster, type PeerProc } from '../../src/devnet/local-cluster.ts';

export const KEY = 'k';
export const CLIENT = 'batcher';
export const INBOX: Address = '0xff00000000000000000000000000000000000901';

/** Every org's policy: the L1's chain, the inbox, org quorum 2 (1 besides the requester). */
export function writePolicies(c: LocalCluster, chainId: number): void {
  const policy = defaultDevnetPolicy({ chainId, batchInbox: INBOX, quorum: { distinctOrgs: 2, otherOrgs: 1 }, clients: [CLIENT], maxRequestsPerMinute: 6000 });
  for (const p of c.peers) writeFileSync(join(p.home, 'policy.json'), JSON.stringify(policyToJson(policy), null, 2) + '\n');
}

/** A local CA, a server certificate per peer and the batcher's client certificate. */
export async function writeTls(c: LocalCluster, root: string): Promise<{ ca: PemPair; client: PemPair }> {
  const ca = await createLocalCa('hostile test CA');
  const client = await issueCertificate(ca, { commonName: CLIENT, dnsNames: [CLIENT], usage: 'client', days: 2 });
  for (const p of c.peers) {
    const dir = join(p.home, 'tls');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'ca.crt'), ca.certPem);
    writeTlsFiles(dir, 'server', await issueCertificate(ca, { commonName: p.org, dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], usage: 'server', days: 2 }));
  }
  writeTlsFiles(join(root, 'client'), CLIENT, client);
  return { ca, client };
}

export const apiClient = (p: PeerProc, tls: { ca: PemPair; client: PemPair }): RpcClient =>
  new RpcClient({ url: p.started!.api!, ca: tls.ca.certPem, cert: tls.client.certPem, key: tls.client.keyPem, timeoutMs: 30_000 });

/** A calldata batch transaction at `nonce` from the group address, with a distinct channel per `tag`. */
export function batchTx(from: Address, chainId: number, nonce: number, tag: number, fees: { maxFeePerGas?: bigint; maxPriorityFeePerGas?: bigint } = {}): Record<string, unknown> {
  void tag; // each call draws a fresh random channel: distinct content per call
  const channel = sampleChannel({ maxFrameData: 400 });
  return {
    from: from.toLowerCase(), to: INBOX, gas: numberToHex(400_000), gasPrice: null, maxFeePerGas: numberToHex(fees.maxFeePerGas ?? 3_000_000_000n),
    maxPriorityFeePerGas: numberToHex(fees.maxPriorityFeePerGas ?? 1_000_000_000n), value: '0x0', nonce: numberToHex(nonce), data: null,
    input: toHex(calldataFor(channel.frames)), accessList: [], chainId: numberToHex(chainId),
  };
}

export const txRequest = (args: Record<string, unknown>): SigningRequest => ({ client: CLIENT, body: { case: 'transaction', argsJson: JSON.stringify(args), blobs: [] } });

/** What an honest peer's `potluck policy export` shows at a nonce: the content key and floor fees, or null. */
export function recordAt(exported: string, nonce: number): { contentKey: string; maxFeePerGas: string } | null {
  const j = JSON.parse(exported) as { data: { records: { nonce: string; content_key: string; request: { maxFeePerGas: string } }[] }[] };
  const r = j.data.flatMap((g) => g.records).find((x) => x.nonce === String(nonce));
  return r ? { contentKey: r.content_key, maxFeePerGas: r.request.maxFeePerGas } : null;
}

interface Pending {
  approvals: Approval[];
  declines: { org: string; reason: string; code: string }[];
  waiting: Set<number>;
  done: () => void;
}

/**
 * The hostile member. `approveAnything`: answer every approval request with a signed approval,
 * without any policy or record. `coSignAnything`: co-sign every proposal that has a certificate
 * (any), spending the presignature without a fee floor. Declines and approvals meant for its own
 * rounds are collected by `ask`.
 */
export class Mallory {
  readonly daemon: Daemon;
  readonly home: string;
  approveAnything = false;
  coSignAnything = false;
  /** Every frame Mallory sends goes out this many times (replays). */
  copies = 1;
  private readonly rounds = new Map<string, Pending>();
  readonly seenProposals: { from: string; session: string }[] = [];

  private constructor(daemon: Daemon, home: string) {
    this.daemon = daemon;
    this.home = home;
  }

  static async start(home: string, passphrase: string, extra: Partial<Parameters<typeof Daemon.start>[0]> = {}): Promise<Mallory> {
    let m: Mallory | undefined;
    const d = await Daemon.start({
      home, passphrase, log: pino({ level: 'silent' }), poolTarget: 1, checkpointIntervalMs: 1000, ...extra,
      intercept: (from, session, c) => m?.intercept(from, session, c) ?? false,
      meshFault: (_peer, frame) => Array.from({ length: m?.copies ?? 1 }, () => ({ frame, delayMs: 0 })),
    });
    m = new Mallory(d, home);
    return m;
  }

  get key(): LoadedKey {
    return this.daemon.keys.get(KEY)!;
  }

  member(org: string): Member {
    return this.daemon.members.find((x) => x.org === org)!;
  }

  party(org: string): number {
    return this.key.partyOf.get(this.member(org).index)!;
  }

  /** Mallory's own signed approval of `request`, no questions asked. */
  approval(request: SigningRequest, requestId: Uint8Array): Approval {
    const d = this.daemon;
    return signApproval({ ...subjectOf(request.body, this.key.address), clusterHash: d.clusterHash, approverOrg: d.self.org, approver: d.self.peerId, requestId }, d.identity);
  }

  /** Ask `orgs` to approve `request`; resolves with their approvals and declines once all answered (or 10 s). */
  ask(orgs: string[], request: SigningRequest, requestId = this.daemon.rng(32)): Promise<{ requestId: Uint8Array; approvals: Approval[]; declines: Pending['declines'] }> {
    const bytes = encodeSigningRequest(request);
    return new Promise((resolve) => {
      const p: Pending = { approvals: [], declines: [], waiting: new Set(orgs.map((o) => this.member(o).index)), done: () => {
        clearTimeout(timer);
        this.rounds.delete(bytesToHex(requestId));
        resolve({ requestId, approvals: p.approvals, declines: p.declines });
      } };
      const timer = setTimeout(p.done, 10_000);
      this.rounds.set(bytesToHex(requestId), p);
      for (const o of orgs) this.daemon.host.sendControl(this.member(o).index, requestId, { case: 'approvalRequest', value: { keyId: KEY, requestId, request: bytes } }, Date.now() + 10_000);
    });
  }

  /**
   * Spend one of Mallory's own presignatures with `set` on `request`'s digest under `certificate`;
   * resolves with the signature or the first decline / error.
   */
  async propose(set: number[], request: SigningRequest, certificate: Uint8Array, presignature?: { sigSid: Uint8Array; blob: Uint8Array }): Promise<{ signature?: Signature; refused?: string; presignature: { sigSid: Uint8Array; blob: Uint8Array } }> {
    const d = this.daemon, k = this.key;
    const digest = subjectOf(request.body, k.address).digest;
    const row = presignature ?? (await this.takePresignature(set));
    const proposal = { keyId: KEY, epoch: k.share.epoch, signers: set, presignature: row.sigSid, digest, request: encodeSigningRequest(request), certificate };
    for (const p of set) if (p !== k.share.index) d.host.sendControl(k.memberOf.get(p)!, row.sigSid, { case: 'signProposal', value: proposal }, Date.now() + 8000);
    try {
      const signature = await d.host.run({ id: row.sigSid, protocol: 'dkls23/online/v1', what: 'mallory', machine: new OnlineSession(openPresignature(row.blob, k.poolKey, row.sigSid), digest), parties: partiesMap(k, set), deadline: Date.now() + 8000, rng: d.rng });
      return { signature, presignature: row };
    } catch (e) {
      return { refused: (e as Error).message, presignature: row };
    } finally {
      d.host.forget(row.sigSid);
    }
  }

  /** One of Mallory's presignatures for `set` (from its pool; waits for the refill). */
  async takePresignature(set: number[]): Promise<{ sigSid: Uint8Array; blob: Uint8Array }> {
    const k = this.key;
    for (let i = 0; i < 600; i++) {
      const row = this.daemon.store.takePresignature(KEY, k.share.epoch, set, k.share.index);
      if (row) return row;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`no presignature for set [${set.join(',')}] after 60 s`);
  }

  private intercept(from: Member, session: Uint8Array, c: Control): boolean {
    const round = this.rounds.get(bytesToHex(session));
    if (round && (c.case === 'approval' || c.case === 'decision')) {
      if (c.case === 'approval') {
        // Mallory keeps what it is given; it need not check it.
        round.approvals.push(decodeApproval(c.value));
      } else {
        const d: Decision = c.value;
        round.declines.push({ org: from.org, reason: d.reason, code: d.code });
      }
      round.waiting.delete(from.index);
      if (round.waiting.size === 0) round.done();
      return true;
    }
    if (c.case === 'signProposal') this.seenProposals.push({ from: from.org, session: bytesToHex(session) });
    if (c.case === 'approvalRequest' && this.approveAnything) {
      try {
        const request = decodeSigningRequest(c.value.request);
        const a = this.approval(request, c.value.requestId);
        this.daemon.host.sendControl(from.index, session, { case: 'approval', value: a.bytes }, Date.now() + 10_000);
      } catch {
        /* unparsable: ignore */
      }
      return true;
    }
    if (c.case === 'signProposal' && this.coSignAnything && c.value.certificate.length) {
      const d = this.daemon, k = this.key, p = c.value;
      const row = d.store.getPresignature(p.presignature);
      if (!row || !d.store.markUsed(p.presignature)) return true;
      void d.host.run({ id: session, protocol: 'dkls23/online/v1', what: `mallory co-signs for ${from.org}`, machine: new OnlineSession(openPresignature(row.blob, k.poolKey, p.presignature), p.digest), parties: partiesMap(k, p.signers), deadline: Date.now() + 8000, rng: d.rng })
        .catch(() => undefined).finally(() => d.host.forget(session));
      return true;
    }
    return false;
  }

  /**
   * Flood `orgs` until `end` (ms): every 100 ms, to each, 10 junk sign proposals, 10 junk approval
   * requests and 10 bogus ceremony joins, plus one 1.9 MB envelope for a session nobody runs; every
   * frame sent 5 times (replays). Returns how many messages were sent.
   */
  async flood(orgs: string[], end: number): Promise<number> {
    const d = this.daemon;
    const key = loadIdentity(this.home).key;
    const members = orgs.map((o) => this.member(o));
    const set = [this.party(orgs[0]!), this.key.share.index].sort((a, b) => a - b);
    const big = new Uint8Array(1_900_000).fill(7);
    let sent = 0;
    this.copies = 5;
    try {
      while (Date.now() < end) {
        for (const to of members) {
          const exp = Date.now() + 5000;
          for (let i = 0; i < 10; i++) {
            const sid = d.rng(32);
            d.host.sendControl(to.index, sid, { case: 'signProposal', value: { keyId: KEY, epoch: 0, signers: set, presignature: sid, digest: d.rng(32), request: d.rng(64), certificate: d.rng(100) } }, exp);
            d.host.sendControl(to.index, d.rng(32), { case: 'approvalRequest', value: { keyId: KEY, requestId: d.rng(32), request: d.rng(200) } }, exp);
            d.host.sendControl(to.index, d.rng(32), { case: 'join', value: { kind: 'refresh', keyId: KEY, nonce: d.rng(32), params: d.rng(32) } }, exp);
            sent += 3;
          }
          try {
            d.mesh.send(to.peerId, sealEnvelope({ clusterHash: d.clusterHash, protocol: 'dkls23/presign/v1', session: d.rng(32), from: d.self.index, to: to.index, seq: Date.now() * 1024 + sent++, payload: big }, key), exp);
          } catch {
            /* our own outbound queue is full: the flood goes as fast as the peer reads */
          }
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      this.copies = 1;
    }
    return sent;
  }

  async stop(): Promise<void> {
    await this.daemon.stop();
  }
}

/** Resident set size of a peer process, in MB (Linux /proc). */
export const rssMb = (pid: number): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

/** The digest of a tx args object (what its signature signs). */
export function txDigestOf(args: Record<string, unknown>): Hex {
  const d = decodeTransactionArgs(args);
  if (!d.ok) throw new Error(d.problems.join('; '));
  return keccak256(serializeTransaction(toSerializable(d.tx)));
}
