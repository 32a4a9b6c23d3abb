import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync, existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { generateKeyPair, privateKeyFromProtobuf } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { recoverAddress, serializeSignature, type Hex } from 'viem';
import { BIN, LocalCluster, potluck, type PeerProc } from '../../src/devnet/local-cluster.ts';
import { HandshakeError, PeerNode } from '../../src/net/peer-node.ts';
import { systemRng } from '../../src/crypto/random.ts';
import { adminCall } from '../../src/peer/admin-api.ts';

/**
 * Five peers as real OS processes on loopback, driven through the CLI (issue 3): 3-of-5 keygen,
 * 50 signatures (32 of them at once), kill -9 mid-session, outsiders and foreign definitions,
 * a crash between the used mark and the send, and a burned pair.
 */
const ORGS = ['acme', 'bravo', 'cobalt', 'dune', 'echo'];
let c: LocalCluster;
let address: string;
let publicKey: string;
const rs = new Set<string>(); // every signature's r: a reused presignature would repeat one

const peer = (org: string): PeerProc => c.peers.find((p) => p.org === org)!;
const digest = () => ('0x' + Buffer.from(systemRng(32)).toString('hex')) as Hex;

interface Sig { r: Hex; s: Hex; yParity: 0 | 1; address: string; digest: Hex; signers: { org: string }[]; presignature: string; attempts: number }

