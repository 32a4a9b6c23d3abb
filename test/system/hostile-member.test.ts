import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { parseTransaction, recoverTransactionAddress, type Address, type Hex } from 'viem';
import { RpcCallError } from '../../src/api/client.ts';
import { encodeCertificate, signApproval, subjectOf } from '../../src/policy/approval.ts';
import { fund, l1Client, startL1, type L1Node } from '../../src/devnet/l1-node.ts';
import { LocalCluster, potluck, type PeerProc } from '../../src/devnet/local-cluster.ts';
import { adminCall } from '../../src/peer/admin-api.ts';
import { KEY, Mallory, apiClient, batchTx, recordAt, rssMb, txRequest, writePolicies, writeTls } from './hostile-harness.ts';

/**
 * Issue 11: a malicious member org (valid identity and share, speaks the protocol) can neither
 * stall, fork nor rob the cluster. acme, bravo and coral are honest `potluck start` processes
 * (TLS API, their own policy, the L1's confirmed nonce); mallory's daemon runs in this process and
 * the test drives it. n = 4, t = 2, f = 1: a certificate needs c = 3 approvals. A second 2-of-3
 * cluster with f = 0 (c = 2) shows what is left beyond f: equivocation, which the audit attributes.
 */
const FLOOD_SECONDS = Number(process.env.POTLUCK_FLOOD_SECONDS ?? 60); // issue 11 asks for 60 s; shorter only on request
const PASSPHRASE = 'correct horse battery staple';
const RSS_LIMIT_MB = 400;

