import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { CliError } from './errors.ts';
import { runKeygen } from '../peer/keygen-ceremony.ts';
import { Daemon } from '../peer/daemon.ts';
import { adminCall, adminSocket, startAdminApi } from '../peer/admin-api.ts';
import { faultsFromEnv } from '../peer/faults.ts';
import { SigningService } from '../peer/signing-service.ts';
import { startSigningApi } from '../peer/signing-api.ts';
import { VERSION } from './version.ts';

/** `potluck keygen`, `potluck start`, `potluck status`, `potluck sign` (issue 3). */
const logger = () => pino({ level: process.env.POTLUCK_LOG_LEVEL ?? 'info', base: { pid: process.pid } }, pino.destination(2));

/** The share passphrase: --passphrase-file, else POTLUCK_PASSPHRASE. Never a flag value. */
function passphrase(file: string | undefined): string {
  if (file) {
    if (!existsSync(file)) throw new CliError(`--passphrase-file ${file} does not exist`);
    return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  }
  const p = process.env.POTLUCK_PASSPHRASE;
  if (!p) throw new CliError('no passphrase: set POTLUCK_PASSPHRASE or pass --passphrase-file FILE');
  return p;
}

const seconds = (name: string, v: string | undefined, dflt: number): number => {
  if (v === undefined) return dflt;
  if (!/^\d+(\.\d+)?$/.test(v)) throw new CliError(`--${name} must be a number of seconds, got "${v}"`);
  return Number(v) * 1000;
};

export async function keygenCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { home: { type: 'string' }, key: { type: 'string' }, 'passphrase-file': { type: 'string' }, timeout: { type: 'string' }, json: { type: 'boolean', default: false } }, strict: true });
  if (!values.home) throw new CliError('--home is required');
  if (!values.key) throw new CliError('--key is required (a name for the new key, e.g. batcher)');
  const pass = passphrase(values['passphrase-file']);
  const logN = process.env.POTLUCK_SCRYPT_LOGN ? Number(process.env.POTLUCK_SCRYPT_LOGN) : undefined;
  const res = await runKeygen({
    home: values.home, keyId: values.key, passphrase: pass, timeoutMs: seconds('timeout', values.timeout, 300_000), log: logger(),
    progress: (line) => process.stderr.write(`keygen: ${line}\n`),
    ...(logN ? { scryptLogN: logN } : {}),
  }).catch((e: Error) => {
    if (e.name === 'CeremonyError' || e.name === 'ClusterError' || e.name === 'VaultError') throw new CliError(e.message, 1);
    throw e;
  });
  console.log(JSON.stringify(values.json ? res : { keyId: res.keyId, address: res.address, publicKey: res.publicKey, file: res.file, ms: res.ms }));
}

export async function startCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { home: { type: 'string' }, 'passphrase-file': { type: 'string' }, 'pool-target': { type: 'string' }, 'sign-timeout': { type: 'string' }, 'tls-dir': { type: 'string' }, metrics: { type: 'string' }, 'checkpoint-interval': { type: 'string' } }, strict: true });
  if (!values.home) throw new CliError('--home is required');
  const pool = values['pool-target'];
  if (pool !== undefined && !/^\d+$/.test(pool)) throw new CliError(`--pool-target must be a whole number, got "${pool}"`);
  const log = logger();
  const faults = faultsFromEnv();
  if (faults) log.warn({ fault: process.env.POTLUCK_FAULT }, 'FAULT INJECTION IS ON (testing only)');
  const daemon = await Daemon.start({
    home: values.home, passphrase: passphrase(values['passphrase-file']), log,
    ...(pool !== undefined ? { poolTarget: Number(pool) } : {}),
    signTimeoutMs: seconds('sign-timeout', values['sign-timeout'], 5000),
    checkpointIntervalMs: seconds('checkpoint-interval', values['checkpoint-interval'], 30_000),
    ...(faults ? { faults } : {}),
    ...(process.env.POTLUCK_SCRYPT_LOGN ? { scryptLogN: Number(process.env.POTLUCK_SCRYPT_LOGN) } : {}),
  }).catch((e: Error) => {
    if (['SignError', 'ClusterError', 'VaultError', 'IdentityError', 'StoreError', 'PolicyFileError'].includes(e.name)) throw new CliError(e.message, 1);
    throw e;
  });
  const signer = new SigningService(daemon, { version: VERSION, log });
  const server = await startAdminApi(daemon, values.home, signer);
  const api = await startSigningApi(values.home, values['tls-dir'], values.metrics, signer, daemon, log).catch(async (e: Error) => {
    server.close();
    await daemon.stop();
    if (e.name === 'ApiConfigError') throw new CliError(e.message, 1);
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new CliError(`the signing API address is in use: ${e.message}`, 1);
    throw e;
  });
  console.log(JSON.stringify({ started: daemon.self.peerId, org: daemon.self.org, admin: adminSocket(values.home), api: api?.url ?? null, metrics: api?.metricsUrl ?? null, keys: [...daemon.keys.values()].map((k) => ({ keyId: k.share.keyId, address: k.address })) }));
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

