/**
 * Children follow their parent (issue 12: no orphans). Node has no PR_SET_PDEATHSIG, so a process
 * started with POTLUCK_LIFELINE=stdin treats its stdin as a lifeline: the parent holds the write
 * end of that pipe and never writes; when the parent dies, by SIGKILL too, the kernel closes it,
 * stdin ends, and this process sends itself SIGTERM, which `potluck start` answers with its bounded
 * graceful shutdown and every other command with the default: exit. Event-driven (no polling), and
 * it works through intermediate processes that pass stdin on.
 */
export function watchLifeline(env: NodeJS.ProcessEnv = process.env): void {
  if (env.POTLUCK_LIFELINE !== 'stdin') return;
  let cut = false;
  const onCut = () => {
    if (cut) return;
    cut = true;
    process.kill(process.pid, 'SIGTERM');
  };
  const stdin = process.stdin;
  stdin.once('end', onCut);
  stdin.once('close', onCut);
  stdin.once('error', onCut);
  // Read and discard whatever the parent might write; only the end matters.
  stdin.on('data', () => undefined);
  // The lifeline alone must not keep a finished command alive.
  (stdin as { unref?: () => void }).unref?.();
}
