import type { ClusterDefinition } from '../cluster/definition.ts';
import { DecodeError } from '../crypto/errors.ts';
import { decodeBody } from '../protocol/messages.ts';
import { checkpointBody, noteOfCosignature, openCheckpoint, originOf, signatureLine, originKey, parseNote } from './checkpoint.ts';
import { AuditError, decodeAuditEntry, decodeSignedEntry, type AuditEntry } from './entry.ts';
import { scanLogFile } from './log-file.ts';
import { equalBytes, inclusionProof, leafHash, rootFromLeafHashes, verifyInclusion } from './merkle.ts';
import { AuditContext, admitEntry, checkViews, decodeLoggedRequest, type AuditReport, type LogInput, type LogView } from './verify.ts';
import { decodeTransactionArgs } from '../policy/tx-policy.ts';
import { slotKey } from '../policy/equivocation.ts';
import { certificateApprovals, decodeApproval } from '../policy/approval.ts';

/**
 * `potluck audit export --session ID`: a self-contained bundle for one signature, in the manner of
 * C2SP tlog-proof: for each log, the entries that concern the session (request, verdict, messages,
 * session ends, signature, the presign session, the key and its DKG transcript, the policy and the
 * earlier approvals at the same nonce that the verdict replay needs), each with its RFC 9162
 * inclusion proof against a tree head of that log, cosigned by the other peers where a cosigned
 * checkpoint covers the entries. `verifyBundle` needs only the cluster definition.
 */
export const BUNDLE_FORMAT = 'potluck-audit-bundle/v1';

export interface BundleEntry { index: number; entry: string; proof: string[] }
export interface BundleLog {
  name: string;
  peer: string;
  size: number;
  root: string;
  /** C2SP signed note of (origin, size, root): the author's and the witnesses' lines; null = unsigned head. */
  checkpoint: string | null;
  entries: BundleEntry[];
}
export interface AuditBundle { format: typeof BUNDLE_FORMAT; cluster: string; session: string; logs: BundleLog[] }

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
const unb64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));

interface Parsed { bytes: Uint8Array; leaf: Uint8Array; entry: AuditEntry | undefined }

function parseLog(l: LogInput): Parsed[] {
  return scanLogFile(l.bytes).records.map((r) => {
    let entry: AuditEntry | undefined;
    try {
      entry = decodeAuditEntry(r.entry);
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
    }
    return { bytes: r.bytes, leaf: leafHash(r.bytes), entry };
  });
}

const sessionOf = (e: AuditEntry): Uint8Array | undefined => (e.record.value as { session?: Uint8Array }).session;

