import type { Logger } from 'pino';
import pLimit from 'p-limit';
import { bytesToHex, concat, hexToBytes, isAddressEqual, isHex, numberToHex, recoverTransactionAddress, type Address, type Hex } from 'viem';
import { RPC_ERRORS, RpcError, type CallContext, type Readiness, type SigningBackend } from '../api/backend.ts';
import { BLOB_SIZE, blobVersionedHash } from '../policy/blobs.ts';
import { signedTransaction } from '../policy/tx-policy.ts';
import { SignError, type Daemon, type SignResult } from './daemon.ts';
import { encodeSigningRequest, type SigningRequest } from './signing-request.ts';
import type { Verdict } from '../policy/verdict.ts';
import type { SignMethod, SignMetrics, SignOutcome } from './peer-metrics.ts';

/**
 * The API's backend (issue 4): turns a JSON-RPC call into a signing request, runs this org's
 * policy on it (requester side), asks the daemon for a threshold signature, checks the result
 * recovers to the cluster address (security rule: verify before returning), and maps every
 * refusal to op-signer's error codes with a message naming the rule.
 */
export interface SigningServiceOptions {
  version: string;
  log: Logger;
  /**
   * Signing requests running at once; the rest wait in a queue (default 6). Presigning is CPU
   * bound, so more at once only stretches every session towards its deadline (docs/performance.md).
   */
  maxConcurrent?: number;
  /** Requests waiting beyond this are refused as busy (default 1024). */
  maxQueued?: number;
  /** Blobs handed over by `potluck_provideBlobs` are kept this long (default 15 min). */
  blobTtlMs?: number;
  /** And at most this many (default 96 = 12 MiB). */
  maxCachedBlobs?: number;
}

interface CachedBlob {
  blob: Uint8Array;
  expires: number;
}

export class SigningService implements SigningBackend {
  readonly version: string;
  private readonly daemon: Daemon;
  private readonly opts: SigningServiceOptions;
  private readonly limit: ReturnType<typeof pLimit>;
  private readonly blobs = new Map<string, CachedBlob>();
  /** Sign latency by method and outcome (issue 6); set by the signing API's metrics. */
  metrics?: SignMetrics;

  constructor(daemon: Daemon, opts: SigningServiceOptions) {
    this.daemon = daemon;
    this.opts = opts;
    this.version = opts.version;
    this.limit = pLimit(opts.maxConcurrent ?? 6);
  }

  isClient(name: string): boolean {
    return this.daemon.policy.isClient(name);
  }

  readiness(): Readiness {
    return this.daemon.readiness();
  }

  signTransaction(args: unknown, ctx: CallContext): Promise<Hex> {
    return this.timed('eth_signTransaction', () => this.signTx(args, ctx));
  }

  signBlockPayload(args: unknown, version: 1 | 2, ctx: CallContext): Promise<Hex> {
    return this.timed(version === 2 ? 'opsigner_signBlockPayloadV2' : 'opsigner_signBlockPayload', () => this.signBlock(args, version, ctx));
  }

  /** The admin socket's `potluck sign <digest>`: allowed only where every signing org's policy says rawDigests. */
  signDigest(keyId: string | undefined, digest: Uint8Array): Promise<SignResult> {
    return this.timed('admin_sign', () => this.signRaw(keyId, digest));
  }

  /** From the call to the signature or the refusal, whatever the outcome. */
  private async timed<T>(method: SignMethod, f: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    let outcome: SignOutcome = 'error';
    try {
      const out = await f();
      outcome = 'signed';
      return out;
    } catch (e) {
      outcome = outcomeOf(e);
      throw e;
    } finally {
      this.metrics?.signed(method, outcome, (performance.now() - t0) / 1000);
    }
  }

