import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import { existsSync, rmSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { Daemon, SignError } from './daemon.ts';
import type { SigningService } from './signing-service.ts';

/**
 * The local admin API (issue 3): HTTP over a Unix socket in the peer's home, mode 0600, so only
 * the operator's account reaches it. `potluck status` and `potluck sign` are its clients. The
 * batcher's mTLS JSON-RPC API is a separate surface (issue 4).
 *   GET  /v1/status
 *   POST /v1/sign       {"digest":"0x…32 bytes","key":"name"?}
 *   POST /v1/ceremony   {"kind":"refresh"|"reshare","key"?,"threshold"?,"remove"?:[org],"add"?:[org],"address"?,"timeoutSeconds"?}
 */
export const adminSocket = (home: string) => join(home, 'potluck.sock');
const MAX_BODY = 64 * 1024;

export class AdminError extends Error {
  override readonly name = 'AdminError';
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const HEX32 = /^0x[0-9a-fA-F]{64}$/;

function readJson<T>(req: IncomingMessage, fail: (e: unknown) => void, then: (body: T) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (c: Buffer) => {
    size += c.length;
    if (size > MAX_BODY) req.destroy();
    else chunks.push(c);
  });
  req.on('end', () => {
    let body: T;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as T;
    } catch {
      return fail(new AdminError(400, 'bad-request', 'body is not JSON'));
    }
    then(body);
  });
}

