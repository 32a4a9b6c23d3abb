import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { recoverAddress, type Hex } from 'viem';
import { BIN, freePort } from '../../src/devnet/local-cluster.ts';

/**
 * docs/operator-guide.md, run as a new operator would: every shell block marked
 * `<!-- run: NAME [each-org] [parallel|daemon] [exit=N] -->` runs with bash, in document order, in
 * a fresh directory, with `potluck` on PATH (a symlink to bin/potluck.mjs, as the guide's install
 * step makes). Three orgs (acme, bravo, coral) play a 2-of-3 cluster on loopback; each gets the
 * variables of the guide's "values this guide uses" block, with free ports.
 *
 *   (no mode)  once, with the first org's variables (the coordinator's steps, the smoke test)
 *   each-org   once per org, one after the other
 *   parallel   every org at the same time, then wait for all (keygen)
 *   daemon     every org in the background, kept running until the end (start), then SIGTERM
 *
 * Blocks marked `<!-- output: NAME -->` show a command's output: their JSON keys must be the
 * real output's keys.
 */
const GUIDE = fileURLToPath(new URL('../../docs/operator-guide.md', import.meta.url));
const ORGS = ['acme', 'bravo', 'coral'];
/** The run blocks, in order; a block added, renamed or dropped in the guide must be reflected here. */
const EXPECTED_BLOCKS = ['init', 'cluster-create', 'cluster-sign', 'cluster-install', 'policy', 'tls', 'passphrase', 'keygen', 'start', 'check', 'smoke-sign', 'status-json', 'raw-digests-off', 'sign-refused', 'api-health', 'refresh', 'reshare-threshold'];
const SETTINGS = ['ORG', 'PEER_HOME', 'PASSFILE', 'PKI', 'P2P', 'API', 'API_URL', 'API_SAN', 'METRICS'] as const;
type Vars = Record<(typeof SETTINGS)[number], string>;

interface Block {
  name: string;
  code: string;
  eachOrg: boolean;
  parallel: boolean;
  daemon: boolean;
  exit: number;
}

interface Guide {
  blocks: Block[];
  outputs: Map<string, string>;
  settings: string;
}

/** The fenced block that starts on the first non-blank line after `i`. */
function fenceAfter(lines: string[], i: number, lang: string, marker: string): string {
  let j = i + 1;
  while (j < lines.length && lines[j]!.trim() === '') j++;
  assert.equal(lines[j], '```' + lang, `${marker} (line ${i + 1}) must be followed by a \`\`\`${lang} block`);
  const body: string[] = [];
  for (j++; j < lines.length && lines[j] !== '```'; j++) body.push(lines[j]!);
  assert.ok(j < lines.length, `${marker}: unterminated block`);
  return body.join('\n') + '\n';
}

function parseGuide(text: string): Guide {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  const outputs = new Map<string, string>();
  let settings = '';
  lines.forEach((line, i) => {
    const run = /^<!-- run: (\S+)((?: \S+)*) -->$/.exec(line);
    if (run) {
      const opts = run[2]!.trim().split(/\s+/).filter(Boolean);
      for (const o of opts) assert.match(o, /^(each-org|parallel|daemon|exit=\d+)$/, `unknown option "${o}" in ${line}`);
      const exit = opts.find((o) => o.startsWith('exit='));
      blocks.push({ name: run[1]!, code: fenceAfter(lines, i, 'sh', line), eachOrg: opts.includes('each-org'), parallel: opts.includes('parallel'), daemon: opts.includes('daemon'), exit: exit ? Number(exit.slice(5)) : 0 });
    }
    const out = /^<!-- output: (\S+) -->$/.exec(line);
    if (out) outputs.set(out[1]!, fenceAfter(lines, i, 'json', line));
    if (line === '<!-- settings -->') settings = fenceAfter(lines, i, 'sh', line);
  });
  return { blocks, outputs, settings };
}