  private async signTx(args: unknown, ctx: CallContext): Promise<Hex> {
    const hashes = isRecord(args) && Array.isArray(args.blobVersionedHashes) ? args.blobVersionedHashes : [];
    const blobs = this.cachedBlobs(hashes);
    const request: SigningRequest = { client: ctx.client, body: { case: 'transaction', argsJson: JSON.stringify(args), blobs } };
    const { digest, from, verdict } = this.approve(request, 'transaction', () => (isRecord(args) && typeof args.from === 'string' ? args.from : undefined));
    const keyId = this.daemon.keyIdFor(from)!;
    const sig = await this.run(request, keyId, digest, 'transaction', verdict);
    const raw = signedTransaction(args, sig);
    const recovered = await recoverTransactionAddress({ serializedTransaction: raw as Parameters<typeof recoverTransactionAddress>[0]['serializedTransaction'] });
    if (!isAddressEqual(recovered, from as Address)) throw new RpcError(RPC_ERRORS.internal, `signed transaction recovers to ${recovered}, not ${from}; nothing returned`);
    return raw;
  }

  private async signBlock(args: unknown, version: 1 | 2, ctx: CallContext): Promise<Hex> {
    const request: SigningRequest = { client: ctx.client, body: { case: 'blockPayload', argsJson: JSON.stringify(args), argsVersion: version } };
    const { digest, from, verdict } = this.approve(request, 'blockPayload', () => undefined);
    const sig = await this.run(request, this.daemon.keyIdFor(from)!, digest, 'blockPayload', verdict);
    // op-service returns crypto.Sign's [R ‖ S ‖ V] with V ∈ {0, 1} (system-anchors §1.3).
    return concat([sig.r, sig.s, numberToHex(sig.yParity, { size: 1 })]);
  }

  /** The blob extension: the batcher hands over its blobs before `eth_signTransaction`; we keep them by versioned hash. */
  async provideBlobs(blobs: unknown, _ctx: CallContext): Promise<Hex[]> {
    if (!Array.isArray(blobs) || blobs.length === 0) throw new RpcError(RPC_ERRORS.invalidParams, 'params[0] must be a non-empty array of blobs (0x-hex, 131072 bytes each)');
    const max = this.opts.maxCachedBlobs ?? 96;
    if (blobs.length > 16) throw new RpcError(RPC_ERRORS.invalidParams, `${blobs.length} blobs in one call; at most 16`);
    const decoded = blobs.map((b, i) => {
      if (typeof b !== 'string' || !isHex(b, { strict: true }) || b.length !== 2 + 2 * BLOB_SIZE) throw new RpcError(RPC_ERRORS.invalidParams, `blob ${i} is not 0x-hex of ${BLOB_SIZE} bytes`);
      return hexToBytes(b);
    });
    const now = Date.now();
    for (const [h, c] of this.blobs) if (c.expires < now) this.blobs.delete(h);
    const out: Hex[] = [];
    for (const [i, blob] of decoded.entries()) {
      let h: Hex;
      try {
        h = blobVersionedHash(blob);
      } catch (e) {
        throw new RpcError(RPC_ERRORS.invalidParams, `blob ${i}: ${(e as Error).message}`);
      }
      this.blobs.delete(h);
      this.blobs.set(h, { blob, expires: now + (this.opts.blobTtlMs ?? 15 * 60_000) });
      while (this.blobs.size > max) this.blobs.delete(this.blobs.keys().next().value!);
      out.push(h);
    }
    return out;
  }

  private async signRaw(keyId: string | undefined, digest: Uint8Array): Promise<SignResult> {
    const request: SigningRequest = { client: 'admin', body: { case: 'rawDigest', digest } };
    const ev = this.daemon.policy.evaluate({ request, role: 'requester', requesterOrg: this.daemon.self.org, keyAddresses: this.daemon.keyAddresses() });
    const bytes = encodeSigningRequest(request);
    if (ev.refusal) {
      if (ev.refusal.rule !== 'rate-limit') this.daemon.audit.verdict({ digest, verdict: ev.verdict, request: bytes, sync: false, role: 'requester' });
      throw new SignError('bad-request', `policy refused (${ev.refusal.rule}): ${ev.refusal.detail}`);
    }
    return this.daemon.sign(keyId, digest, bytes, ev.verdict);
  }

  private cachedBlobs(hashes: unknown[]): Uint8Array[] {
    const found = hashes.map((h) => (typeof h === 'string' ? this.blobs.get(h.toLowerCase()) : undefined));
    if (!found.length || found.some((c) => !c || c.expires < Date.now())) return [];
    return found.map((c) => c!.blob);
  }

