/**
 * A peer process's lifecycle around its API (issues 11 and 12), three orgs on loopback, 2-of-3:
 *  - SIGHUP installs a CRL made by `potluck tls revoke`: the revoked client gets 401, others go on;
 *    a bad CRL file is refused and the previous one stays in force;
 *  - one SIGTERM stops a peer that has keep-alive API connections open, a signing session in
 *    flight and its pool refill running (its co-signers frozen by SIGSTOP, so none can finish),
 *    before the deadline;
 *  - a shutdown that cannot finish ends at the deadline with exit 1, naming what was open;
 *  - a peer whose parent dies (SIGKILL, or an exit without stopping it) does not outlive it.
 * No speed is asserted: "exited before the hard bound" (the deadline plus a margin) is correctness.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RpcClient, RpcCallError, RpcTransportError } from '../../src/api/client.ts';
import { createLocalCa, issueCertificate, writeTlsFiles, type PemPair } from '../../src/api/tls-certs.ts';
import { LocalCluster, RAW_DIGEST_TEST_POLICY, potluck, type PeerProc } from '../../src/devnet/local-cluster.ts';

const ORGS = ['acme', 'bravo', 'coral'];
/** `potluck start`'s default --shutdown-timeout, and the margin past it within which the process must be gone. */
const DEADLINE_MS = 10_000;
const MARGIN_MS = 10_000;

let c: LocalCluster;
let root: string;
let caDir: string;
const clients: Record<string, PemPair> = {};
const open: RpcClient[] = [];

const peer = (org: string): PeerProc => c.peers.find((p) => p.org === org)!;

function apiClient(p: PeerProc, who: string): RpcClient {
  const r = new RpcClient({ url: p.started!.api!, ca: readFileSync(join(caDir, 'ca.crt')), cert: clients[who]!.certPem, key: clients[who]!.keyPem, timeoutMs: 20_000 });
  open.push(r);
  return r;
}

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`timed out waiting for ${what}`);
}

/** The exit of `p`'s daemon, or 'still running' at `boundMs`. */
function exitWithin(p: PeerProc, boundMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null } | 'still running'> {
  const proc = p.proc!;
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve({ code: proc.exitCode, signal: proc.signalCode });
  return new Promise((res) => {
    const t = setTimeout(() => res('still running'), boundMs);
    proc.once('exit', (code, signal) => {
      clearTimeout(t);
      res({ code, signal });
    });
  });
}

const logged = (p: PeerProc, msg: string) => p.log.some((l) => l.includes(`"msg":"${msg}`));

