import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../../bin/potluck.mjs', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 60_000 });

test('operators: init, cluster create, each signs, verify passes only when all signed', () => {
  const root = mkdtempSync(join(tmpdir(), 'potluck-cli-'));
  const orgs = ['acme', 'bravo', 'cobalt'];
  for (const [k, org] of orgs.entries()) {
    const r = run('init', '--home', join(root, org), '--org', org, '--listen', `/ip4/127.0.0.1/tcp/${7500 + k}`);
    assert.equal(r.status, 0, r.stderr);
    const info = JSON.parse(r.stdout);
    assert.deepEqual(Object.keys(info), ['org', 'peerId', 'addresses', 'api']);
    assert.equal(info.org, org);
  }
  const def = join(root, 'cluster.json');
  let r = run('cluster', 'create', '--name', 'seq1', '--threshold', '2', '--quorum-orgs', '2', ...orgs.flatMap((o) => ['--member', join(root, o, 'peer.json')]), '--out', def);
  assert.equal(r.status, 0, r.stderr);
  r = run('cluster', 'verify', '--definition', def);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /not signed yet by: .*acme/);
  for (const o of orgs) assert.equal(run('cluster', 'sign', '--home', join(root, o), '--definition', def).status, 0);
  r = run('cluster', 'verify', '--definition', def);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).complete, true);
  // An edit after signing is caught and the signers are named.
  const d = JSON.parse(readFileSync(def, 'utf8'));
  writeFileSync(def, JSON.stringify({ ...d, threshold: 3 }));
  r = run('cluster', 'verify', '--definition', def);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /signatures that do not match this definition/);
  // Usage errors name the problem and exit 2.
  r = run('cluster', 'create', '--name', 'seq1', '--threshold', 'two', '--quorum-orgs', '2', '--out', def);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--threshold must be a whole number, got "two"/);
  r = run('init', '--home', join(root, 'acme'), '--org', 'acme');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /refusing to overwrite/);
});
