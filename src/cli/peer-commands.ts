import { existsSync, readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { dirname, resolve } from 'node:path';
import type pino from 'pino';
import { CliError, EXIT } from './errors.ts';
import type { Args } from './config.ts';
import { writeFileAtomic } from './files.ts';
import { runKeygen } from '../peer/keygen-ceremony.ts';
import { Daemon } from '../peer/daemon.ts';
import { adminCall, adminSocket, startAdminApi } from '../peer/admin-api.ts';
import { faultsFromEnv } from '../peer/faults.ts';
import { SigningService } from '../peer/signing-service.ts';
import { startSigningApi } from '../peer/signing-api.ts';
import { ethAddress } from '../protocol/sign.ts';
import { shareFile } from '../store/share-file.ts';
import { openKeyShare } from '../store/key-share-vault.ts';
import { VERSION } from './version.ts';
import { openResources, shutdownWithin } from './shutdown.ts';
import { cliLogger } from './log.ts';

/** `potluck keygen`, `start`, `status`, `sign`, `refresh`, `reshare` (issue 3). */
const logger = cliLogger;

/** The share passphrase: --passphrase-file, else POTLUCK_PASSPHRASE. Never a flag value. */
function passphrase(a: Args): string {
  const file = a.str('passphrase-file');
  if (file) {
    if (!existsSync(file)) throw new CliError(`${a.origin('passphrase-file')} ${file} does not exist`);
    return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  }
  const p = process.env.POTLUCK_PASSPHRASE;
  if (!p) throw new CliError('no passphrase: set POTLUCK_PASSPHRASE or pass --passphrase-file FILE');
  return p;
}

const scryptLogN = (): { scryptLogN: number } | object => (process.env.POTLUCK_SCRYPT_LOGN ? { scryptLogN: Number(process.env.POTLUCK_SCRYPT_LOGN) } : {});

export async function keygenCommand(a: Args): Promise<void> {
  const home = a.str('home')!, keyId = a.str('key')!;
  const pass = passphrase(a);
  const out = a.str('out');
  if (out && !existsSync(dirname(resolve(out)))) throw new CliError(`${a.origin('out')} ${out}: directory ${dirname(resolve(out))} does not exist`);
  const print = (result: object) => {
    if (out) writeFileAtomic(out, JSON.stringify(result, null, 2) + '\n');
    console.log(JSON.stringify(result));
  };
  const file = shareFile(home, keyId);
  if (a.flag('exist-ok') && existsSync(file)) {
    let share;
    try {
      share = openKeyShare(new Uint8Array(readFileSync(file)), pass);
    } catch (e) {
      throw new CliError(`${file} exists but cannot be opened: ${(e as Error).message}`, EXIT.failed);
    }
    return print({ keyId, address: ethAddress(share.publicKey), publicKey: '0x' + Buffer.from(share.publicKey.toBytes(false)).toString('hex'), threshold: share.threshold, epoch: share.epoch, file, existed: true });
  }
  const res = await runKeygen({
    home, keyId, passphrase: pass, timeoutMs: a.num('timeout')! * 1000, log: logger(),
    progress: (line) => process.stderr.write(`keygen: ${line}\n`),
    ...scryptLogN(),
  }).catch((e: Error) => {
    if (e.name === 'CeremonyError' || e.name === 'ClusterError' || e.name === 'VaultError') throw new CliError(e.message, EXIT.failed);
    throw e;
  });
  print(a.flag('json') ? res : { keyId: res.keyId, address: res.address, publicKey: res.publicKey, file: res.file, ms: res.ms });
}

export async function startCommand(a: Args): Promise<void> {
  const home = a.str('home')!;
  const log = logger();
  const faults = faultsFromEnv();
  if (faults) log.warn({ fault: process.env.POTLUCK_FAULT }, 'FAULT INJECTION IS ON (testing only)');
  // One daemon per home: a second one would fight over the listen address, socket and database.
  const live = await adminCall(home, 'GET', '/v1/status', undefined, 2000).then(() => true, () => false);
  // Handlers first: a SIGTERM that comes while starting (or the moment the start line is out) must
  // not fall through to Node's default action and skip the graceful stop.
  const deadlineMs = a.num('shutdown-timeout')! * 1000;
  const stopSignal = stopSignals(log, deadlineMs);
  if (live) throw new CliError(`a daemon is already running for ${home} (${adminSocket(home)} answers); stop it first (SIGTERM), or use "potluck status --home ${home}"`, EXIT.failed);
  const daemon = await Daemon.start({
    home, passphrase: passphrase(a), log,
    poolTarget: a.num('pool-target')!,
    signTimeoutMs: a.num('sign-timeout')! * 1000,
    checkpointIntervalMs: a.num('checkpoint-interval')! * 1000,
    refreshEveryMs: (a.num('refresh-every') ?? 0) * 1000,
    ...(a.str('l1-rpc') ? { l1RpcUrl: a.str('l1-rpc')! } : {}),
    ...(faults ? { faults } : {}),
    ...scryptLogN(),
  }).catch((e: Error) => {
    if (['SignError', 'ClusterError', 'VaultError', 'IdentityError', 'StoreError', 'PolicyFileError'].includes(e.name)) throw new CliError(e.message, EXIT.failed);
    if (e.name === 'UnsupportedListenAddressesError') throw new CliError(`cannot listen on this peer's libp2p address (peer.json "addresses"): ${/EADDRINUSE|EADDRNOTAVAIL|EACCES/.exec(e.message)?.[0] ?? e.message.split('\n')[0]}; is another process using it?`, EXIT.failed);
    throw e;
  });
  const signer = new SigningService(daemon, { version: VERSION, log });
  const server = await startAdminApi(daemon, home, signer);
  const api = await startSigningApi({
    home, tlsDir: a.str('tls-dir'), crlFile: a.str('api-crl'), metrics: a.str('metrics'), signer, daemon, log,
    maxConnections: a.num('api-max-connections'), maxCallsPerClient: a.num('api-max-client-calls'),
  }).catch(async (e: Error) => {
    server.close();
    await daemon.stop();
    if (e.name === 'ApiConfigError' || e.name === 'CrlError' || e.name === 'TlsConfigError') throw new CliError(e.message, EXIT.failed);
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new CliError(`the signing API or metrics address is in use (${e.message}); change peer.json's "api" or ${a.origin('metrics')}`, EXIT.failed);
    throw e;
  });
  console.log(JSON.stringify({ started: daemon.self.peerId, org: daemon.self.org, admin: adminSocket(home), api: api?.url ?? null, metrics: api?.metricsUrl ?? null, keys: [...daemon.keys.values()].map((k) => ({ keyId: k.share.keyId, address: k.address })) }));
  // Operators edit policy.json, or replace the TLS files (a new ca.crl), and send SIGHUP; a bad
  // file keeps the previous one (logged).
  process.on('SIGHUP', () => {
    try {
      daemon.reloadPolicy();
      log.info({ path: daemon.policy.path }, 'policy reloaded');
    } catch (e) {
      log.error({ err: (e as Error).message }, 'policy reload failed; keeping the previous policy');
    }
    api?.reloadTls().then(
      (r) => log.info({ crl: r.crl ? { file: r.crl.file, revoked: r.crl.revoked, nextUpdate: r.crl.nextUpdate.toISOString() } : null }, 'TLS files reloaded'),
      (e: Error) => log.error({ err: e.message }, 'TLS reload failed; keeping the previous TLS files'),
    );
  });
  const { signal, at } = await stopSignal;
  log.info({ signal, deadlineSeconds: deadlineMs / 1000 }, 'stopping');
  // Stop taking calls first (both sockets at once; calls in flight get 2 s), then the daemon.
  const r = await shutdownWithin([
    { name: 'admin socket and signing API', run: () => Promise.all([closeWithGrace(server, 2_000), api?.close()]).then(() => undefined) },
    { name: 'daemon (sessions, libp2p, database, audit log)', run: () => daemon.stop() },
    ...(faults?.stallShutdown ? [{ name: 'POTLUCK_FAULT=stall-shutdown', run: () => new Promise<void>(() => undefined) }] : []),
  ], Math.max(0, at + deadlineMs - Date.now()));
  for (const f of r.failed) log.error({ step: f.step, err: f.error }, 'shutdown step failed');
  if (!r.done) {
    const open = { steps: r.pending, api: api?.activity() ?? null, sessions: activeSessions(daemon), resources: openResources() };
    log.error(open, `shutdown did not finish within ${deadlineMs / 1000} s; exiting`);
    throw new CliError(`shutdown did not finish within ${deadlineMs / 1000} s; still open: ${r.pending.join(', ')}`, EXIT.failed);
  }
  log.info('stopped');
}

/**
 * Resolves with the first SIGINT or SIGTERM and when it came. The handlers stay installed: a
 * repeated signal (a process group's SIGTERM, then the parent's) must not fall through to Node's
 * default and cut the graceful stop short; the deadline bounds it instead. A signal during startup
 * waits for the start to finish; a backstop just past the deadline ends the process if the start
 * itself hangs.
 */
function stopSignals(log: pino.Logger, deadlineMs: number): Promise<{ signal: string; at: number }> {
  return new Promise((resolve) => {
    let first: string | null = null;
    const on = (sig: string) => () => {
      if (first) return log.warn({ signal: sig }, `already stopping (since ${first})`);
      first = sig;
      resolve({ signal: sig, at: Date.now() });
      setTimeout(() => {
        log.error({ resources: openResources() }, `stop did not finish within ${deadlineMs / 1000} s; exiting`);
        process.exit(EXIT.failed);
      }, deadlineMs + 1_000).unref();
    };
    process.on('SIGINT', on('SIGINT'));
    process.on('SIGTERM', on('SIGTERM'));
  });
}

/** Stops accepting, closes idle connections, and cuts the others after `graceMs` (a ceremony call can wait minutes). */
function closeWithGrace(server: Server, graceMs: number): Promise<void> {
  return new Promise((res) => {
    const cut = setTimeout(() => server.closeAllConnections(), graceMs);
    server.close(() => {
      clearTimeout(cut);
      res();
    });
    server.closeIdleConnections();
  });
}

/** Sessions the daemon still runs, if it can still say (it may be half stopped). */
function activeSessions(daemon: Daemon): unknown {
  try {
    return (daemon.status() as { sessions?: { active?: number } }).sessions?.active ?? null;
  } catch {
    return null;
  }
}

export async function call(home: string, method: 'GET' | 'POST', path: string, body?: unknown, timeoutMs?: number) {
  try {
    return await adminCall(home, method, path, body, timeoutMs);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ENOENT' || code === 'ECONNREFUSED') throw new CliError(`no daemon is running for ${home} (no ${adminSocket(home)}): start it with "potluck start --home ${home}"`, EXIT.failed);
    throw e;
  }
}

export async function statusCommand(a: Args): Promise<void> {
  const { body } = await call(a.str('home')!, 'GET', '/v1/status');
  if (a.flag('json')) return console.log(JSON.stringify(body));
  const s = body as {
    org: string; peerId: string; cluster: { name: string }; ready: { ready: boolean; reason?: string };
    peers: { org: string; connected: boolean; software?: string; clockOffsetMs?: number }[];
    keys: { keyId: string; epoch: number; address: string; pool: { unused: number }; burnedPairs: string[] }[];
    sessions: { active: number; completed: number; awaitingApprovals?: number }; rollback: { detail: string } | null; scheduledRefresh: { next: string | null; last: { at: string; ok: boolean; detail: string } | null } | null;
  };
  console.log(`${s.org} (${s.peerId}) in cluster ${s.cluster.name}: ${s.ready.ready ? 'ready' : `NOT READY (${s.ready.reason})`}`);
  if (s.rollback) console.log(`ROLLBACK DETECTED: ${s.rollback.detail}`);
  const peer = (p: (typeof s.peers)[number]) =>
    `${p.org} ${p.connected ? 'connected' : 'DOWN'}${p.software ? ` v${p.software}` : ''}${p.clockOffsetMs !== undefined && Math.abs(p.clockOffsetMs) >= 1000 ? ` clock ${p.clockOffsetMs > 0 ? '+' : ''}${(p.clockOffsetMs / 1000).toFixed(1)} s` : ''}`;
  console.log(`peers: ${s.peers.map(peer).join(', ')}`);
  if (!s.keys.length) console.log('keys: none (run "potluck keygen", or join a reshare with --add)');
  for (const k of s.keys) console.log(`key ${k.keyId} epoch ${k.epoch} ${k.address}: ${k.pool.unused} presignatures ready; burned pairs: ${k.burnedPairs.join(', ') || 'none'}`);
  if (s.scheduledRefresh) console.log(`scheduled refresh: next ${s.scheduledRefresh.next ?? 'none'}${s.scheduledRefresh.last ? `; last ${s.scheduledRefresh.last.at} ${s.scheduledRefresh.last.ok ? 'ok' : 'FAILED'}: ${s.scheduledRefresh.last.detail}` : ''}`);
  console.log(`sessions: ${s.sessions.active} active, ${s.sessions.completed} completed${s.sessions.awaitingApprovals ? `; ${s.sessions.awaitingApprovals} request(s) awaiting approvals` : ''}`);
}

export async function signCommand(a: Args): Promise<void> {
  const digest = a.str('digest')!, key = a.str('key');
  if (!/^0x[0-9a-fA-F]{64}$/.test(digest)) throw new CliError(`${a.origin('digest')} must be 0x followed by 64 hex digits (32 bytes), got "${digest}"`);
  const { status, body } = await call(a.str('home')!, 'POST', '/v1/sign', { digest, ...(key ? { key } : {}) });
  if (status !== 200) throw new CliError(`sign refused (${(body.error as { code: string }).code}): ${(body.error as { message: string }).message}`, EXIT.failed);
  console.log(JSON.stringify(body));
}

/** `potluck refresh` / `potluck reshare`: ask the local daemon to run the ceremony with the other holders. */
export async function ceremonyCommand(kind: 'refresh' | 'reshare', a: Args): Promise<void> {
  const key = a.str('key');
  const threshold = kind === 'reshare' ? a.num('threshold') : undefined;
  const remove = kind === 'reshare' ? a.list('remove') : [];
  const add = kind === 'reshare' ? a.list('add') : [];
  const address = kind === 'reshare' ? a.str('address') : undefined;
  if (address !== undefined && !/^0x[0-9a-fA-F]{40}$/.test(address)) throw new CliError(`${a.origin('address')} must be 0x followed by 40 hex digits, got "${address}"`);
  const timeout = a.num('timeout')! * 1000;
  process.stderr.write(`${kind}: waiting for every other holder to run "potluck ${kind}" with the same options …\n`);
  const { status, body } = await call(a.str('home')!, 'POST', '/v1/ceremony', {
    kind, ...(key ? { key } : {}), ...(threshold !== undefined ? { threshold } : {}), ...(remove.length ? { remove } : {}), ...(add.length ? { add } : {}), ...(address ? { address } : {}), timeoutSeconds: timeout / 1000,
  }, timeout + 120_000);
  if (status !== 200) throw new CliError(`${kind} failed (${(body.error as { code: string }).code}): ${(body.error as { message: string }).message}`, EXIT.failed);
  console.log(JSON.stringify(body));
}
