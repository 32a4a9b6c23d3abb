/**
 * The confirmed nonce of each key's address on the L1 (issue 11, `--l1-rpc`), for the approvers'
 * nonce window: polled in the background and read synchronously from a cache, so a policy
 * evaluation never waits on the network. An account not read yet (or an L1 that is down) has no
 * value, and the window then falls back to the highest nonce approved.
 */
import type { Logger } from 'pino';
import { createPublicClient, http, type Address } from 'viem';

const POLL_MS = 4000;

export class L1Nonces {
  private readonly client;
  private readonly log: Logger;
  private chainId: number | undefined;
  private readonly confirmed = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private lastError = '';

  constructor(url: string, log: Logger) {
    this.client = createPublicClient({ transport: http(url, { retryCount: 2, timeout: 5000 }) });
    this.log = log;
  }

  /** Start polling the nonces of `addresses` (read at every tick: keys change with ceremonies). */
  start(addresses: () => string[]): void {
    const tick = async () => {
      try {
        this.chainId ??= await this.client.getChainId();
        for (const a of addresses()) this.confirmed.set(a.toLowerCase(), await this.client.getTransactionCount({ address: a as Address, blockTag: 'latest' }));
        this.lastError = '';
      } catch (e) {
        const msg = (e as Error).message.split('\n')[0]!;
        if (msg !== this.lastError) this.log.warn({ err: msg }, 'cannot read confirmed nonces from the L1; the nonce window falls back to the highest approved nonce');
        this.lastError = msg;
      }
    };
    void tick();
    this.timer = setInterval(() => void tick(), POLL_MS);
    this.timer.unref();
  }

  /** The confirmed nonce of `from` on `chainId`, if this L1 is that chain and it was read. */
  nonce(chainId: number, from: string): number | undefined {
    return this.chainId === chainId ? this.confirmed.get(from.toLowerCase()) : undefined;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
