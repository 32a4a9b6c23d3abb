import { auditDevnet, postSampleBatch, startDevnet } from '../devnet/devnet.ts';
import { CliError } from './errors.ts';
import type { Args } from './config.ts';

/** `potluck devnet [--home DIR] [--once]` (issue 4): what `npm start` runs. */
export async function devnetCommand(a: Args): Promise<void> {
  const values = { home: a.str('home')!, once: a.flag('once') };
  const say = (line: string) => process.stderr.write(`devnet: ${line}\n`);
  const t0 = performance.now();
  const d = await startDevnet({ home: values.home, say }).catch((e: Error) => {
    throw new CliError(`devnet did not start: ${e.message}`, 1);
  });
  let failed: Error | undefined;
  try {
    say(`signing a sample calldata batch through ${d.file.peers[0]!.org}'s op-signer API (eth_signTransaction over mTLS, viem) …`);
    const r = await postSampleBatch(d);
    const summary = {
      groupAddress: d.file.groupAddress,
      batchInbox: d.file.batchInbox,
      txHash: r.txHash,
      block: Number(r.blockNumber),
      signLatencyMs: Math.round(r.latencyMs),
      coSigners: r.signers,
      batch: `${r.frames} frame(s), ${r.bytes} bytes of calldata`,
      devnetFile: `${values.home}/devnet.json`,
      upSeconds: Math.round((performance.now() - t0) / 1000),
    };
    say(`posted batch ${r.txHash} in block ${r.blockNumber}; signed in ${Math.round(r.latencyMs)} ms by ${r.signers.join(' + ')}`);
    // Step 7: the auditor's check of every peer's log. With --once the peers stop first, so no
    // session is still being written; while serving, pool refills may be mid-session.
    if (values.once) await d.cluster.stopAll();
    const audit = auditDevnet(d);
    const sigs = audit.sessions.filter((s) => s.kind === 'signature');
    say(`audit: ${audit.ok ? 'every check holds' : `${audit.failures.length} failure(s)`} over ${audit.logs.length} logs, ${audit.sessions.length} sessions (${sigs.length} signature(s)); "potluck audit verify --cluster ${d.cluster.definition} <home>/audit.log ..." repeats it`);
    for (const f of audit.failures.slice(0, 5)) say(`  audit FAILED ${f.message}`);
    console.log(JSON.stringify({ ...summary, audit: { ok: audit.ok, logs: audit.logs.length, sessions: audit.sessions.length, failures: audit.failures.length } }));
    if (!audit.ok) throw new Error(`the audit of the devnet's logs failed: ${audit.failures[0]!.message}`);
  } catch (e) {
    failed = e as Error;
    say(`the demo batch failed: ${failed.message}`);
  }
  if (values.once || failed) {
    await d.stop();
    if (failed) throw new CliError(`devnet demo failed: ${failed.message}`, 1);
    return;
  }
  say(`serving: L1 ${d.file.l1RpcUrl}, APIs ${d.file.peers.map((p) => p.apiUrl).join(' ')}; Ctrl-C stops everything`);
  // Handlers stay installed: the SIGTERM a process group gets, repeated, must not cut the stop short.
  // Each peer stops within its --shutdown-timeout, or is SIGKILLed (LocalCluster), then the L1.
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = () => {
      if (stopping) return say('already stopping …');
      stopping = true;
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  say('stopping …');
  await d.stop();
}