interface Run {
  org: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const jsonLines = (s: string): Record<string, unknown>[] => s.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
const lastJson = (r: Run): Record<string, unknown> => {
  const all = jsonLines(r.stdout);
  assert.ok(all.length > 0, `${r.org}: no JSON on stdout:\n${r.stdout}\n${r.stderr}`);
  return all.at(-1)!;
};
const tail = (s: string, n = 15) => s.split('\n').slice(-n).join('\n');
const describeRun = (name: string, r: Run) => `block "${name}" for ${r.org}: exit ${r.code ?? r.signal}\n--- stdout\n${tail(r.stdout)}\n--- stderr\n${tail(r.stderr)}`;
const sameKeys = (name: string, example: string, real: Record<string, unknown>) =>
  assert.deepEqual(Object.keys(real).sort(), Object.keys(JSON.parse(example) as object).sort(), `the output shown for "${name}" in the guide has other fields than the real one: ${JSON.stringify(real)}`);
const modeOf = (p: string) => statSync(p).mode & 0o777;

test('the operator guide, run as a new operator: three orgs, 2-of-3, keygen, start, sign, status, refresh, reshare', { timeout: 300_000 }, async (t) => {
  const tools = spawnSync('bash', ['-c', 'for c in openssl curl sha256sum sed; do command -v "$c" >/dev/null || echo "$c"; done'], { encoding: 'utf8' });
  if (tools.error || tools.status !== 0 || tools.stdout.trim()) {
    t.skip(`the guide's commands need bash, openssl, curl, sha256sum and sed; missing: ${tools.error?.message ?? tools.stdout.trim()}`);
    return;
  }
  const guide = parseGuide(readFileSync(GUIDE, 'utf8'));
  assert.deepEqual(guide.blocks.map((b) => b.name), EXPECTED_BLOCKS, 'the guide\'s run blocks (names and order)');
  assert.deepEqual([...guide.settings.matchAll(/^([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]), [...SETTINGS], 'the variables of "The values this guide uses"');

  const root = mkdtempSync(join(tmpdir(), 'potluck-guide-'));
  const work = join(root, 'work');
  const bin = join(root, 'bin');
  for (const d of [work, bin, join(root, 'home')]) mkdirSync(d, { recursive: true });
  symlinkSync(BIN, join(bin, 'potluck')); // the guide's install step: ln -s …/bin/potluck.mjs …/potluck
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('POTLUCK_')));
  Object.assign(env, {
    PATH: `${bin}:${dirname(process.execPath)}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    HOME: join(root, 'home'),
    // A cheaper scrypt for the sealed shares (the default, 2^17, costs ~1 s per seal and open).
    POTLUCK_SCRYPT_LOGN: '14',
  });
  const vars = new Map<string, Vars>();
  for (const org of ORGS) {
    const [p2p, api, metrics] = [await freePort(), await freePort(), await freePort()];
    vars.set(org, {
      ORG: org,
      PEER_HOME: join(root, 'peers', org),
      PASSFILE: join(root, 'secrets', org, 'passphrase'),
      PKI: join(root, 'pki', org),
      P2P: `/ip4/127.0.0.1/tcp/${p2p}`,
      API: `127.0.0.1:${api}`,
      API_URL: `https://127.0.0.1:${api}`,
      API_SAN: 'IP:127.0.0.1',
      METRICS: `127.0.0.1:${metrics}`,
    });
  }
  assert.deepEqual(Object.keys(vars.get('acme')!), [...SETTINGS]);
  const v = (org: string) => vars.get(org)!;

  const daemons = new Map<string, ChildProcess>();
  const daemonLogs = new Map<string, string>();
  const killGroup = (p: ChildProcess, sig: NodeJS.Signals) => {
    try {
      process.kill(-p.pid!, sig);
    } catch {
      /* already gone */
    }
  };

  /** One block for one org, with bash -euo pipefail, in the work directory. */
  const runBlock = (b: Block, org: string, timeoutMs: number): Promise<Run> =>
    new Promise((resolve) => {
      const p = spawn('bash', ['-c', `set -euo pipefail\n${b.code}`], { cwd: work, env: { ...env, ...v(org) }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      let stdout = '', stderr = '';
      p.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
      p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => {
        stderr += `\n[test] block "${b.name}" for ${org} still running after ${timeoutMs / 1000} s; killed`;
        killGroup(p, 'SIGKILL');
      }, timeoutMs);
      p.on('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ org, code, signal, stdout, stderr });
      });
    });

  /** A daemon block: `exec` it (one command), so SIGTERM reaches potluck itself; resolves on its start line. */
  const startDaemon = (b: Block, org: string): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const commands = b.code.split('\n').filter((l) => l.trim() && !l.trim().startsWith('#'));
      assert.equal(commands.length, 1, `daemon block "${b.name}" must be one command`);
      const p = spawn('bash', ['-c', `set -euo pipefail\nexec ${commands[0]}`], { cwd: work, env: { ...env, ...v(org) }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      daemons.set(org, p);
      let out = '', log = '';
      p.stderr!.on('data', (d: Buffer) => {
        log += d.toString();
        if (log.length > 200_000) log = log.slice(-100_000);
        daemonLogs.set(org, log);
      });
      p.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const line = out.split('\n').find((l) => l.includes('"started"'));
        if (line) resolve(JSON.parse(line) as Record<string, unknown>);
      });
      p.on('exit', (code, signal) => reject(new Error(`${org}: "${b.name}" exited (${code ?? signal}) before its start line:\n${tail(log)}`)));
      setTimeout(() => reject(new Error(`${org}: no start line after 60 s:\n${tail(log)}`)), 60_000).unref();
    });

  const results = new Map<string, Run[]>();
  const started = new Map<string, Record<string, unknown>>();
  const timeouts: Record<string, number> = { keygen: 180_000, check: 90_000, refresh: 180_000, 'reshare-threshold': 180_000 };
  let exits: [string, number | null, NodeJS.Signals | null][] = [];
  try {
    for (const b of guide.blocks) {
      const orgs = b.eachOrg ? ORGS : [ORGS[0]!];
      const t0 = performance.now();
      if (b.daemon) {
        for (const [i, s] of (await Promise.all(orgs.map((org) => startDaemon(b, org)))).entries()) started.set(orgs[i]!, s);
      } else {
        const runs: Run[] = [];
        if (b.parallel) runs.push(...(await Promise.all(orgs.map((org) => runBlock(b, org, timeouts[b.name] ?? 60_000)))));
        else for (const org of orgs) runs.push(await runBlock(b, org, timeouts[b.name] ?? 60_000));
        for (const r of runs) assert.equal(r.code, b.exit, describeRun(b.name, r));
        results.set(b.name, runs);
      }
      t.diagnostic(`${b.name}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }

    // What the guide promises, step by step.
    const runs = (name: string) => results.get(name)!;
    for (const r of runs('init')) {
      const info = lastJson(r);
      assert.deepEqual(info, { org: r.org, peerId: info.peerId, addresses: [v(r.org).P2P], api: v(r.org).API });
      assert.match(String(info.peerId), /^12D3KooW/);
      assert.equal(modeOf(join(v(r.org).PEER_HOME, 'identity.key')), 0o600);
      assert.equal(modeOf(v(r.org).PEER_HOME), 0o700);
      assert.ok(existsSync(join(work, `${r.org}.peer.json`)));
      sameKeys('init', guide.outputs.get('init')!, info);
    }
    const created = lastJson(runs('cluster-create')[0]!);
    assert.equal(created.members, 3);
    assert.equal(created.threshold, 2);
    assert.deepEqual(runs('cluster-sign').map((r) => (lastJson(r).missing as string[]).length), [2, 1, 0], 'each signature leaves one member fewer missing');
    const hashes = runs('cluster-install').map((r) => lastJson(r));
    for (const h of hashes) assert.deepEqual(h, { hash: created.hash, complete: true, missing: [], invalid: [] });
    for (const r of runs('policy')) {
      const p = lastJson(r);
      assert.equal(p.valid, true);
      assert.equal(p.rawDigests, true);
      assert.deepEqual(p.quorum, { distinctOrgs: 2, otherOrgs: 1 });
    }
    for (const org of ORGS) {
      for (const f of ['ca.crt', 'server.crt', 'server.key']) assert.ok(existsSync(join(v(org).PEER_HOME, 'tls', f)), `${org}: tls/${f}`);
      assert.equal(modeOf(join(v(org).PEER_HOME, 'tls', 'server.key')), 0o600);
      assert.equal(modeOf(v(org).PASSFILE), 0o600);
    }

    const keygens = runs('keygen').map((r) => lastJson(r));
    const address = String(keygens[0]!.address);
    assert.match(address, /^0x[0-9a-f]{40}$/);
    for (const [i, k] of keygens.entries()) {
      assert.equal(k.address, address, `${ORGS[i]} got another address`);
      assert.equal(k.publicKey, keygens[0]!.publicKey);
      assert.equal(k.keyId, 'batcher');
      assert.equal(k.file, join(v(ORGS[i]!).PEER_HOME, 'keys', 'batcher.share'));
      assert.equal(modeOf(String(k.file)), 0o600);
      sameKeys('keygen', guide.outputs.get('keygen')!, k);
    }
    for (const org of ORGS) {
      const s = started.get(org)!;
      assert.equal(s.org, org);
      assert.equal(s.api, v(org).API_URL);
      assert.equal(s.metrics, `http://${v(org).METRICS}/metrics`);
      assert.deepEqual(s.keys, [{ keyId: 'batcher', address }]);
      sameKeys('start', guide.outputs.get('start')!, s);
    }

    const check = runs('check')[0]!;
    assert.match(check.stdout, /^\{"ready":true\}$/m);
    assert.match(check.stdout, /^acme \(12D3KooW\w+\) in cluster seq1: ready$/m);
    assert.match(check.stdout, /^peers: (bravo|coral) connected v\d+\.\d+\.\d+, (bravo|coral) connected v\d+\.\d+\.\d+$/m);
    assert.ok(check.stdout.includes(`key batcher epoch 0 ${address}: `), check.stdout);

    const sig = lastJson(runs('smoke-sign')[0]!);
    const digest = '0x' + createHash('sha256').update('potluck smoke test').digest('hex');
    assert.equal(sig.digest, digest);
    assert.equal(sig.address, address);
    const signers = (sig.signers as { org: string }[]).map((s) => s.org);
    assert.equal(signers.length, 2);
    assert.ok(signers.includes('acme'), `acme asked, so it signs: ${signers.join(', ')}`);
    const recovered = await recoverAddress({ hash: digest as Hex, signature: { r: sig.r as Hex, s: sig.s as Hex, yParity: sig.yParity as number } });
    assert.equal(recovered.toLowerCase(), address);
    sameKeys('smoke-sign', guide.outputs.get('smoke-sign')!, sig);

    const status = lastJson(runs('status-json')[0]!) as {
      org: string; cluster: { name: string; hash: string; threshold: number; quorum: unknown };
      keys: { keyId: string; epoch: number; address: string; threshold: number; parties: number; burnedPairs: string[]; repeatOffenders: string[] }[];
      ready: { ready: boolean }; recentSignatures: { digest: string }[]; policy: { clients: string[] };
    };
    assert.equal(status.org, 'acme');
    assert.deepEqual({ name: status.cluster.name, hash: status.cluster.hash, threshold: status.cluster.threshold, quorum: status.cluster.quorum },
      { name: 'seq1', hash: `0x${String(created.hash)}`, threshold: 2, quorum: { distinctOrgs: 2, otherOrgs: 1 } });
    assert.equal(status.keys.length, 1);
    const key = status.keys[0]!;
    assert.deepEqual({ keyId: key.keyId, epoch: key.epoch, address: key.address, threshold: key.threshold, parties: key.parties, burnedPairs: key.burnedPairs, repeatOffenders: key.repeatOffenders },
      { keyId: 'batcher', epoch: 0, address, threshold: 2, parties: 3, burnedPairs: [], repeatOffenders: [] });
    assert.deepEqual(status.ready, { ready: true });
    assert.ok(status.recentSignatures.some((s) => s.digest === digest));
    assert.deepEqual(status.policy.clients, ['batcher']);

    for (const r of runs('raw-digests-off')) {
      const reloaded = lastJson(r);
      assert.equal(reloaded.reloaded, join(v(r.org).PEER_HOME, 'policy.json'));
      assert.ok(readFileSync(join(v(r.org).PEER_HOME, 'policy.json'), 'utf8').includes('"rawDigests": false'));
    }
    const refusal = 'potluck: sign refused (bad-request): policy refused (raw-digest): raw digests are refused (policy rawDigests: false); only transactions and block payloads are signed';
    assert.equal(runs('sign-refused')[0]!.stderr.trim(), refusal);
    assert.ok(readFileSync(GUIDE, 'utf8').includes(refusal), 'the guide shows the refusal as the CLI prints it');

    // Ceremonies: the same key (public key, address) at a new epoch; the reshare raises the threshold.
    const publicKey = keygens[0]!.publicKey;
    for (const r of runs('refresh')) {
      const c = lastJson(r);
      assert.deepEqual({ ...c, holders: [...(c.holders as string[])].sort(), ms: 0 }, { kind: 'refresh', keyId: 'batcher', epoch: 1, threshold: 2, holders: ORGS, publicKey, ms: 0 });
      sameKeys('refresh', guide.outputs.get('refresh')!, c);
    }
    for (const r of runs('reshare-threshold')) {
      const c = lastJson(r);
      assert.equal(c.kind, 'reshare');
      assert.equal(c.epoch, 2);
      assert.equal(c.threshold, 3);
      assert.equal(c.publicKey, publicKey);
    }
    const after = lastJson(await runBlock({ name: 'status after the ceremonies', code: 'potluck status --home "$PEER_HOME" --json\n', eachOrg: false, parallel: false, daemon: false, exit: 0 }, 'coral', 30_000)) as { keys: { epoch: number; address: string; threshold: number; parties: number }[] };
    assert.deepEqual(after.keys.map((k) => ({ epoch: k.epoch, address: k.address, threshold: k.threshold, parties: k.parties })), [{ epoch: 2, address, threshold: 3, parties: 3 }]);

    const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
    assert.deepEqual(lastJson(runs('api-health')[0]!), { jsonrpc: '2.0', id: 1, result: version });
  } finally {
    // "SIGTERM or Ctrl-C stops it cleanly": stop every daemon, whatever happened above.
    exits = await Promise.all([...daemons].map(([org, p]) => new Promise<[string, number | null, NodeJS.Signals | null]>((resolve) => {
      if (p.exitCode !== null || p.signalCode !== null) return resolve([org, p.exitCode, p.signalCode]);
      const force = setTimeout(() => killGroup(p, 'SIGKILL'), 20_000);
      p.once('exit', (code, signal) => {
        clearTimeout(force);
        resolve([org, code, signal]);
      });
      p.kill('SIGTERM');
    })));
    for (const p of daemons.values()) killGroup(p, 'SIGKILL'); // anything left in its process group
  }
  assert.equal(exits.length, ORGS.length);
  for (const [org, code, signal] of exits) {
    assert.equal(code, 0, `${org}'s daemon after SIGTERM: ${code ?? signal}\n${tail(daemonLogs.get(org) ?? '')}`);
    assert.match(daemonLogs.get(org) ?? '', /"msg":"stopping"/);
  }
  rmSync(root, { recursive: true, force: true });
});