let l1: L1Node;
let c: LocalCluster;
let mallory: Mallory;
let tls: Awaited<ReturnType<typeof writeTls>>;
let group: Address;
let acme: PeerProc, bravo: PeerProc, coral: PeerProc;
let A: number, B: number, C: number, M: number;
/** The honest batch at nonce 0 as signed after the bump, posted to the L1 later. */
let bumpedRaw: Hex;
const root = mkdtempSync(join(tmpdir(), 'potluck-hostile-'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const argsOf = (r: ReturnType<typeof txRequest>) => JSON.parse((r.body as { argsJson: string }).argsJson) as Record<string, unknown>;

async function until<T>(what: string, f: () => Promise<T | undefined> | T | undefined, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

let exports = 0;
async function recordsAt(nonce: number): Promise<({ contentKey: string; maxFeePerGas: string } | null)[]> {
  return Promise.all([acme, bravo, coral].map(async (p) => {
    const out = join(root, `${p.org}-records-${exports++}.json`);
    const r = await potluck(['policy', 'export', '--home', p.home, '--out', out], c.env);
    assert.equal(r.code, 0, r.stderr);
    return recordAt(readFileSync(out, 'utf8'), nonce);
  }));
}
const signVia = (p: PeerProc, args: Record<string, unknown>) => apiClient(p, tls).call<Hex>('eth_signTransaction', [args]);
const startHonest = (p: PeerProc) => c.start(p, ['--l1-rpc', l1.rpcUrl, '--checkpoint-interval', '1', '--pool-target', '1']);
const readyz = async (p: PeerProc) => apiClient(p, tls).get('/readyz');
const recovers = async (raw: Hex) => (await recoverTransactionAddress({ serializedTransaction: raw as never })).toLowerCase() === group.toLowerCase();

before(async () => {
  l1 = await startL1({});
  c = await LocalCluster.create({ root, orgs: ['acme', 'bravo', 'coral', 'mallory'], threshold: 2, quorumOrgs: 2, quorumOther: 1, policy: false, passphrase: PASSPHRASE });
  [acme, bravo, coral] = c.peers as [PeerProc, PeerProc, PeerProc];
  writePolicies(c, l1.chainId);
  tls = await writeTls(c, root);
  const kg = await c.keygen(KEY);
  assert.deepEqual(kg.map((r) => r.code), [0, 0, 0, 0], kg.map((r) => r.stderr.slice(-500)).join('\n'));
  await Promise.all([acme, bravo, coral].map(startHonest));
  mallory = await Mallory.start(c.peers[3]!.home, PASSPHRASE, { scryptLogN: 14, l1RpcUrl: l1.rpcUrl });
  [A, B, C, M] = ['acme', 'bravo', 'coral', 'mallory'].map((o) => mallory.party(o)) as [number, number, number, number];
  group = mallory.key.address as Address;
  await fund(l1.rpcUrl, group, 10n ** 20n);
  for (const p of [acme, bravo, coral]) await until(`${p.org} ready`, async () => ((await readyz(p)).status === 200 ? true : undefined));
});

after(async () => {
  await mallory?.stop();
  await c?.stopAll();
  await l1?.stop();
});

describe('n = 4, t = 2, f = 1 (c = 3), one hostile member', () => {
  test('junk proposals, future-nonce claims and a fee-floor raise leave no record; the honest batch and its +10 % bump are signed', async () => {
    const m = mallory;
    // Junk at nonce 0 proposed straight to co-signers: no certificate, a short one, a forged one.
    const junk = txRequest(batchTx(group, l1.chainId, 0, 1));
    const own = m.approval(junk, m.daemon.rng(32));
    const forge = (org: string) => signApproval({ ...subjectOf(junk.body, group), clusterHash: m.daemon.clusterHash, approverOrg: org, approver: m.member(org).peerId, requestId: own.requestId }, m.daemon.identity);
    const attempts: [number[], Uint8Array, RegExp][] = [
      [[B, M], new Uint8Array(0), /approval certificate: none was sent/],
      [[C, M], encodeCertificate([own]), /approval certificate: 1 approvals, 3 needed/],
      [[A, M], encodeCertificate([own, forge('acme'), forge('bravo')]), /approval certificate: the approval by (acme|bravo) is not signed by its identity key/],
    ];
    for (const [set, cert, why] of attempts) {
      const r = await m.propose(set.sort((x, y) => x - y), junk, cert);
      assert.equal(r.signature, undefined);
      assert.match(r.refused!, why);
    }
    // 500 claims far beyond the L1's confirmed nonce 0 + window 64: refused by the window (or the rate), nothing written.
    const far = await Promise.all(Array.from({ length: 500 }, (_, i) => m.ask(['bravo'], txRequest(batchTx(group, l1.chainId, 1000 + i, 2)))));
    assert.equal(far.filter((r) => r.approvals.length).length, 0);
    assert.ok(far.every((r) => ['policy', 'rate-limit', undefined].includes(r.declines[0]?.code)), far.map((r) => r.declines[0]?.code).join(',')); // over the rate: dropped unanswered
    // Which ones get an answer in time depends on the machine's load; every answer names the window.
    const answered = far.flatMap((r, i) => (r.declines[0]?.code === 'policy' ? [[i, r.declines[0].reason] as const] : []));
    assert.ok(answered.length > 0, 'some claims are answered with the window refusal');
    for (const [i, reason] of answered) assert.equal(reason, `policy refused (nonce-window): nonce ${1000 + i} is beyond the L1's confirmed nonce 0 + window 64`);
    assert.deepEqual(await recordsAt(0), [null, null, null], 'no record at nonce 0');
    assert.deepEqual(await recordsAt(1000), [null, null, null], 'no record at nonce 1000');
    // The honest batch at nonce 0 through acme's API: signed, and it recovers to the group address.
    const honest = batchTx(group, l1.chainId, 0, 3);
    assert.ok(await recovers(await signVia(acme, honest)));
    const floor = (await recordsAt(0)).map((r) => r?.maxFeePerGas);
    assert.deepEqual(floor, ['3000000000', '3000000000', '3000000000']);
    // Mallory has the same content approved at the policy's fee caps but never signs it: the floor stays.
    const capped = await m.ask(['acme', 'bravo', 'coral'], txRequest({ ...honest, maxFeePerGas: '0x746a528800', maxPriorityFeePerGas: '0xba43b7400' }));
    assert.equal(capped.approvals.length, 3, 'same content at higher fees is approved');
    assert.deepEqual((await recordsAt(0)).map((r) => r?.maxFeePerGas), floor, 'an approval alone never raises the floor');
    // The batcher's normal +10 % bump is signed.
    const bumped = await signVia(acme, { ...honest, maxFeePerGas: '0xc4b20100', maxPriorityFeePerGas: '0x4190ab00' });
    assert.equal(parseTransaction(bumped as never).maxFeePerGas, 3_300_000_000n);
    assert.ok(await recovers(bumped));
    bumpedRaw = bumped;
  });

  test('two contents at one nonce: at most one is signed, with overlapping or disjoint signer sets', async () => {
    const m = mallory;
    m.approveAnything = true;
    try {
      const X = txRequest(batchTx(group, l1.chainId, 2, 10));
      const Y = txRequest(batchTx(group, l1.chainId, 2, 11));
      // Mallory shows X to acme only and Y to bravo and coral; each honest org approves the first content it sees.
      const x = await m.ask(['acme'], X);
      const y = await m.ask(['bravo', 'coral'], Y);
      assert.deepEqual([x.approvals.length, y.approvals.length], [1, 2]);
      // X with {acme, mallory} (overlapping with Y's approvers in mallory): two approvals, three needed.
      const rx = await m.propose([A, M].sort((a, b) => a - b), X, encodeCertificate([...x.approvals, m.approval(X, x.requestId)]));
      assert.equal(rx.signature, undefined);
      assert.match(rx.refused!, /approval certificate: 2 approvals, 3 needed/);
      // Y with {bravo, mallory}: certified by bravo, coral and mallory.
      const ry = await m.propose([B, M].sort((a, b) => a - b), Y, encodeCertificate([...y.approvals, m.approval(Y, y.requestId)]));
      assert.ok(ry.signature, ry.refused);
      // acme's own client asks for X: bravo and coral refuse it, so no certificate (mallory's approval is not enough).
      await assert.rejects(signVia(acme, argsOf(X)), (e: unknown) => e instanceof RpcCallError && e.code === -32011 && /refused by (bravo|coral): policy refused \(equivocation\): differs from the request approved at .*\/2 in data/.test(e.message));
      // coral's client asks for Y (a set disjoint from acme's, e.g. coral+bravo): the same content is signed again.
      assert.ok(await recovers(await signVia(coral, argsOf(Y))));
      // Whoever asks, X never gets three approvals: only Y exists signed at nonce 2.
      const again = await m.ask(['bravo', 'coral', 'acme'], X);
      assert.deepEqual(again.approvals.map((a) => a.approverOrg), ['acme']);
      const keys = (await recordsAt(2)).map((r) => r?.contentKey);
      assert.equal(keys[1], keys[2], 'bravo and coral hold Y');
      assert.notEqual(keys[0], keys[1], 'acme holds X, which no certificate covers');
    } finally {
      m.approveAnything = false;
    }
  });

  test('potluck policy release: a slot the L1 shows consumed is freed; any other only with --force --reason; both logged', async () => {
    const pub = l1Client(l1.rpcUrl);
    const hash = await pub.sendRawTransaction({ serializedTransaction: bumpedRaw as never });
    assert.equal((await pub.waitForTransactionReceipt({ hash })).status, 'success');
    const release = (nonce: number, ...extra: string[]) => potluck(['policy', 'release', '--home', acme.home, '--chain-id', String(l1.chainId), '--from', group, '--nonce', String(nonce), '--l1-rpc', l1.rpcUrl, ...extra]);
    const consumed = await release(0);
    assert.equal(consumed.code, 0, consumed.stderr);
    assert.match(JSON.parse(consumed.stdout).detail, new RegExp(`^released ${l1.chainId}/${group.toLowerCase()}/0: consumed on L1: confirmed nonce 1 > 0`));
    // acme still holds X at nonce 2, which no certificate covers and nobody will post.
    const refused = await release(2);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /the L1 does not show nonce 2 of 0x[0-9a-fA-F]{40} as consumed \(confirmed nonce 1\); use --force --reason to free it anyway/);
    const noReason = await release(2, '--force');
    assert.equal(noReason.code, 2);
    assert.match(noReason.stderr, /--force needs --reason/);
    const forced = await release(2, '--force', '--reason', 'X at nonce 2 was shown to acme alone by mallory; Y holds the slot elsewhere');
    assert.equal(forced.code, 0, forced.stderr);
    const [a, b] = await recordsAt(2);
    assert.equal(a, null, 'freed at acme');
    assert.notEqual(b, null, 'bravo keeps its own record');
    assert.equal((await recordsAt(0))[0], null);
    const log = readFileSync(join(acme.home, 'audit.log'));
    assert.ok(log.includes(Buffer.from('forced: X at nonce 2 was shown to acme alone')), 'the release is an incident in acme\'s audit log');
  });

  test(`${FLOOD_SECONDS} s of flooding (junk proposals and approval requests, 1.9 MB envelopes, ×5 replays, bogus ceremony joins): honest RSS stays under ${RSS_LIMIT_MB} MB and honest signing goes on`, async () => {
    const honest = [acme, bravo, coral];
    const end = Date.now() + FLOOD_SECONDS * 1000;
    let maxRss = 0;
    const sampler = setInterval(() => { for (const p of honest) maxRss = Math.max(maxRss, rssMb(p.proc!.pid!)); }, 500);
    const flood = mallory.flood(honest.map((p) => p.org), end);
    let signed = 0, nonce = 10;
    const errors: string[] = [], latencies: number[] = [];
    const started = Date.now();
    while (Date.now() < end) {
      const t0 = Date.now();
      const raw = await signVia([acme, coral][nonce % 2]!, batchTx(group, l1.chainId, nonce++, 100 + nonce)).catch((e: Error) => void errors.push(e.message.slice(0, 300)));
      if (raw && (await recovers(raw))) {
        signed++;
        latencies.push(Date.now() - t0);
      }
      await sleep(1000);
    }
    await flood;
    clearInterval(sampler);
    for (const p of honest) assert.equal(p.proc!.exitCode, null, `${p.org} is still running`);
    assert.ok(maxRss < RSS_LIMIT_MB, `max RSS of an honest peer ${maxRss.toFixed(0)} MB`);
    assert.ok(signed >= Math.min(3, Math.floor((Date.now() - started) / 5000)), `${signed} honest signatures during the flood (latencies ${latencies.join(', ')} ms); errors: ${errors.join(' | ')}`);
    for (const p of honest) await until(`${p.org} ready after the flood`, async () => ((await readyz(p)).status === 200 ? true : undefined));
  });

  test('a co-signer restored from a copy of potluck.db and audit.log never signs a spent presignature twice, and reports the rollback on /readyz until acknowledged', async () => {
    const m = mallory;
    // A presignature of mallory's with bravo, present (unused) at bravo when the copy is taken, as a VM snapshot would be.
    const P = await m.takePresignature([B, M].sort((a, b) => a - b));
    await sleep(500);
    const snap = join(root, 'bravo-snapshot');
    mkdirSync(snap, { recursive: true });
    for (const f of ['potluck.db', 'potluck.db-wal', 'potluck.db-shm', 'audit.log']) if (existsSync(join(bravo.home, f))) copyFileSync(join(bravo.home, f), join(snap, f));
    // Mallory spends it with bravo on nonce 40's batch (certified by acme, bravo, coral and itself).
    const X = txRequest(batchTx(group, l1.chainId, 40, 40));
    const x = await m.ask(['acme', 'bravo', 'coral'], X);
    const first = await m.propose([B, M].sort((a, b) => a - b), X, encodeCertificate([...x.approvals, m.approval(X, x.requestId)]), P);
    assert.ok(first.signature, first.refused);
    await sleep(3000); // the witnesses cosign bravo's grown log (checkpoints every second)
    // The host dies and is restored from the copy.
    await c.kill(bravo, 'SIGKILL');
    for (const f of ['potluck.db', 'potluck.db-wal', 'potluck.db-shm', 'audit.log']) {
      rmSync(join(bravo.home, f), { force: true });
      if (existsSync(join(snap, f))) copyFileSync(join(snap, f), join(bravo.home, f));
    }
    const db = new Database(join(bravo.home, 'potluck.db'), { readonly: true });
    const row = db.prepare('SELECT used FROM presignatures WHERE sig_sid = ?').get(P.sigSid) as { used: number } | undefined;
    db.close();
    assert.deepEqual(row, { used: 0 }, 'the restored copy holds the spent presignature as unused');
    await startHonest(bravo);
    const reason = await until('the rollback on /readyz', async () => {
      const r = await readyz(bravo);
      return r.status === 503 && /rolled back/.test(r.body) ? r.body : undefined;
    });
    // Which form depends on whether the restored log grew past the cosigned size before the check.
    assert.match(reason, /cosigned this peer's audit log at size \d+(, signed by this peer, but the log holds \d+ entries| with another root than the log holds now)/);
    // Mallory proposes the same presignature again with another digest, under a full certificate.
    const Y = txRequest(batchTx(group, l1.chainId, 41, 41));
    const y = await m.ask(['acme', 'coral'], Y);
    const again = await m.propose([B, M].sort((a, b) => a - b), Y, encodeCertificate([...y.approvals, m.approval(Y, y.requestId)]), P);
    assert.equal(again.signature, undefined, 'no second partial for a spent presignature');
    assert.match(again.refused!, /rolled back|unknown presignature|did not approve/);
    const status = await potluck(['status', '--home', bravo.home]);
    assert.match(status.stdout, /ROLLBACK DETECTED/);
    // The operator investigates and acknowledges; bravo signs again.
    const ack = await potluck(['audit', 'ack-rollback', '--home', bravo.home, '--reason', 'host restored from a snapshot after a disk failure (test)']);
    assert.equal(ack.code, 0, ack.stderr);
    await until('bravo ready after the acknowledgement', async () => ((await readyz(bravo)).status === 200 ? true : undefined));
    assert.ok(await recovers(await signVia(bravo, batchTx(group, l1.chainId, 42, 42))));
  });
});

describe('n = 3, t = 2, f = 0 (c = 2): beyond f, equivocation is attributable', () => {
  let c2: LocalCluster, mal: Mallory;
  before(async () => {
    const r2 = join(root, 'small');
    c2 = await LocalCluster.create({ root: r2, orgs: ['able', 'cora', 'mal'], threshold: 2, quorumOrgs: 2, quorumOther: 1, policy: false, passphrase: PASSPHRASE, faulty: 0 });
    writePolicies(c2, l1.chainId);
    const kg = await c2.keygen(KEY);
    assert.deepEqual(kg.map((r) => r.code), [0, 0, 0], kg.map((r) => r.stderr.slice(-500)).join('\n'));
    await Promise.all(c2.peers.slice(0, 2).map((p) => c2.start(p, ['--checkpoint-interval', '1', '--pool-target', '1'])));
    mal = await Mallory.start(c2.peers[2]!.home, PASSPHRASE, { scryptLogN: 14 });
    await until('able and cora connected', () => (mal.daemon.readiness().ready ? true : undefined));
    // Each honest peer approves only after its start-up check against the witnesses (up to 10 s).
    for (const p of c2.peers.slice(0, 2))
      await until(`${p.org} ready`, async () => (((await adminCall(p.home, 'GET', '/v1/status')).body as { ready: { ready: boolean } }).ready.ready ? true : undefined));
  });
  after(async () => {
    await mal?.stop();
    await c2?.stopAll();
  });

  test('mal approves X for able and Y for cora at one nonce; both are signed, and audit verify over the honest logs names mal with its two signed approvals', async () => {
    const g = mal.key.address as Address;
    const [Pa, Pc, Pm] = ['able', 'cora', 'mal'].map((o) => mal.party(o)) as [number, number, number];
    const X = txRequest(batchTx(g, l1.chainId, 7, 70));
    const Y = txRequest(batchTx(g, l1.chainId, 7, 71));
    const x = await mal.ask(['able'], X);
    const y = await mal.ask(['cora'], Y);
    assert.deepEqual([x.approvals.length, y.approvals.length], [1, 1], JSON.stringify([x.declines, y.declines]));
    const sx = await mal.propose([Pa, Pm].sort((a, b) => a - b), X, encodeCertificate([...x.approvals, mal.approval(X, x.requestId)]));
    const sy = await mal.propose([Pc, Pm].sort((a, b) => a - b), Y, encodeCertificate([...y.approvals, mal.approval(Y, y.requestId)]));
    assert.ok(sx.signature && sy.signature, 'with f = 0 a faulty member in the overlap of two approval quorums gets both signed (docs/security.md)');
    await sleep(1500);
    await c2.stopAll();
    const definition = c2.definition;
    const logs = c2.peers.slice(0, 2).map((p) => join(p.home, 'audit.log'));
    const r = await potluck(['audit', 'verify', '--cluster', definition, '--json', ...logs]);
    assert.equal(r.code, 1, r.stderr);
    const report = JSON.parse(r.stdout) as { equivocations: { org: string; slot: string; digests: string[] }[]; failures: { rule: string; message: string }[] };
    assert.equal(report.equivocations.length, 1);
    assert.equal(report.equivocations[0]!.org, 'mal');
    assert.equal(report.equivocations[0]!.slot, `${l1.chainId}/${g.toLowerCase()}/7`);
    assert.deepEqual(report.equivocations[0]!.digests.sort(), [subjectOf(X.body, g).digest, subjectOf(Y.body, g).digest].map((d) => '0x' + Buffer.from(d).toString('hex')).sort());
    assert.deepEqual([...new Set(report.failures.map((f) => f.rule))], ['equivocation']);
    const text = await potluck(['audit', 'verify', '--cluster', definition, ...logs]);
    assert.match(text.stdout, /EQUIVOCATION by mal \(/);
  });
});