/** Through the CLI (`potluck sign`), as an operator would. */
async function signCli(org: string, d: Hex = digest()): Promise<Sig> {
  const r = await potluck(['sign', '--home', peer(org).home, '--key', 'batcher', '--digest', d], c.env);
  assert.equal(r.code, 0, `sign at ${org} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Sig;
}

/** Through the admin socket directly (no process start per request). */
async function sign(org: string, d: Hex = digest()): Promise<Sig> {
  const r = await adminCall(peer(org).home, 'POST', '/v1/sign', { digest: d, key: 'batcher' });
  assert.equal(r.status, 200, `sign at ${org} failed: ${JSON.stringify(r.body)}`);
  return r.body as unknown as Sig;
}

async function check(sig: Sig, requester: string): Promise<void> {
  assert.equal(sig.address, address);
  assert.ok(secp256k1.verify(secp256k1.Signature.fromHex(sig.r.slice(2) + sig.s.slice(2), 'compact').toBytes('compact'), Buffer.from(sig.digest.slice(2), 'hex'), Buffer.from(publicKey.slice(2), 'hex'), { prehash: false, lowS: true }));
  assert.equal((await recoverAddress({ hash: sig.digest, signature: serializeSignature({ r: sig.r, s: sig.s, yParity: sig.yParity }) })).toLowerCase(), address);
  assert.ok(sig.signers.some((s) => s.org === requester), 'the requester signs');
  assert.equal(new Set(sig.signers.map((s) => s.org)).size, 3, 'three distinct orgs (the org quorum)');
  assert.ok(!rs.has(sig.r), 'r never repeats: no presignature is used twice');
  rs.add(sig.r);
}

async function status(org: string): Promise<{ peers: { org: string; connected: boolean }[]; keys: { burnedPairs: string[]; pool: { unused: number } }[] }> {
  const r = await potluck(['status', '--home', peer(org).home, '--json'], c.env);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

async function until(what: string, cond: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.fail(`timed out waiting for ${what}`);
}

before(async () => {
  c = await LocalCluster.create({ root: mkdtempSync(join(tmpdir(), 'potluck-procs-')), orgs: ORGS, threshold: 3, quorumOrgs: 3, quorumOther: 2 });
});
after(async () => {
  await c?.stopAll();
});

test('a keygen interrupted mid-DKG (kill -9 of one member) leaves no share anywhere and names the missing peer', async () => {
  const procs = c.peers.map((p) => spawn(process.execPath, [BIN, 'keygen', '--home', p.home, '--key', 'batcher', '--timeout', '30'], { env: { ...process.env, ...c.env }, stdio: ['ignore', 'pipe', 'pipe'] }));
  const outcome = procs.map((p) => new Promise<{ code: number | null; signal: string | null; stderr: string }>((res) => {
    let stderr = '';
    p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code, signal) => res({ code, signal, stderr }));
  }));
  const victim = procs[3]!; // dune
  await new Promise<void>((res) => victim.stderr!.on('data', (d: Buffer) => d.toString().includes('round 2/4') && res()));
  victim.kill('SIGKILL');
  const results = await Promise.all(outcome);
  assert.equal(results[3]!.signal, 'SIGKILL');
  for (const [k, r] of results.entries()) {
    if (k === 3) continue;
    assert.equal(r.code, 1, r.stderr.slice(-500));
    assert.match(r.stderr, /keygen "batcher" timed out in round [2-4]\/4 waiting for: .*dune \(12D3KooW/);
  }
  for (const p of c.peers) {
    assert.equal(existsSync(join(p.home, 'keys', 'batcher.share')), false, `${p.org} kept a partial key`);
    assert.equal(existsSync(join(p.home, 'keys', 'batcher.share.pending')), false);
  }
});

test('rerun: 3-of-5 keygen in five processes: same address everywhere, progress per round and peer, shares sealed with mode 0600', async () => {
  const progress: string[] = [];
  const res = await c.keygen('batcher', (org, l) => progress.push(`${org}: ${l}`));
  for (const [k, r] of res.entries()) assert.equal(r.code, 0, `${ORGS[k]}: ${r.stderr.slice(-2000)}`);
  const outs = res.map((r) => JSON.parse(r.stdout) as { address: string; publicKey: string; threshold: number; parties: unknown[]; file: string });
  address = outs[0]!.address;
  publicKey = outs[0]!.publicKey;
  for (const o of outs) {
    assert.equal(o.address, address);
    assert.equal(o.threshold, 3);
    assert.equal(o.parties.length, 5);
    assert.equal(statSync(o.file).mode & 0o777, 0o600);
    assert.ok(!readFileSync(o.file).includes(Buffer.from(publicKey.slice(4, 40), 'hex')), 'the share file is sealed');
  }
  assert.match(address, /^0x[0-9a-f]{40}$/);
  // Per round and peer; under load a party may get all round-4 messages while still in round 3
  // (they are buffered), so its last "received from" line can name round 3.
  for (const org of ORGS) {
    assert.ok(progress.some((l) => /^\S+: keygen: round [34]\/4: received from /.test(l) && l.startsWith(`${org}:`)), `${org} reports rounds per peer`);
    assert.ok(progress.some((l) => l === `${org}: keygen: DKG done; waiting for every member to acknowledge its share`), `${org} reports the end of the DKG`);
  }
  // Rerunning the same key name is refused: nothing is overwritten.
  const again = await potluck(['keygen', '--home', peer('acme').home, '--key', 'batcher'], c.env);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /key "batcher" already exists/);
});

test('an interrupted keygen leaves no partial key behind, and names the peers it waits for', async () => {
  const r = await potluck(['keygen', '--home', peer('acme').home, '--key', 'lonely', '--timeout', '3'], c.env);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /timed out before the start waiting for: (bravo|cobalt|dune|echo) \(12D3KooW/);
  for (const org of ['bravo', 'cobalt', 'dune', 'echo']) assert.match(r.stderr, new RegExp(org));
  assert.equal(existsSync(join(peer('acme').home, 'keys', 'lonely.share')), false);
});

test('daemons start; 50 signatures verify against the group address (18 in turn, then 32 at once)', async () => {
  await c.startAll(['--pool-target', '1']);
  await until('every peer connected', async () => (await status('acme')).peers.every((p) => p.connected));
  for (let i = 0; i < 18; i++) {
    const org = ORGS[i % 5]!;
    await check(i < 5 ? await signCli(org) : await sign(org), org);
  }
  const batch = await Promise.all(Array.from({ length: 32 }, (_, i) => ORGS[i % 5]!).map(async (org) => ({ org, sig: await sign(org) })));
  for (const { org, sig } of batch) await check(sig, org);
  assert.equal(rs.size, 50);
});

test('a peer outside the cluster cannot connect; a member with another definition is refused by name', async () => {
  const target = `${peer('acme').listen}/p2p/${peer('acme').peerId}`;
  const outsiderKey = await generateKeyPair('Ed25519');
  const outsider = await PeerNode.start({ privateKey: outsiderKey, listen: ['/ip4/127.0.0.1/tcp/0'], allowed: new Set([peer('acme').peerId]), clusterHash: new Uint8Array(32) });
  try {
    await assert.rejects(outsider.connect(target), (e: unknown) => e instanceof HandshakeError && /cannot connect/.test(e.message));
  } finally {
    await outsider.stop();
  }
  // echo's own identity, but a definition whose hash differs.
  const echoKey = privateKeyFromProtobuf(readFileSync(join(peer('echo').home, 'identity.key')));
  assert.equal(peerIdFromPrivateKey(echoKey).toString(), peer('echo').peerId);
  const forked = await PeerNode.start({ privateKey: echoKey, listen: ['/ip4/127.0.0.1/tcp/0'], allowed: new Set([peer('acme').peerId]), clusterHash: new Uint8Array(32).fill(7) });
  try {
    // The real echo is connected to acme under the same peer id, so libp2p may close this second
    // connection before the hello reply (EOF). That is a refusal too; retry until acme names why.
    let named: HandshakeError | undefined;
    for (let i = 0; i < 5 && !named; i++) {
      const e = await forked.connect(target).then(() => undefined, (x: unknown) => x);
      assert.ok(e instanceof HandshakeError, `a peer with another definition must never connect (attempt ${i + 1}): ${String(e)}`);
      if (/different cluster definition/.test(e.message)) named = e;
      else await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(named, 'acme names the definition mismatch');
    assert.equal(named.peer, peer('acme').peerId);
  } finally {
    await forked.stop();
  }
});

test('kill -9 of a peer mid-session: the next request succeeds with the other four; the killed peer rejoins after a restart', async () => {
  const requesters = ['acme', 'bravo', 'cobalt'];
  const inflight = Promise.all(requesters.map((org) => potluck(['sign', '--home', peer(org).home, '--key', 'batcher', '--digest', digest()], c.env)));
  await new Promise((r) => setTimeout(r, 15));
  await c.kill(peer('echo'), 'SIGKILL');
  // Requests in flight either finish (retried without echo) or fail with a clear error; none signs twice.
  for (const [k, r] of (await inflight).entries()) if (r.code === 0) await check(JSON.parse(r.stdout) as Sig, requesters[k]!);
  const next = await sign('acme');
  await check(next, 'acme');
  assert.ok(!next.signers.some((s) => s.org === 'echo'));
  await until('acme sees echo down', async () => !(await status('acme')).peers.find((p) => p.org === 'echo')!.connected);
  await c.start(peer('echo'), ['--pool-target', '1']);
  await until('echo rejoined', async () => (await status('acme')).peers.every((p) => p.connected) && (await status('echo')).peers.every((p) => p.connected));
  const fromEcho = await sign('echo');
  await check(fromEcho, 'echo');
});

test('a crash between the used mark and the send never reuses the presignature', async () => {
  await c.kill(peer('dune'), 'SIGTERM');
  await c.start(peer('dune'), ['--pool-target', '1'], { POTLUCK_FAULT: 'crash-after-mark' });
  // With echo stopped, every request needs dune's approval (c = 4 of 5 at f = 1); acme signs until
  // dune is also in the signer set, marks the presignature used and dies before its partial leaves.
  await c.kill(peer('echo'), 'SIGTERM');
  await until('acme sees dune up, echo down', async () => {
    const p = (await status('acme')).peers;
    return p.find((x) => x.org === 'dune')!.connected && !p.find((x) => x.org === 'echo')!.connected;
  });
  const dune = peer('dune').proc!;
  const crashed = () => dune.signalCode === 'SIGKILL';
  for (let i = 0; i < 12 && !crashed(); i++) {
    const r = await adminCall(peer('acme').home, 'POST', '/v1/sign', { digest: digest(), key: 'batcher' });
    // A set without dune signs; so does acme's retry without dune after the crash.
    if (r.status === 200) await check(r.body as unknown as Sig, 'acme');
    else assert.ok(['failed', 'no-quorum'].includes((r.body.error as { code: string }).code), JSON.stringify(r.body));
  }
  await until('dune crashed right after marking a presignature used', async () => crashed(), 10_000);
  // Three of five up: no approval certificate can be formed.
  const none = await adminCall(peer('acme').home, 'POST', '/v1/sign', { digest: digest(), key: 'batcher' });
  assert.equal(none.status, 503, JSON.stringify(none.body));
  assert.equal((none.body.error as { code: string }).code, 'no-quorum');
  const named = /^approval certificate needs 4 of 5 holders \(f = 1\); connected: (.+)$/.exec((none.body.error as { message: string }).message);
  assert.deepEqual(named?.[1]!.split(', ').sort(), ['acme', 'bravo', 'cobalt'], JSON.stringify(none.body));
  // dune's database, as the crash left it: the co-signature's presignature is marked used.
  let cosign: Buffer;
  const db = new Database(join(peer('dune').home, 'potluck.db'), { readonly: true });
  try {
    const running = db.prepare("SELECT id FROM sessions WHERE kind = 'cosign' AND status = 'running'").all() as { id: Buffer }[];
    assert.equal(running.length, 1);
    cosign = running[0]!.id;
    assert.equal((db.prepare('SELECT used FROM presignatures WHERE sig_sid = ?').get(cosign) as { used: number }).used, 1);
  } finally {
    db.close();
  }
  // After a restart the session is recorded as interrupted and no presignature survives.
  await c.start(peer('dune'), ['--pool-target', '1']);
  const db2 = new Database(join(peer('dune').home, 'potluck.db'), { readonly: true });
  try {
    assert.equal((db2.prepare('SELECT detail FROM sessions WHERE id = ?').get(cosign) as { detail: string }).detail, 'interrupted (restart)');
    assert.equal(db2.prepare('SELECT used FROM presignatures WHERE sig_sid = ?').get(cosign), undefined);
  } finally {
    db2.close();
  }
  await c.start(peer('echo'), ['--pool-target', '1']);
  await until('everyone rejoined', async () => (await status('acme')).peers.every((p) => p.connected));
  await check(await sign('dune'), 'dune');
  await check(await sign('acme'), 'acme');
});

test('refresh: every holder runs it; new shares at epoch 1, same address, old shares deleted only after every ack', async () => {
  const before = new Map(ORGS.map((o) => [o, readFileSync(join(peer(o).home, 'keys', 'batcher.share'))]));
  const res = await Promise.all(ORGS.map((o) => potluck(['refresh', '--home', peer(o).home, '--key', 'batcher', '--timeout', '120'], c.env)));
  for (const [k, r] of res.entries()) assert.equal(r.code, 0, `${ORGS[k]}: ${r.stderr}`);
  for (const r of res) {
    const out = JSON.parse(r.stdout) as { epoch: number; publicKey: string; holders: string[] };
    assert.equal(out.epoch, 1);
    assert.equal(out.publicKey, publicKey);
    assert.equal(out.holders.length, 5);
  }
  for (const o of ORGS) {
    assert.notDeepEqual(readFileSync(join(peer(o).home, 'keys', 'batcher.share')), before.get(o));
    assert.equal(existsSync(join(peer(o).home, 'keys', 'batcher.share.next')), false);
    assert.ok(peer(o).log.some((l) => l.includes('acknowledged by every holder')));
  }
  const st = await status('acme');
  assert.equal((st.keys[0] as unknown as { epoch: number }).epoch, 1);
  for (const o of ['acme', 'dune']) await check(await sign(o), o);
});

test('refresh refuses options that change holders, and a lone refresh names who has not joined', async () => {
  const bad = await potluck(['refresh', '--home', peer('acme').home, '--threshold', '2'], c.env);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /use "potluck reshare/);
  const lone = await potluck(['refresh', '--home', peer('acme').home, '--key', 'batcher', '--timeout', '2'], c.env);
  assert.equal(lone.code, 1);
  assert.match(lone.stderr, /refresh of batcher timed out waiting for: .*bravo \(connected, has not run the command\)/);
  await check(await sign('acme'), 'acme'); // epoch 1 still active
});

test('a burned pair is detected, reported and re-set-up', async () => {
  await c.kill(peer('cobalt'), 'SIGTERM');
  await c.start(peer('cobalt'), ['--pool-target', '1'], { POTLUCK_FAULT: 'corrupt-ot' });
  await until('cobalt connected', async () => (await status('acme')).peers.every((p) => p.connected));
  // cobalt's next presign (a pool refill, at once or after it spends one) sends a corrupted SignExtension.
  const banned = () => ORGS.find((o) => o !== 'cobalt' && peer(o).log.some((l) => l.includes('BAN_PAIR') && l.includes('"peer":"cobalt"')));
  for (let i = 0; i < 10 && !banned(); i++) {
    await check(await sign('cobalt'), 'cobalt');
    await new Promise((r) => setTimeout(r, 500));
  }
  const victim = banned();
  assert.ok(victim, 'some partner of cobalt burned the pair and reported it');
  assert.ok(peer(victim).log.some((l) => l.includes('BAN_PAIR') && l.includes('"check":"softspoken-check"')));
  // The victim re-runs the pair's OT setup with cobalt as a small ceremony; the pair signs again.
  await until('the pair is re-set up', async () => peer(victim).log.some((l) => l.includes('OT re-setup done') && l.includes('"peer":"cobalt"')) && (await status(victim)).keys[0]!.burnedPairs.length === 0, 60_000);
  const others = ORGS.filter((o) => o !== victim && o !== 'cobalt');
  // Four up (approvals need c = 4 of 5 at f = 1); the victim signs until cobalt is in its set.
  await Promise.all(others.slice(2).map((o) => c.kill(peer(o), 'SIGTERM')));
  await until('the pair and two more are up', async () => (await status(victim)).peers.filter((p) => p.connected).length === 3);
  await new Promise((r) => setTimeout(r, 3500)); // the pair's settle time after a re-setup
  let sig: Sig | undefined;
  for (let i = 0; i < 12 && !sig?.signers.some((s) => s.org === 'cobalt'); i++) {
    sig = await sign(victim);
    await check(sig, victim);
  }
  assert.ok(sig!.signers.some((s) => s.org === victim) && sig!.signers.some((s) => s.org === 'cobalt'), `the re-set-up pair signs together: ${sig!.signers.map((s) => s.org).join(', ')}`);
  await c.kill(peer('cobalt'), 'SIGTERM');
  await Promise.all([peer('cobalt'), ...others.slice(2).map(peer)].map((p) => c.start(p, ['--pool-target', '1'])));
  await until('everyone back', async () => (await status('acme')).peers.every((p) => p.connected));
});

test("reshare without echo: the four remaining orgs keep the address; echo's old share no longer signs", async () => {
  const four = ORGS.filter((o) => o !== 'echo');
  const res = await Promise.all(four.map((o) => potluck(['reshare', '--home', peer(o).home, '--key', 'batcher', '--remove', 'echo', '--timeout', '120'], c.env)));
  for (const [k, r] of res.entries()) assert.equal(r.code, 0, `${four[k]}: ${r.stderr}`);
  for (const r of res) {
    const out = JSON.parse(r.stdout) as { epoch: number; publicKey: string; holders: string[]; threshold: number };
    assert.equal(out.epoch, 2);
    assert.equal(out.publicKey, publicKey);
    assert.equal(out.threshold, 3);
    assert.deepEqual([...out.holders].sort(), four);
  }
  for (let i = 0; i < 4; i++) {
    const sig = await sign(four[i]!);
    await check(sig, four[i]!);
    assert.ok(!sig.signers.some((s) => s.org === 'echo'));
  }
  const stale = await adminCall(peer('echo').home, 'POST', '/v1/sign', { digest: digest(), key: 'batcher' });
  assert.notEqual(stale.status, 200);
  // Its stale share still names five holders; the others refuse to approve for a non-holder.
  assert.match(JSON.stringify(stale.body), /"code":"no-quorum","message":"approval certificate needs 4 of 5 holders \(f = 1\); approved by echo; declined by \w+ \(echo holds no share of batcher\)/);
});