export async function startAdminApi(daemon: Daemon, home: string, signer: SigningService): Promise<Server> {
  const path = adminSocket(home);
  if (existsSync(path)) {
    const alive = await new Promise<boolean>((res) => {
      const r = request({ socketPath: path, path: '/v1/status', timeout: 1000 }, () => res(true));
      r.on('error', () => res(false));
      r.end();
    });
    if (alive) throw new AdminError(409, 'already-running', `another daemon is serving ${path}`);
    rmSync(path);
  }
  const server = createServer((req, res) => {
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body) + '\n');
    };
    const fail = (e: unknown) => {
      if (e instanceof AdminError) return reply(e.status, { error: { code: e.code, message: e.message } });
      if (e instanceof SignError) return reply(e.code === 'no-quorum' ? 503 : e.code === 'failed' ? 502 : 400, { error: { code: e.code, message: e.message } });
      reply(500, { error: { code: 'internal', message: `${(e as Error).name}: ${(e as Error).message}` } });
    };
    if (req.method === 'GET' && req.url === '/v1/status') return reply(200, daemon.status());
    if (req.method === 'POST' && req.url === '/v1/ceremony') {
      return readJson(req, fail, (body: { kind?: unknown; key?: unknown; threshold?: unknown; remove?: unknown; add?: unknown; address?: unknown; timeoutSeconds?: unknown }) => {
        if (body.kind !== 'refresh' && body.kind !== 'reshare') return fail(new AdminError(400, 'bad-request', 'kind must be "refresh" or "reshare"'));
        if (body.key !== undefined && typeof body.key !== 'string') return fail(new AdminError(400, 'bad-request', 'key must be a string'));
        if (body.threshold !== undefined && !Number.isInteger(body.threshold)) return fail(new AdminError(400, 'bad-request', 'threshold must be a whole number'));
        if (body.remove !== undefined && !(Array.isArray(body.remove) && body.remove.every((o) => typeof o === 'string'))) return fail(new AdminError(400, 'bad-request', 'remove must be a list of org names'));
        if (body.add !== undefined && !(Array.isArray(body.add) && body.add.every((o) => typeof o === 'string'))) return fail(new AdminError(400, 'bad-request', 'add must be a list of org names'));
        if (body.address !== undefined && !(typeof body.address === 'string' && /^0x[0-9a-fA-F]{40}$/.test(body.address))) return fail(new AdminError(400, 'bad-request', 'address must be 0x followed by 40 hex digits'));
        const timeout = typeof body.timeoutSeconds === 'number' && body.timeoutSeconds > 0 ? body.timeoutSeconds * 1000 : 300_000;
        daemon
          .ceremony({ kind: body.kind, ...(body.key ? { keyId: body.key as string } : {}), ...(body.threshold ? { threshold: body.threshold as number } : {}), ...(body.remove ? { remove: body.remove as string[] } : {}), ...(body.add ? { add: body.add as string[] } : {}), ...(body.address ? { address: body.address as string } : {}) }, timeout)
          .then((r) => reply(200, r), (e: Error) => (e.name === 'CeremonyError' ? fail(new AdminError(409, 'ceremony-failed', e.message)) : fail(e)));
      });
    }
    if (req.method === 'POST' && req.url === '/v1/policy/reload') {
      try {
        const f = daemon.reloadPolicy();
        return reply(200, { reloaded: daemon.policy.path, quorum: f.quorum, clients: f.clients.map((c) => c.name) });
      } catch (e) {
        return fail(new AdminError(400, 'bad-policy', (e as Error).message));
      }
    }
    if (req.method === 'POST' && req.url === '/v1/rollback/ack') {
      return readJson(req, fail, (body: { reason?: unknown }) => {
        if (typeof body.reason !== 'string' || !body.reason.trim()) return fail(new AdminError(400, 'bad-request', 'reason must say what was investigated'));
        try {
          return reply(200, daemon.acknowledgeRollback(body.reason));
        } catch (e) {
          return fail(new AdminError(409, 'no-rollback', (e as Error).message));
        }
      });
    }
    if (req.method === 'POST' && req.url === '/v1/policy/release') {
      return readJson(req, fail, (body: { chainId?: unknown; from?: unknown; nonce?: unknown; force?: unknown; reason?: unknown; l1RpcUrl?: unknown }) => {
        if (!Number.isSafeInteger(body.chainId) || (body.chainId as number) < 1) return fail(new AdminError(400, 'bad-request', 'chainId must be a whole number ≥ 1'));
        if (typeof body.from !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(body.from)) return fail(new AdminError(400, 'bad-request', 'from must be 0x followed by 40 hex digits'));
        if (!Number.isSafeInteger(body.nonce) || (body.nonce as number) < 0) return fail(new AdminError(400, 'bad-request', 'nonce must be a whole number ≥ 0'));
        if (body.l1RpcUrl !== undefined && typeof body.l1RpcUrl !== 'string') return fail(new AdminError(400, 'bad-request', 'l1RpcUrl must be a URL'));
        daemon.releaseSlot({
          chainId: body.chainId as number, from: body.from, nonce: body.nonce as number, force: body.force === true, reason: typeof body.reason === 'string' ? body.reason : '',
          ...(typeof body.l1RpcUrl === 'string' ? { l1RpcUrl: body.l1RpcUrl } : {}),
        }).then((r) => reply(200, r), fail);
      });
    }
    if (req.method === 'POST' && req.url === '/v1/sign') {
      return readJson(req, fail, (body: { digest?: unknown; key?: unknown }) => {
        if (typeof body.digest !== 'string' || !HEX32.test(body.digest)) return fail(new AdminError(400, 'bad-request', 'digest must be 0x followed by 64 hex digits'));
        if (body.key !== undefined && typeof body.key !== 'string') return fail(new AdminError(400, 'bad-request', 'key must be a string'));
        signer.signDigest(body.key as string | undefined, Buffer.from(body.digest.slice(2), 'hex')).then((r) => reply(200, r), fail);
      });
    }
    reply(404, { error: { code: 'not-found', message: `${req.method} ${req.url} is not an admin endpoint (GET /v1/status, POST /v1/sign, POST /v1/ceremony, POST /v1/policy/reload, POST /v1/policy/release, POST /v1/rollback/ack)` } });
  });
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(path, () => res());
  });
  chmodSync(path, 0o600);
  return server;
}

/** Client side, for the CLI. */
export function adminCall(home: string, method: 'GET' | 'POST', path: string, body?: unknown, timeoutMs = 60_000): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const r = request({ socketPath: adminSocket(home), path, method, timeout: timeoutMs, headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
        } catch (e) {
          reject(e);
        }
      });
    });
    r.on('timeout', () => r.destroy(new Error(`no answer from the daemon within ${timeoutMs} ms`)));
    r.on('error', reject);
    r.end(body === undefined ? undefined : JSON.stringify(body));
  });
}
