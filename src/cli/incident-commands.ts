/**
 * Operator decisions about the anti-equivocation records and this peer's own state (issue 11),
 * made through the running daemon so that its audit log records them: `potluck policy release`
 * and `potluck audit ack-rollback`.
 */
import { isAddress } from 'viem';
import type { Args } from './config.ts';
import { CliError, EXIT } from './errors.ts';
import { call } from './peer-commands.ts';

const refused = (what: string, body: Record<string, unknown>): never => {
  const e = body.error as { code: string; message: string };
  throw new CliError(`${what} refused (${e.code}): ${e.message}`, EXIT.failed);
};

export async function releaseCommand(a: Args): Promise<void> {
  const from = a.str('from')!;
  if (!isAddress(from, { strict: false })) throw new CliError(`${a.origin('from')} must be an address (0x + 40 hex), got "${from}"`);
  const force = a.flag('force');
  const reason = a.str('reason') ?? '';
  if (force && !reason.trim()) throw new CliError(`--force needs ${a.origin('reason')}: the audit log records why a slot was freed`);
  const { status, body } = await call(a.str('home')!, 'POST', '/v1/policy/release', {
    chainId: a.num('chain-id')!, from, nonce: a.num('nonce')!, force, reason, ...(a.str('l1-rpc') ? { l1RpcUrl: a.str('l1-rpc') } : {}),
  });
  if (status !== 200) refused('release', body);
  console.log(JSON.stringify(body));
  if (body.released !== true) throw new CliError(String(body.detail), EXIT.failed);
}

export async function ackRollbackCommand(a: Args): Promise<void> {
  const { status, body } = await call(a.str('home')!, 'POST', '/v1/rollback/ack', { reason: a.str('reason')! });
  if (status !== 200) refused('acknowledgement', body);
  console.log(JSON.stringify(body));
}