async function call(home: string, method: 'GET' | 'POST', path: string, body?: unknown, timeoutMs?: number) {
  try {
    return await adminCall(home, method, path, body, timeoutMs);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ENOENT' || code === 'ECONNREFUSED') throw new CliError(`no daemon is running for ${home} (no ${adminSocket(home)}): start it with "potluck start --home ${home}"`, 1);
    throw e;
  }
}

export async function statusCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { home: { type: 'string' }, json: { type: 'boolean', default: false } }, strict: true });
  if (!values.home) throw new CliError('--home is required');
  const { body } = await call(values.home, 'GET', '/v1/status');
  if (values.json) return console.log(JSON.stringify(body));
  const s = body as { org: string; peerId: string; cluster: { name: string }; peers: { org: string; connected: boolean }[]; keys: { keyId: string; epoch: number; address: string; pool: { unused: number }; burnedPairs: string[] }[]; sessions: { active: number; completed: number } };
  console.log(`${s.org} (${s.peerId}) in cluster ${s.cluster.name}`);
  console.log(`peers: ${s.peers.map((p) => `${p.org} ${p.connected ? 'connected' : 'DOWN'}`).join(', ')}`);
  for (const k of s.keys) console.log(`key ${k.keyId} epoch ${k.epoch} ${k.address}: ${k.pool.unused} presignatures ready; burned pairs: ${k.burnedPairs.join(', ') || 'none'}`);
  console.log(`sessions: ${s.sessions.active} active, ${s.sessions.completed} completed`);
}

export async function signCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { home: { type: 'string' }, digest: { type: 'string' }, key: { type: 'string' } }, strict: true });
  if (!values.home) throw new CliError('--home is required');
  if (!values.digest) throw new CliError('--digest is required (0x + 64 hex digits)');
  if (!/^0x[0-9a-fA-F]{64}$/.test(values.digest)) throw new CliError(`--digest must be 0x followed by 64 hex digits (32 bytes), got "${values.digest}"`);
  const { status, body } = await call(values.home, 'POST', '/v1/sign', { digest: values.digest, ...(values.key ? { key: values.key } : {}) });
  if (status !== 200) throw new CliError(`sign refused (${(body.error as { code: string }).code}): ${(body.error as { message: string }).message}`, 1);
  console.log(JSON.stringify(body));
}

/** `potluck refresh` / `potluck reshare`: ask the local daemon to run the ceremony with the other holders. */
export async function ceremonyCommand(kind: 'refresh' | 'reshare', argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { home: { type: 'string' }, key: { type: 'string' }, threshold: { type: 'string' }, remove: { type: 'string', multiple: true }, timeout: { type: 'string' } }, strict: true });
  if (!values.home) throw new CliError('--home is required');
  if (kind === 'refresh' && (values.threshold || values.remove)) throw new CliError('refresh keeps the holders and the threshold; use "potluck reshare --threshold T --remove ORG" to change them');
  if (values.threshold !== undefined && !/^\d+$/.test(values.threshold)) throw new CliError(`--threshold must be a whole number, got "${values.threshold}"`);
  const timeout = seconds('timeout', values.timeout, 300_000);
  process.stderr.write(`${kind}: waiting for every other holder to run "potluck ${kind}" with the same options …\n`);
  const { status, body } = await call(values.home, 'POST', '/v1/ceremony', {
    kind, ...(values.key ? { key: values.key } : {}), ...(values.threshold ? { threshold: Number(values.threshold) } : {}), ...(values.remove ? { remove: values.remove } : {}), timeoutSeconds: timeout / 1000,
  }, timeout + 120_000);
  if (status !== 200) throw new CliError(`${kind} failed (${(body.error as { code: string }).code}): ${(body.error as { message: string }).message}`, 1);
  console.log(JSON.stringify(body));
}
