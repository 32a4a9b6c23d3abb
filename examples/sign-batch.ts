/**
 * The batcher's side, as an example: sign one OP Stack calldata batch through a peer's op-signer
 * API over mutual TLS (src/api/client.ts as a viem transport), post it to the L1 and wait for the
 * receipt. docker-compose.yml's "client" service runs it against acme's peer:
 *
 *   node --import tsx examples/sign-batch.ts --api https://acme:8645 --tls-dir /consortium/client \
 *     --client batcher --l1 http://l1:8545 --key-file /consortium/keys/acme.json --fund
 *
 * --tls-dir holds ca.crt (the CA of the peer's server certificate) and CLIENT.crt / CLIENT.key
 * ("potluck tls issue --usage client --name CLIENT"); CLIENT must be a client in the peers' policy.json.
 * Prints one JSON line; exit 0 once the batch is mined, 1 if anything failed, 2 on bad arguments.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createWalletClient, getAddress, isAddress, parseGwei, toHex, type Address } from 'viem';
import { RpcClient, viemTransport } from '../src/api/client.ts';
import { batchInboxFor, L2_CHAIN_ID } from '../src/devnet/devnet.ts';
import { fund, l1Client } from '../src/devnet/l1-node.ts';
import { calldataFor, sampleChannel } from '../src/devnet/sample-batch.ts';

export const OPTIONS = {
  api: { type: 'string' },
  'tls-dir': { type: 'string' },
  client: { type: 'string', default: 'batcher' },
  l1: { type: 'string' },
  /** The group address, or a file with {"address": …} (the output of "potluck keygen --out"). */
  address: { type: 'string' },
  'key-file': { type: 'string' },
  /** Give the group address 100 ETH first (hardhat_setBalance: dev chains only). */
  fund: { type: 'boolean', default: false },
} as const;

class UsageError extends Error {}

export async function signBatch(argv: string[]): Promise<Record<string, unknown>> {
  const { values: v } = parseArgs({ args: argv, options: OPTIONS, strict: true });
  for (const k of ['api', 'tls-dir', 'l1'] as const) if (!v[k]) throw new UsageError(`--${k} is required`);
  const from = getAddress(groupAddress(v.address, v['key-file']));
  const tls = (f: string) => readFileSync(join(v['tls-dir']!, f));
  const signer = new RpcClient({ url: v.api!, ca: tls('ca.crt'), cert: tls(`${v.client}.crt`), key: tls(`${v.client}.key`), timeoutMs: 30_000 });
  try {
    const health = await signer.call('health_status');
    const l1 = l1Client(v.l1!);
    const chainId = await l1.getChainId();
    if (v.fund) await fund(v.l1!, from, 10n ** 20n);
    // Small frames: calldata txs are capped by op-batcher's --max-l1-tx-size-bytes.
    const data = toHex(calldataFor(sampleChannel({ maxFrameData: 2000 }).frames));
    const to = batchInboxFor(L2_CHAIN_ID);
    const block = await l1.getBlock();
    const tip = parseGwei('1');
    // op-signer serves no eth_chainId: the transport answers it locally.
    const wallet = createWalletClient({ account: from, transport: viemTransport(signer, { chainId }) });
    const t0 = performance.now();
    const raw = await wallet.signTransaction({
      chain: null, account: from, type: 'eip1559', chainId, to, value: 0n, data,
      nonce: await l1.getTransactionCount({ address: from, blockTag: 'pending' }),
      gas: await l1.estimateGas({ account: from, to, data }),
      maxPriorityFeePerGas: tip, maxFeePerGas: 2n * (block.baseFeePerGas ?? 1n) + tip,
    });
    const signMs = Math.round(performance.now() - t0);
    const txHash = await l1.sendRawTransaction({ serializedTransaction: raw });
    const receipt = await l1.waitForTransactionReceipt({ hash: txHash });
    if (receipt.status !== 'success') throw new Error(`batch tx ${txHash} reverted`);
    return { health, from, batchInbox: to, txHash, block: Number(receipt.blockNumber), signMs, calldataBytes: (data.length - 2) / 2 };
  } finally {
    signer.close();
  }
}

function groupAddress(address: string | undefined, keyFile: string | undefined): Address {
  if (address) {
    if (!isAddress(address)) throw new UsageError(`--address must be 0x + 40 hex digits, got "${address}"`);
    return address;
  }
  if (!keyFile) throw new UsageError('give --address 0x… or --key-file FILE (from "potluck keygen --out FILE")');
  const a = (JSON.parse(readFileSync(keyFile, 'utf8')) as { address?: string }).address;
  if (!a || !isAddress(a)) throw new UsageError(`${keyFile} has no "address"`);
  return a;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  signBatch(process.argv.slice(2)).then(
    (r) => console.log(JSON.stringify(r)),
    (e: Error & { code?: string }) => {
      console.error(`sign-batch: ${e.message}`);
      process.exitCode = e instanceof UsageError || e.code?.startsWith('ERR_PARSE_ARGS') ? 2 : 1;
    },
  );
}