/** Alive = exists and is not a zombie (a reparented zombie may linger unreaped in a container). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'potluck-lifecycle-'));
  c = await LocalCluster.create({ root, orgs: ORGS, threshold: 2, quorumOrgs: 2, quorumOther: 1, policy: false });
  caDir = join(root, 'ca');
  const ca = await createLocalCa('Potluck lifecycle test CA');
  writeTlsFiles(caDir, 'ca', ca);
  for (const name of ['batcher', 'proposer']) {
    clients[name] = await issueCertificate(ca, { commonName: name, dnsNames: [name], usage: 'client', days: 3 });
    writeTlsFiles(join(root, name), name, clients[name]!);
  }
  for (const p of c.peers) {
    const dir = join(p.home, 'tls');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'ca.crt'), ca.certPem);
    writeTlsFiles(dir, 'server', await issueCertificate(ca, { commonName: p.org, dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], usage: 'server', days: 3 }));
    const policy = { ...RAW_DIGEST_TEST_POLICY, clients: ['batcher', 'proposer'].map((name) => ({ name, maxRequestsPerMinute: 6000 })) };
    writeFileSync(join(p.home, 'policy.json'), JSON.stringify(policy, null, 2) + '\n');
  }
  const kg = await c.keygen('batcher');
  for (const [i, r] of kg.entries()) assert.equal(r.code, 0, `keygen at ${ORGS[i]}: ${r.stderr}`);
  // acme keeps refilling a large pool (so a refill is running whenever we look) and waits long for co-signers.
  await c.start(peer('acme'), ['--pool-target', '40', '--sign-timeout', '60']);
  await Promise.all(['bravo', 'coral'].map((o) => c.start(peer(o), ['--pool-target', '0'])));
  const probe = apiClient(peer('acme'), 'batcher');
  await until('acme ready', async () => (await probe.get('/readyz')).status === 200);
});

after(async () => {
  for (const r of open) r.close();
  for (const p of c?.peers ?? []) if (p.proc?.pid && p.proc.exitCode === null) p.proc.kill('SIGCONT');
  await c?.stopAll();
});

test('SIGHUP installs a CRL from "potluck tls revoke": the revoked client gets 401, the others are served; a bad CRL keeps the previous one', async () => {
  const acme = peer('acme');
  const batcher = apiClient(acme, 'batcher');
  const proposer = apiClient(acme, 'proposer');
  assert.equal(await proposer.call('health_status'), await batcher.call('health_status'));

  const revoke = await potluck(['tls', 'revoke', '--ca', caDir, '--cert', join(root, 'proposer', 'proposer.crt'), '--reason', 'keyCompromise']);
  assert.equal(revoke.code, 0, revoke.stderr);
  copyFileSync(join(caDir, 'ca.crl'), join(acme.home, 'tls', 'ca.crl'));
  const reloads = () => acme.log.filter((l) => l.includes('"msg":"TLS files reloaded"')).length;
  acme.proc!.kill('SIGHUP');
  await until('the TLS reload', () => reloads() === 1);
  assert.match(acme.log.find((l) => l.includes('"msg":"TLS files reloaded"'))!, /"crl":\{"file":"[^"]*acme\/tls\/ca\.crl","revoked":1,"nextUpdate":"/);

  await assert.rejects(apiClient(acme, 'proposer').call('health_status'), (e: unknown) =>
    e instanceof RpcCallError && e.httpStatus === 401 && e.message === 'client certificate was not accepted: CERT_REVOKED');
  await assert.rejects(proposer.call('health_status'), (e: unknown) =>
    e instanceof RpcCallError && e.httpStatus === 401 && e.message === 'client certificate was not accepted: CERT_REVOKED', 'its keep-alive connection from before too');
  assert.equal(typeof await batcher.call('health_status'), 'string');

  writeFileSync(join(acme.home, 'tls', 'ca.crl'), 'not a CRL\n');
  acme.proc!.kill('SIGHUP');
  await until('the failed reload', () => logged(acme, 'TLS reload failed; keeping the previous TLS files'));
  assert.match(acme.log.find((l) => l.includes('TLS reload failed'))!, /"err":"[^"]*acme\/tls\/ca\.crl: no PEM CRL in it \(expected \\"-----BEGIN X509 CRL-----\\"\)"/);
  await assert.rejects(apiClient(acme, 'proposer').call('health_status'), (e: unknown) => e instanceof RpcCallError && e.httpStatus === 401);
  assert.equal(typeof await apiClient(acme, 'batcher').call('health_status'), 'string');
  copyFileSync(join(caDir, 'ca.crl'), join(acme.home, 'tls', 'ca.crl'));
});

test('one SIGTERM stops a peer with keep-alive API connections, a signing request in flight and its refill running, before the deadline', async (t) => {
  const acme = peer('acme');
  // Freeze the co-signers: their sockets stay open, nothing they were asked for ever comes back.
  for (const o of ['bravo', 'coral']) peer(o).proc!.kill('SIGSTOP');
  const digest = `0x${'5a'.repeat(32)}`;
  const signing = potluck(['sign', '--home', acme.home, '--key', 'batcher', '--digest', digest], c.env);
  const status = async () => {
    const r = await potluck(['status', '--home', acme.home, '--json'], c.env);
    return JSON.parse(r.stdout) as { sessions: { active: number; awaitingApprovals: number } };
  };
  // Two refill sessions (the pool's concurrency) and the request's approval round, all waiting on frozen peers.
  await until('a signing request and the refill in flight', async () => {
    const s = (await status()).sessions;
    return s.active >= 2 && s.awaitingApprovals >= 1;
  });
  const keepAlive = apiClient(acme, 'batcher');
  assert.equal(typeof await keepAlive.call('health_status'), 'string');
  const idle = await new Promise<tls.TLSSocket>((res, rej) => {
    const s = tls.connect({ host: '127.0.0.1', port: Number(new URL(acme.started!.api!).port), ca: readFileSync(join(caDir, 'ca.crt')), servername: 'localhost' }, () => res(s));
    s.once('error', rej);
  });
  idle.on('error', () => undefined);
  try {
    const t0 = performance.now();
    acme.proc!.kill('SIGTERM');
    const exit = await exitWithin(acme, DEADLINE_MS + MARGIN_MS);
    t.diagnostic(`exited ${Math.round(performance.now() - t0)} ms after SIGTERM (not asserted)`);
    assert.deepEqual(exit, { code: 0, signal: null }, `exit: ${JSON.stringify(exit)}\n${acme.log.slice(-15).join('\n')}`);
    assert.ok(logged(acme, 'stopping'));
    assert.ok(logged(acme, 'stopped'));
    assert.ok(!existsSync(join(acme.home, 'potluck.sock')), 'the admin socket was closed, not left behind');
    const signed = await signing;
    assert.equal(signed.code, 1, 'the sign command ends with the daemon');
    await assert.rejects(keepAlive.call('health_status'), (e: unknown) => e instanceof RpcTransportError && e.code === 'ECONNREFUSED');
  } finally {
    idle.destroy();
    for (const o of ['bravo', 'coral']) peer(o).proc!.kill('SIGCONT');
  }
});

test('a shutdown that cannot finish ends at its deadline: exit 1, naming the step still open and what the process held', async () => {
  const acme = peer('acme');
  await c.kill(acme, 'SIGTERM');
  await c.start(acme, ['--shutdown-timeout', '2'], { POTLUCK_FAULT: 'stall-shutdown' });
  acme.log.length = 0;
  acme.proc!.kill('SIGTERM');
  const exit = await exitWithin(acme, 2_000 + MARGIN_MS);
  assert.deepEqual(exit, { code: 1, signal: null }, acme.log.slice(-30).join('\n'));
  assert.ok(acme.log.includes('potluck: shutdown did not finish within 2 s; still open: POTLUCK_FAULT=stall-shutdown'), acme.log.slice(-5).join('\n'));
  const line = JSON.parse(acme.log.find((l) => l.includes('"msg":"shutdown did not finish within 2 s; exiting"'))!) as Record<string, unknown>;
  assert.deepEqual(line['steps'], ['POTLUCK_FAULT=stall-shutdown']);
  assert.deepEqual(line['api'], { connections: 0, inFlight: 0 });
  assert.equal(typeof line['resources'], 'object', 'what still holds the process, by kind (nothing but the stalled promise here)');
});

for (const how of ['SIGKILL', 'exit'] as const) {
  test(`a peer whose parent dies by ${how} does not outlive it${how === 'SIGKILL' ? ' (the stdin lifeline), and stops gracefully' : ' (the exit hook)'}`, async () => {
    const acme = peer('acme');
    const script = `const { spawnPotluck } = await import(${JSON.stringify(new URL('../../src/devnet/local-cluster.ts', import.meta.url).href)});
      const p = spawnPotluck(['start', '--home', ${JSON.stringify(acme.home)}, '--pool-target', '0'], ${JSON.stringify(c.env)});
      let out = '';
      p.stdout.on('data', (d) => { out += d; if (out.includes('"started"')) { console.log(JSON.stringify({ pid: p.pid })); ${how === 'exit' ? 'process.exit(0);' : ''} } });`;
    const parent = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const pid = await new Promise<number>((res, rej) => {
      let out = '';
      parent.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /\{"pid":(\d+)\}/.exec(out);
        if (m) res(Number(m[1]));
      });
      parent.once('exit', (code) => { if (!/"pid"/.test(out)) rej(new Error(`the parent exited (${code}) before its peer started`)); });
    });
    if (how === 'SIGKILL') parent.kill('SIGKILL');
    await until(`peer ${pid} gone after its parent's ${how}`, () => !alive(pid), DEADLINE_MS + MARGIN_MS);
    // A graceful stop closes the admin socket (and removes its file); a SIGKILL leaves the file.
    if (how === 'SIGKILL') assert.ok(!existsSync(join(acme.home, 'potluck.sock')), 'stopped gracefully');
  });
}
