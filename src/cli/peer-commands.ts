import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import pino from 'pino';
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

/** `potluck keygen`, `start`, `status`, `sign`, `refresh`, `reshare` (issue 3). */
const logger = () => pino({ level: process.env.POTLUCK_LOG_LEVEL ?? 'info', base: { pid: process.pid } }, pino.destination(2));

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
  const api = await startSigningApi(home, a.str('tls-dir'), a.str('metrics'), signer, daemon, log).catch(async (e: Error) => {
    server.close();
    await daemon.stop();
    if (e.name === 'ApiConfigError') throw new CliError(e.message, EXIT.failed);
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new CliError(`the signing API or metrics address is in use (${e.message}); change peer.json's "api" or ${a.origin('metrics')}`, EXIT.failed);
    throw e;
  });
  console.log(JSON.stringify({ started: daemon.self.peerId, org: daemon.self.org, admin: adminSocket(home), api: api?.url ?? null, metrics: api?.metricsUrl ?? null, keys: [...daemon.keys.values()].map((k) => ({ keyId: k.share.keyId, address: k.address })) }));
  // Operators edit policy.json and send SIGHUP; a bad file keeps the old policy (logged).
  process.on('SIGHUP', () => {
    try {
      daemon.reloadPolicy();
      log.info({ path: daemon.policy.path }, 'policy reloaded');
    } catch (e) {
      log.error({ err: (e as Error).message }, 'policy reload failed; keeping the previous policy');
    }
  });
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  log.info('stopping');
  server.close();
  await api?.close();
  await daemon.stop();
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
    sessions: { active: number; completed: number }; rollback: { detail: string } | null; scheduledRefresh: { next: string | null; last: { at: string; ok: boolean; detail: string } | null } | null;
  };
  console.log(`${s.org} (${s.peerId}) in cluster ${s.cluster.name}: ${s.ready.ready ? 'ready' : `NOT READY (${s.ready.reason})`}`);
  if (s.rollback) console.log(`ROLLBACK DETECTED: ${s.rollback.detail}`);
  const peer = (p: (typeof s.peers)[number]) =>
    `${p.org} ${p.connected ? 'connected' : 'DOWN'}${p.software ? ` v${p.software}` : ''}${p.clockOffsetMs !== undefined && Math.abs(p.clockOffsetMs) >= 1000 ? ` clock ${p.clockOffsetMs > 0 ? '+' : ''}${(p.clockOffsetMs / 1000).toFixed(1)} s` : ''}`;
  console.log(`peers: ${s.peers.map(peer).join(', ')}`);
  if (!s.keys.length) console.log('keys: none (run "potluck keygen", or join a reshare with --add)');
  for (const k of s.keys) console.log(`key ${k.keyId} epoch ${k.epoch} ${k.address}: ${k.pool.unused} presignatures ready; burned pairs: ${k.burnedPairs.join(', ') || 'none'}`);
  if (s.scheduledRefresh) console.log(`scheduled refresh: next ${s.scheduledRefresh.next ?? 'none'}${s.scheduledRefresh.last ? `; last ${s.scheduledRefresh.last.at} ${s.scheduledRefresh.last.ok ? 'ok' : 'FAILED'}: ${s.scheduledRefresh.last.detail}` : ''}`);
  console.log(`sessions: ${s.sessions.active} active, ${s.sessions.completed} completed`);
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
