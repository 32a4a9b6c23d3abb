import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { recoverAddress, serializeSignature } from 'viem';

const bin = fileURLToPath(new URL('../../bin/potluck.mjs', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 300_000 });

test('potluck sim --json prints the key, then one verifiable signature per line', async () => {
  const r = run('sim', '--t', '2', '--n', '2', '--count', '2', '--json');
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, 3);
  const key = lines[0];
  assert.deepEqual(Object.keys(key), ['kind', 't', 'n', 'publicKey', 'address']);
  assert.equal(key.kind, 'key');
  assert.equal(key.t, 2);
  assert.equal(key.n, 2);
  assert.match(key.publicKey, /^0x04[0-9a-f]{128}$/);
  assert.match(key.address, /^0x[0-9a-f]{40}$/);
  for (const sig of lines.slice(1)) {
    assert.deepEqual(Object.keys(sig), ['kind', 'digest', 'r', 's', 'yParity', 'signers']);
    assert.equal(sig.kind, 'sig');
    assert.deepEqual(sig.signers, [1, 2]);
    assert.ok(sig.yParity === 0 || sig.yParity === 1);
    const addr = await recoverAddress({ hash: sig.digest, signature: serializeSignature({ r: sig.r, s: sig.s, yParity: sig.yParity }) });
    assert.equal(addr.toLowerCase(), key.address);
  }
});

test('potluck sim rejects bad arguments with exit code 2 and names the argument', () => {
  const cases: [string[], RegExp][] = [
    [['sim', '--t', '3', '--n', '2'], /--t must be an integer in 2\.\.2, got "3"/],
    [['sim', '--t', '2', '--n', '17'], /--n must be an integer in 2\.\.16, got "17"/],
    [['sim', '--t', '2'], /--n is required/],
    [['sim', '--t', '2', '--n', '3', '--count', 'x'], /--count must be an integer/],
    [['sim', '--t', '2', '--n', '3', '--bogus'], /Unknown option '--bogus'/],
    [['frobnicate'], /unknown command "frobnicate"/],
  ];
  for (const [args, msg] of cases) {
    const r = run(...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, msg);
    assert.equal(r.stdout, '');
  }
});
