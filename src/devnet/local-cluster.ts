import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * A cluster of real peer processes on loopback, driven through the potluck CLI exactly as
 * operators run it: init → cluster create → every member signs → keygen (all at once) → start.
 * Used by the multi-process tests and the network bench (and later the devnet).
 */
export const BIN = resolve(fileURLToPath(new URL('../../bin/potluck.mjs', import.meta.url)));

export interface PeerProc {
  org: string;
  home: string;
  peerId: string;
  listen: string;
  proc?: ChildProcess;
  log: string[];
  /** The daemon's start line: its API and metrics URLs and its keys. */
  started?: StartLine;
}

export interface StartLine {
  started: string;
  org: string;
  api: string | null;
  metrics: string | null;
  keys: { keyId: string; address: string }[];
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const handedOut = new Set<number>();

/** A loopback TCP port nobody listens on now and that this process has not handed out before. */
export async function freePort(): Promise<number> {
  for (;;) {
    const p = await probePort();
    if (!handedOut.has(p)) {
      handedOut.add(p);
      return p;
    }
  }
}

function probePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

/**
 * Every child this process started and that has not exited. None outlives us:
 *  - we exit (normally, or by an uncaught error): the 'exit' hook SIGKILLs what is left;
 *  - we are SIGKILLed (no hook runs): each child's stdin is a pipe we hold, and with
 *    POTLUCK_LIFELINE=stdin the child stops itself when that pipe closes (`cli/lifeline.ts`).
 */
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

/** A potluck CLI child with the lifeline on, tracked in `children`. */
export function spawnPotluck(args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  const p = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env, POTLUCK_LIFELINE: 'stdin' }, stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(p);
  p.once('exit', () => children.delete(p));
  // Never written to: only its end matters. An EPIPE after the child exited is not an error here.
  p.stdin!.on('error', () => undefined);
  return p;
}

/** A peer's graceful stop may take its --shutdown-timeout (10 s); after that and a margin, SIGKILL. */
export const STOP_GRACE_MS = 15_000;

/** Sends `signal`, then SIGKILL if the child is still there after `killAfterMs`; resolves once it has exited. */
export function endChild(proc: ChildProcess, signal: NodeJS.Signals, killAfterMs = STOP_GRACE_MS): Promise<void> {
  return new Promise((res) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return res();
    const hard = signal === 'SIGKILL' ? undefined : setTimeout(() => proc.kill('SIGKILL'), killAfterMs);
    proc.once('exit', () => {
      clearTimeout(hard);
      res();
    });
    proc.kill(signal);
  });
}

/** Run the CLI to completion. */
export function potluck(args: string[], env: NodeJS.ProcessEnv = {}, onStderr?: (line: string) => void): Promise<RunResult> {
  return new Promise((res) => {
    const p = spawnPotluck(args, env);
    let stdout = '', stderr = '';
    p.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (onStderr) for (const l of d.toString().split('\n')) if (l) onStderr(l);
    });
    p.on('close', (code, signal) => res({ code, signal, stdout, stderr }));
  });
}

export interface ClusterOptions {
  root: string;
  orgs: string[];
  threshold: number;
  quorumOrgs: number;
  quorumOther: number;
  /** f (default: potluck cluster create's, ⌊(n−1)/3⌋). */
  faulty?: number;
  /** `KEY=ORG,…` per key: the orgs that may originate requests (default: every org). */
  requesters?: string[];
  passphrase?: string;
  env?: NodeJS.ProcessEnv;
  /**
   * Write each peer a policy.json that allows raw digests (the admin `potluck sign` path the
   * issue-3 tests use) and nothing else; false: the caller writes its own. Default true.
   */
  policy?: boolean;
}

/** A policy for tests that sign raw digests only: no transactions are expected (issue 3 tests). */
export const RAW_DIGEST_TEST_POLICY = {
  version: 1,
  transactions: {
    chainIds: [31337],
    batchInbox: '0x00000000000000000000000000000000000000ff',
    caps: { gas: '30000000', maxFeePerGas: '500000000000', maxPriorityFeePerGas: '50000000000', maxFeePerBlobGas: '100000000000', maxBlobs: 6 },
    allowBlobsWithoutContent: false,
  },
  blockPayloads: null,
  quorum: { distinctOrgs: 1, otherOrgs: 0 },
  clients: [],
  rawDigests: true,
};

export class LocalCluster {
  readonly peers: PeerProc[] = [];
  readonly definition: string;
  readonly env: NodeJS.ProcessEnv;
  private writePolicy = true;
  private constructor(definition: string, env: NodeJS.ProcessEnv) {
    this.definition = definition;
    this.env = env;
  }