export function exportBundle(logs: readonly LogInput[], sessionId: Uint8Array | string): AuditBundle {
  const sid = typeof sessionId === 'string' ? sessionId.replace(/^0x/, '').toLowerCase() : hex(sessionId);
  const parsed = logs.map(parseLog);
  const all = parsed.flat().map((p) => p.entry).filter((e): e is AuditEntry => e !== undefined);
  const clusterHash = all[0]?.clusterHash;
  if (!clusterHash) throw new AuditError('bundle', 'no decodable entries in the logs');
  // The sessions: the signature and the presign session that produced its presignature.
  const sessions = new Set([sid]);
  for (const e of all) if (e.record.case === 'sessionEnd' && e.record.value.ok && hex(e.record.value.output) === sid) sessions.add(hex(e.record.value.session));
  const request = all.find((e) => e.record.case === 'request' && hex(e.record.value.session) === sid);
  if (!request || request.record.case !== 'request') throw new AuditError('bundle', `no log records a request for session ${sid}`);
  // DKG transcripts of every key the logs hold (the requester's replay reads all its keys): the envelope sessions whose public broadcasts name their dkgSid.
  const dkgSids = new Set(all.flatMap((e) => (e.record.case === 'key' ? [hex(e.record.value.dkgSession)] : [])));
  const dkgSessions = new Set<string>();
  for (const e of all) {
    if (e.record.case !== 'message' || !e.record.value.payload.length) continue;
    try {
      const b = decodeBody(e.record.value.payload);
      if ((b.case === 'keygenReveal' || b.case === 'keygenConfirm') && dkgSids.has(hex(b.value.sessionId))) dkgSessions.add(hex(e.record.value.session));
    } catch {
      /* not ours */
    }
  }
  let slot: string | undefined;
  try {
    const r = decodeLoggedRequest(request.record.value.request);
    if (r.case === 'transaction') {
      const d = decodeTransactionArgs(JSON.parse(r.argsJson));
      if (d.ok) slot = slotKey(d.tx);
    }
  } catch {
    /* the verifier reports it */
  }
  // The approval rounds behind the session's certificate: each approver's verdict and approval (issue 11).
  const rounds = new Set<string>();
  for (const e of all)
    if (e.record.case === 'certificate' && hex(e.record.value.session) === sid)
      try {
        for (const a of certificateApprovals(e.record.value.certificate)) rounds.add(hex(decodeApproval(a).requestId));
      } catch {
        /* the verifier reports it */
      }
  const inRound = (e: AuditEntry): boolean => {
    if (e.record.case === 'verdict') return rounds.has(hex(e.record.value.requestId));
    if (e.record.case !== 'approval') return false;
    try {
      return rounds.has(hex(decodeApproval(e.record.value.approval).requestId));
    } catch {
      return false;
    }
  };
  const slotOf = (bytes: Uint8Array | undefined): string | undefined => {
    try {
      const r = bytes && decodeLoggedRequest(bytes);
      if (!r || r.case !== 'transaction') return undefined;
      const d = decodeTransactionArgs(JSON.parse(r.argsJson));
      return d.ok ? slotKey(d.tx) : undefined;
    } catch {
      return undefined;
    }
  };
  const cosigned = all.filter((e) => e.record.case === 'cosignature');
  const out: BundleLog[] = [];
  parsed.forEach((log, li) => {
    const author = log.find((p) => p.entry)?.entry?.peerId;
    if (!author) return;
    const pick = new Set<number>();
    const reqBytesOf = new Map<string, Uint8Array>(); // session → request bytes (this log)
    log.forEach((p, i) => {
      const e = p.entry;
      if (!e) return;
      const s = sessionOf(e);
      if (e.record.case === 'request') reqBytesOf.set(hex(e.record.value.session), e.record.value.request);
      if (s && (sessions.has(hex(s)) || (e.record.case === 'message' && dkgSessions.has(hex(s)) && e.record.value.payload.length))) pick.add(i);
      if (e.record.case === 'key' || e.record.case === 'policy' || inRound(e)) pick.add(i);
    });
    // Everything that changed this log's record at the same (chainId, from, nonce): approvals claim
    // it, signatures' requests raise its floor, releases free it; the equivocation replay reads them.
    if (slot)
      log.forEach((p, i) => {
        const e = p.entry;
        if (!e) return;
        if (e.record.case === 'verdict' && e.record.value.approve) {
          const bytes = e.record.value.request.length ? e.record.value.request : reqBytesOf.get(hex(e.record.value.session));
          if (slotOf(bytes) === slot) pick.add(i);
        } else if (e.record.case === 'request' && slotOf(e.record.value.request) === slot) pick.add(i);
        else if (e.record.case === 'incident' && e.record.value.kind === 'slot-release') pick.add(i);
      });
    const indices = [...pick].sort((a, b) => a - b);
    if (!indices.length) return;
    // The tree head: the latest cosigned checkpoint of this log (entries after it rest on their own
    // signatures), else the whole log, unsigned.
    const origin = originOf(clusterHash, author);
    const leaves = log.map((p) => p.leaf);
    let size = leaves.length, root = rootFromLeafHashes(leaves), checkpoint: string | null = null;
    const heads = cosigned
      .map((e) => ({ c: e.record.value as { origin: string; size: number; root: Uint8Array; authorSignature: Uint8Array; cosignature: Uint8Array }, witness: e.peerId }))
      .filter(({ c }) => c.origin === origin && c.size > 0 && c.size <= leaves.length && equalBytes(rootFromLeafHashes(leaves.slice(0, c.size)), c.root))
      .sort((a, b) => b.c.size - a.c.size);
    if (heads.length) {
      const best = heads[0]!.c;
      const same = heads.filter(({ c }) => c.size === best.size);
      size = best.size;
      root = best.root;
      const first = noteOfCosignature(best, originOf(clusterHash, same[0]!.witness));
      const extra = same.slice(1).map(({ c, witness }) => {
        const k = originKey(originOf(clusterHash, witness))!;
        return signatureLine(k.name, k.publicKey, c.cosignature);
      });
      checkpoint = first + [...new Set(extra)].join('');
    }
    out.push({
      name: logs[li]!.name, peer: author, size, root: b64(root), checkpoint,
      entries: indices.map((i) => ({ index: i, entry: b64(log[i]!.bytes), proof: i < size ? inclusionProof(leaves.slice(0, size), i).map(b64) : [] })),
    });
  });
  return { format: BUNDLE_FORMAT, cluster: hex(clusterHash), session: sid, logs: out };
}

