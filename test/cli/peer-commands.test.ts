import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// The peer commands' errors, as an operator meets them: exit code and a message naming the fix.
const bin = fileURLToPath(new URL('../../bin/potluck.mjs', import.meta.url));
const run = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ status: number | null; stderr: string }> =>
  new Promise((res) => {
    const p = spawn(process.execPath, [bin, ...args], { env: { ...process.env, POTLUCK_PASSPHRASE: '', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (status) => res({ status, stderr }));
  });

test('peer commands name what is missing and how to fix it', async () => {
  const root = mkdtempSync(join(tmpdir(), 'potluck-peer-cli-'));
  const home = join(root, 'acme');
  assert.equal((await run(['init', '--home', home, '--org', 'acme'])).status, 0);
  const cases: [string[], NodeJS.ProcessEnv, number, RegExp][] = [
    [['status', '--home', home], {}, 1, /no daemon is running for .*acme.*start it with "potluck start --home/],
    [['sign', '--home', home, '--digest', '0x12'], {}, 2, /--digest must be 0x followed by 64 hex digits \(32 bytes\), got "0x12"/],
    [['start', '--home', home], {}, 2, /no passphrase: set POTLUCK_PASSPHRASE or pass --passphrase-file FILE/],
    [['start', '--home', home, '--passphrase-file', join(root, 'nope')], {}, 2, /--passphrase-file .*nope does not exist/],
    [['start', '--home', home], { POTLUCK_PASSPHRASE: 'long enough passphrase' }, 1, /no cluster definition at .*cluster\.json: copy the signed definition there/],
    [['keygen', '--home', home, '--key', 'Bad Name'], { POTLUCK_PASSPHRASE: 'long enough passphrase' }, 1, /key name "Bad Name" must be 1–64 of a-z/],
    [['keygen', '--home', home], {}, 2, /--key is required/],
    [['refresh', '--home', home, '--threshold', '3'], {}, 2, /refresh keeps the holders and the threshold; use "potluck reshare/],
    [['reshare', '--home', home, '--threshold', 'x'], {}, 2, /--threshold must be a whole number, got "x"/],
    [['start', '--home', home, '--pool-target', '-1'], { POTLUCK_PASSPHRASE: 'long enough passphrase' }, 2, /--pool-target must be a whole number, got "-1"|option/],
  ];
  for (const [args, env, code, re] of cases) {
    const r = await run(args, env);
    assert.equal(r.status, code, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re, args.join(' '));
  }
  // An unsigned definition: keygen refuses until every member signed.
  const other = join(root, 'bravo');
  assert.equal((await run(['init', '--home', other, '--org', 'bravo', '--listen', '/ip4/127.0.0.1/tcp/7911'])).status, 0);
  const def = join(root, 'cluster.json');
  assert.equal((await run(['cluster', 'create', '--name', 's', '--threshold', '2', '--quorum-orgs', '2', '--member', join(home, 'peer.json'), '--member', join(other, 'peer.json'), '--out', def])).status, 0);
  copyFileSync(def, join(home, 'cluster.json'));
  const r = await run(['keygen', '--home', home, '--key', 'k1'], { POTLUCK_PASSPHRASE: 'long enough passphrase' });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /missing: .*(acme|bravo)/);
});