  /** Requester-side policy; throws RpcError with the first refusing rule. Returns the digest and the key's address. */
  private approve(request: SigningRequest, kind: 'transaction' | 'blockPayload', fromOf: () => string | undefined): { digest: Uint8Array; from: string; verdict: Verdict } {
    const keyAddresses = this.daemon.keyAddresses();
    if (!keyAddresses.length) throw new RpcError(RPC_ERRORS.unavailable, 'this peer holds no key yet (run potluck keygen)');
    const ev = this.daemon.policy.evaluate({ request, role: 'requester', requesterOrg: this.daemon.self.org, keyAddresses, threshold: this.daemon.threshold() });
    if (ev.refusal) {
      // Refused by this org: no session, so the verdict carries the request itself (issue 5). Not
      // fsync'd, and nothing at all for a client over its rate: a flood of refusals costs no disk.
      if (ev.refusal.rule !== 'rate-limit') this.daemon.audit.verdict({ ...(ev.digest ? { digest: ev.digest } : {}), verdict: ev.verdict, request: encodeSigningRequest(request), sync: false, role: 'requester' });
      throw new RpcError(ev.refusal.code, `${ev.refusal.rule}: ${ev.refusal.detail}`, { reasons: ev.verdict.reasons });
    }
    const wanted = fromOf();
    const from = wanted !== undefined ? keyAddresses.find((a) => a.toLowerCase() === wanted.toLowerCase()) : keyAddresses[0];
    if (!from || !ev.digest) throw new RpcError(kind === 'transaction' ? RPC_ERRORS.invalidTransaction : RPC_ERRORS.invalidBlockPayload, `unexpected from address ${wanted}`);
    return { digest: ev.digest, from, verdict: ev.verdict };
  }

  private async run(request: SigningRequest, keyId: string, digest: Uint8Array, kind: 'transaction' | 'blockPayload', verdict: Verdict): Promise<{ r: Hex; s: Hex; yParity: 0 | 1 }> {
    if (this.limit.pendingCount >= (this.opts.maxQueued ?? 1024)) throw new RpcError(RPC_ERRORS.unavailable, `busy: ${this.limit.pendingCount} signing requests are queued`);
    try {
      const res = await this.limit(() => this.daemon.sign(keyId, digest, encodeSigningRequest(request), verdict));
      this.opts.log.info({ client: request.client, kind, digest: bytesToHex(digest), session: res.session, signers: res.signers.map((s) => s.org), ms: res.ms, presignature: res.presignature }, 'signed');
      return { r: res.r as Hex, s: res.s as Hex, yParity: res.yParity };
    } catch (e) {
      if (!(e instanceof SignError)) throw e;
      const refused = e.declines.filter((d) => d.code === 'policy');
      if (refused.length) {
        const code = kind === 'transaction' ? RPC_ERRORS.unauthorizedTransaction : RPC_ERRORS.unauthorizedBlockPayload;
        throw new RpcError(code, `refused by ${refused.map((d) => `${d.org}: ${d.reason}`).join('; ')}`, { declines: e.declines });
      }
      throw new RpcError(RPC_ERRORS.unavailable, e.message, { declines: e.declines });
    }
  }
}

/** op-signer's policy codes (-32010…-32013) and "policy refused" are refusals; -32000 and no quorum are unavailability. */
function outcomeOf(e: unknown): SignOutcome {
  if (e instanceof RpcError) {
    if (e.code === RPC_ERRORS.unavailable) return 'unavailable';
    return ([RPC_ERRORS.invalidTransaction, RPC_ERRORS.unauthorizedTransaction, RPC_ERRORS.invalidBlockPayload, RPC_ERRORS.unauthorizedBlockPayload] as number[]).includes(e.code) ? 'refused' : 'error';
  }
  if (e instanceof SignError) {
    if (e.message.startsWith('policy refused') || e.declines.some((d) => d.code === 'policy')) return 'refused';
    return e.code === 'no-quorum' || e.code === 'failed' || e.code === 'withheld' ? 'unavailable' : 'error';
  }
  return 'error';
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