export const encodeBundle = (b: AuditBundle): string => JSON.stringify(b, null, 1) + '\n';

export function decodeBundle(text: string): AuditBundle {
  let b: AuditBundle;
  try {
    b = JSON.parse(text) as AuditBundle;
  } catch (e) {
    throw new AuditError('bundle', `not JSON: ${(e as Error).message}`);
  }
  const ok = b && b.format === BUNDLE_FORMAT && typeof b.session === 'string' && typeof b.cluster === 'string' && Array.isArray(b.logs)
    && b.logs.every((l) => typeof l.name === 'string' && typeof l.peer === 'string' && Number.isSafeInteger(l.size) && typeof l.root === 'string' && (l.checkpoint === null || typeof l.checkpoint === 'string')
      && Array.isArray(l.entries) && l.entries.every((e) => Number.isSafeInteger(e.index) && typeof e.entry === 'string' && Array.isArray(e.proof) && e.proof.every((p) => typeof p === 'string')));
  if (!ok) throw new AuditError('bundle', `not a ${BUNDLE_FORMAT} bundle`);
  return b;
}

/** Verify a bundle on its own: entry signatures, inclusion in a (cosigned) tree head, and every session check. */
export function verifyBundle(definition: ClusterDefinition, bundle: AuditBundle | string): AuditReport {
  const ctx = new AuditContext(definition);
  let b: AuditBundle;
  try {
    b = typeof bundle === 'string' ? decodeBundle(bundle) : bundle;
  } catch (e) {
    return { ok: false, failures: [e as AuditError], sessions: [], equivocations: [], logs: [], notes: [] };
  }
  if (b.cluster !== hex(ctx.clusterHash)) ctx.failures.push(new AuditError('cluster', `bundle is for cluster ${b.cluster.slice(0, 16)}…, not ${hex(ctx.clusterHash).slice(0, 16)}…`));
  const views: LogView[] = [];
  for (const l of b.logs) {
    const view: LogView = { name: l.name, peer: null, member: null, entries: [], leaves: null };
    const where = { view, seq: null };
    const root = unb64(l.root);
    if (l.checkpoint === null) ctx.notes.push(`log ${l.name}: tree head not cosigned; its entries rest on their own signatures`);
    else
      try {
        const { checkpoint, verified } = openCheckpoint(l.checkpoint);
        if (checkpointBody(checkpoint) !== checkpointBody({ origin: originOf(ctx.clusterHash, l.peer), size: l.size, root })) throw new Error('the note is for another tree head');
        ctx.notes.push(`log ${l.name}: tree head of size ${l.size} signed by ${verified.length} peer(s) (${parseNote(l.checkpoint).signatures.length} lines)`);
      } catch (e) {
        ctx.fail('checkpoint', `log ${l.name}: ${(e as Error).message}`, where);
      }
    for (const be of l.entries) {
      const bytes = unb64(be.entry);
      let rec;
      try {
        rec = decodeSignedEntry(bytes);
      } catch (e) {
        ctx.fail('decode', `record ${be.index}: ${(e as Error).message}`, { view, seq: be.index });
        continue;
      }
      const loc = admitEntry(ctx, view, rec, be.index);
      if (!loc) continue;
      if (loc.seq !== be.index) ctx.fail('seq', `entry with seq ${loc.seq} is presented at index ${be.index}`, loc);
      if (be.index >= l.size) ctx.notes.push(`log ${l.name}: entry ${be.index} is after the tree head (size ${l.size}); it rests on its own signature`);
      else if (!verifyInclusion(leafHash(bytes), be.index, l.size, be.proof.map(unb64), root)) ctx.fail('inclusion', `entry ${be.index} is not in the tree of size ${l.size}`, loc);
      view.entries.push(loc);
    }
    if (view.peer !== null && view.peer !== l.peer) ctx.fail('author', `entries are by ${view.peer}, the bundle names ${l.peer}`, where);
    views.push(view);
  }
  const { sessions, equivocations } = checkViews(ctx, views, [], { focus: b.session });
  if (!sessions.some((s) => s.session === b.session && s.kind === 'signature')) ctx.fail('bundle', `the bundle holds no signing session ${b.session}`);
  return {
    ok: ctx.failures.length === 0, failures: ctx.failures, sessions, equivocations,
    logs: views.map((v, i) => ({ name: v.name, peer: v.peer, org: v.member?.org ?? null, entries: v.entries.length, root: Buffer.from(unb64(b.logs[i]!.root)).toString('hex') })),
    notes: ctx.notes,
  };
}
