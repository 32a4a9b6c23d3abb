/**
 * The bounded graceful shutdown's rule (cli/shutdown.ts) and the lifeline (cli/lifeline.ts), in
 * process and with a real child; `test/system/peer-lifecycle.test.ts` runs both in real peers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { openResources, shutdownWithin } from '../../src/cli/shutdown.ts';

test('steps run in order; a failing step is reported and the next one still runs', async () => {
  const ran: string[] = [];
  const r = await shutdownWithin([
    { name: 'a', run: async () => { ran.push('a'); } },
    { name: 'b', run: () => { ran.push('b'); throw new Error('b broke'); } },
    { name: 'c', run: async () => { await new Promise((res) => setTimeout(res, 5)); ran.push('c'); } },
  ], 60_000);
  assert.deepEqual(ran, ['a', 'b', 'c']);
  assert.deepEqual(r, { done: true, pending: [], failed: [{ step: 'b', error: 'b broke' }] });
});

test('a step that never ends: at the deadline, it and the steps after it are named as pending', async () => {
  const ran: string[] = [];
  const r = await shutdownWithin([
    { name: 'api', run: () => { ran.push('api'); } },
    { name: 'daemon', run: () => new Promise<void>(() => undefined) },
    { name: 'after', run: () => { ran.push('after'); } },
  ], 50);
  assert.deepEqual(r, { done: false, pending: ['daemon', 'after'], failed: [] });
  assert.deepEqual(ran, ['api']);
});

test('openResources counts what keeps the process alive, by kind', async () => {
  const t = setTimeout(() => undefined, 10_000);
  try {
    assert.ok((openResources()['Timeout'] ?? 0) >= 1);
  } finally {
    clearTimeout(t);
  }
});

const LIFELINE = new URL('../../src/cli/lifeline.ts', import.meta.url).href;

test('with POTLUCK_LIFELINE=stdin a process ends by SIGTERM when its stdin closes (the parent died); without it, it runs on', async () => {
  const run = (lifeline: boolean) => {
    const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `(await import(${JSON.stringify(LIFELINE)})).watchLifeline(); setInterval(() => {}, 1000);`], {
      env: { ...process.env, ...(lifeline ? { POTLUCK_LIFELINE: 'stdin' } : {}) }, stdio: ['pipe', 'ignore', 'inherit'],
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => p.once('exit', (code, signal) => res({ code, signal })));
    return { p, exited };
  };
  const withLine = run(true);
  const without = run(false);
  try {
    // The write end closes as a dying parent's would; EOF is seen whenever the child starts reading.
    withLine.p.stdin!.end();
    without.p.stdin!.end();
    assert.deepEqual(await withLine.exited, { code: null, signal: 'SIGTERM' }, 'no SIGTERM handler here: the default action ends it');
    const still = await Promise.race([without.exited.then(() => 'exited'), new Promise((r) => setTimeout(() => r('running'), 2_000))]);
    assert.equal(still, 'running');
  } finally {
    withLine.p.kill('SIGKILL');
    without.p.kill('SIGKILL');
  }
});

const LOG = new URL('../../src/cli/log.ts', import.meta.url).href;

test('the log on a stderr whose reader is gone: the process still exits right after logging (no endless retry of the write)', async () => {
  // Logs once its stdin ends (its parent "died"), after the parent closed its end of stderr, then exits.
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `
    const log = (await import(${JSON.stringify(LOG)})).cliLogger();
    process.stdin.once('end', () => { log.info('the parent is gone'); log.info('stopped'); process.exit(0); });
    process.stdin.resume();
    log.info('ready');`], { stdio: ['pipe', 'ignore', 'pipe'] });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null } | 'still running'>((res) => {
    child.once('exit', (code, signal) => res({ code, signal }));
  });
  try {
    await new Promise<void>((res) => child.stderr!.once('data', () => res()));
    child.stderr!.destroy();
    child.stdin!.end();
    const bound = new Promise<'still running'>((res) => setTimeout(() => res('still running'), 10_000).unref());
    assert.deepEqual(await Promise.race([exited, bound]), { code: 0, signal: null });
  } finally {
    child.kill('SIGKILL');
  }
});