  /** init every org, write and sign the definition, copy it into every home. */
  static async create(o: ClusterOptions): Promise<LocalCluster> {
    mkdirSync(o.root, { recursive: true });
    const env = { POTLUCK_PASSPHRASE: o.passphrase ?? 'correct horse battery staple', POTLUCK_SCRYPT_LOGN: '14', ...o.env };
    const c = new LocalCluster(join(o.root, 'cluster.json'), env);
    for (const org of o.orgs) {
      const home = join(o.root, org);
      const listen = `/ip4/127.0.0.1/tcp/${await freePort()}`;
      const r = await potluck(['init', '--home', home, '--org', org, '--listen', listen, '--api', `127.0.0.1:${await freePort()}`]);
      if (r.code !== 0) throw new Error(`init ${org}: ${r.stderr}`);
      c.peers.push({ org, home, peerId: JSON.parse(r.stdout).peerId, listen, log: [] });
    }
    const members = c.peers.flatMap((p) => ['--member', join(p.home, 'peer.json')]);
    const extra = [...(o.faulty !== undefined ? ['--faulty', String(o.faulty)] : []), ...(o.requesters ?? []).flatMap((r) => ['--requesters', r])];
    const cr = await potluck(['cluster', 'create', '--name', 'devnet', '--threshold', String(o.threshold), '--quorum-orgs', String(o.quorumOrgs), '--quorum-other', String(o.quorumOther), ...extra, ...members, '--out', c.definition]);
    if (cr.code !== 0) throw new Error(`cluster create: ${cr.stderr}`);
    for (const p of c.peers) {
      const s = await potluck(['cluster', 'sign', '--home', p.home, '--definition', c.definition]);
      if (s.code !== 0) throw new Error(`cluster sign ${p.org}: ${s.stderr}`);
    }
    for (const p of c.peers) copyFileSync(c.definition, join(p.home, 'cluster.json'));
    c.writePolicy = o.policy !== false;
    if (o.policy !== false) for (const p of c.peers) writeFileSync(join(p.home, 'policy.json'), JSON.stringify(RAW_DIGEST_TEST_POLICY, null, 2) + '\n');
    return c;
  }

  /** Every member runs `potluck keygen` at once. */
  async keygen(key: string, progress?: (org: string, line: string) => void): Promise<RunResult[]> {
    return Promise.all(this.peers.map((p) => potluck(['keygen', '--home', p.home, '--key', key, '--timeout', '120', '--json'], this.env, (l) => progress?.(p.org, l))));
  }

  /** Start a daemon; resolves when it prints its start line. */
  start(p: PeerProc, extraArgs: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<void> {
    // A second start would drop our handle on the first process, which stopAll() then never stops.
    if (p.proc && p.proc.exitCode === null && p.proc.signalCode === null) {
      return Promise.reject(new Error(`${p.org} is still running (pid ${p.proc.pid}); stop it before starting it again`));
    }
    return new Promise((res, rej) => {
      const proc = spawnPotluck(['start', '--home', p.home, ...extraArgs], { ...this.env, ...env });
      p.proc = proc;
      let started = false;
      let out = '';
      proc.stdout!.on('data', (d: Buffer) => {
        if (started) return;
        out += d.toString();
        const line = out.split('\n').find((l) => l.includes('"started"'));
        if (line) {
          started = true;
          p.started = JSON.parse(line) as StartLine;
          res();
        }
      });
      proc.stderr!.on('data', (d: Buffer) => {
        for (const l of d.toString().split('\n')) if (l) p.log.push(l);
        if (p.log.length > 200_000) p.log.splice(0, p.log.length - 200_000);
      });
      proc.on('exit', (code, signal) => {
        if (!started) rej(new Error(`${p.org} exited (${code ?? signal}) before starting:\n${p.log.slice(-20).join('\n')}`));
      });
    });
  }

  async startAll(extraArgs: string[] = []): Promise<void> {
    await Promise.all(this.peers.map((p) => this.start(p, extraArgs)));
  }

  /** Signals a peer and resolves once it has exited; a SIGTERM'd peer still there after STOP_GRACE_MS is SIGKILLed. */
  kill(p: PeerProc, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    return p.proc ? endChild(p.proc, signal) : Promise.resolve();
  }

  /** Every peer stopped gracefully (SIGTERM), none left running (SIGKILL past STOP_GRACE_MS). */
  async stopAll(): Promise<void> {
    await Promise.all(this.peers.map((p) => this.kill(p, 'SIGTERM')));
  }

  /** A new org: `potluck init` in `<root>/<org>` (not yet in the definition). */
  async addPeer(org: string, root: string): Promise<PeerProc> {
    const home = join(root, org);
    const listen = `/ip4/127.0.0.1/tcp/${await freePort()}`;
    const r = await potluck(['init', '--home', home, '--org', org, '--listen', listen, '--api', `127.0.0.1:${await freePort()}`]);
    if (r.code !== 0) throw new Error(`init ${org}: ${r.stderr}`);
    const p: PeerProc = { org, home, peerId: JSON.parse(r.stdout).peerId, listen, log: [] };
    if (this.writePolicy) writeFileSync(join(home, 'policy.json'), JSON.stringify(RAW_DIGEST_TEST_POLICY, null, 2) + '\n');
    this.peers.push(p);
    return p;
  }

  /**
   * A new cluster definition over `members` (an org joins or leaves): created, signed by every
   * member, copied into every member's home. Running daemons keep the old one until restarted.
   */
  async redefine(members: PeerProc[], o: { name?: string; threshold: number; quorumOrgs: number; quorumOther: number; faulty?: number }): Promise<string> {
    const out = join(this.definition + `.${Date.now()}`);
    const cr = await potluck(['cluster', 'create', '--name', o.name ?? 'devnet', '--threshold', String(o.threshold), '--quorum-orgs', String(o.quorumOrgs), '--quorum-other', String(o.quorumOther), ...(o.faulty !== undefined ? ['--faulty', String(o.faulty)] : []), ...members.flatMap((p) => ['--member', join(p.home, 'peer.json')]), '--out', out]);
    if (cr.code !== 0) throw new Error(`cluster create: ${cr.stderr}`);
    for (const p of members) {
      const s = await potluck(['cluster', 'sign', '--home', p.home, '--definition', out]);
      if (s.code !== 0) throw new Error(`cluster sign ${p.org}: ${s.stderr}`);
    }
    for (const p of members) copyFileSync(out, join(p.home, 'cluster.json'));
    return out;
  }

  writeFile(p: PeerProc, name: string, text: string): void {
    writeFileSync(join(p.home, name), text);
  }
}
