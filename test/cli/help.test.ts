import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { COMMANDS, GROUPS } from '../../src/cli/commands.ts';
import { envName, OTHER_ENV } from '../../src/cli/config.ts';

// The help of every command in the table, and exit code 2 for an unknown flag, from the real binary.
const bin = fileURLToPath(new URL('../../bin/potluck.mjs', import.meta.url));
type Run = { code: number; stdout: string; stderr: string };
const run = (args: string[]): Promise<Run> =>
  new Promise((res) => {
    execFile(process.execPath, [bin, ...args], { timeout: 60_000, env: { ...process.env, POTLUCK_CONFIG: '' } }, (err, stdout, stderr) => {
      res({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
/** Two at a time (the machines have 2 cores). */
async function all<T, R>(items: T[], f: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += 2) out.push(...(await Promise.all(items.slice(i, i + 2).map(f))));
  return out;
}

test('potluck <command> --help: exit 0, usage, every flag with its env var, the examples', async () => {
  const results = await all(COMMANDS, async (c) => ({ c, r: await run([...c.name.split(' '), '--help']) }));
  for (const { c, r } of results) {
    assert.equal(r.code, 0, `${c.name} --help: ${r.stderr}`);
    assert.equal(r.stderr, '');
    assert.ok(r.stdout.startsWith(`potluck ${c.name}: `), `${c.name}: title`);
    assert.match(r.stdout, new RegExp(`usage: potluck ${c.name}`));
    for (const f of c.flags) {
      assert.match(r.stdout, new RegExp(`^  --${f.name}\\b`, 'm'), `${c.name} --help mentions --${f.name}`);
      const e = envName(f);
      if (e) assert.ok(r.stdout.replace(/\s+/g, ' ').includes(`env ${e}`), `${c.name} --help names ${e}`);
    }
    for (const ex of c.examples) assert.ok(r.stdout.includes(ex), `${c.name}: example ${ex}`);
    assert.match(r.stdout.replace(/\s+/g, ' '), /Exit codes: 0 ok, 1 failed, 2 usage or config error/);
  }
});

test('potluck --help lists every command, the precedence, the other variables and the exit codes', async () => {
  const [top, short, help, bare, version] = await Promise.all([run(['--help']), run(['-h']), run(['help', 'keygen']), run([]), run(['--version'])]);
  assert.equal(top.code, 0);
  assert.equal(short.stdout, top.stdout);
  for (const c of COMMANDS) assert.match(top.stdout, new RegExp(`^  ${c.name} `, 'm'));
  assert.match(top.stdout, /1\. flags[\s\S]*2\. environment\s+POTLUCK_<FLAG>[\s\S]*3\. config file\s+--config FILE or POTLUCK_CONFIG=FILE[\s\S]*4\. defaults/);
  for (const k of Object.keys(OTHER_ENV)) assert.match(top.stdout, new RegExp(`^  ${k}\\b`, 'm'));
  assert.match(top.stdout, /exit codes:\n {2}0 {3}success\n {2}1 {3}the operation or check failed[\s\S]* {2}2 {3}usage or configuration error/);
  assert.equal(help.code, 0);
  assert.ok(help.stdout.startsWith('potluck keygen: '));
  assert.equal(bare.code, 2, 'no command is a usage error');
  assert.match(bare.stderr, /^potluck \S+: /);
  assert.match(version.stdout, /^\d+\.\d+\.\d+/);
  for (const g of Object.keys(GROUPS)) {
    const r = await run([g, '--help']);
    assert.equal(r.code, 0);
    for (const c of COMMANDS.filter((x) => x.name.startsWith(`${g} `))) assert.match(r.stdout, new RegExp(`^  ${c.name} `, 'm'));
  }
});

test('an unknown flag, command or subcommand exits 2 and says what to do', async () => {
  const results = await all(COMMANDS, async (c) => ({ c, r: await run([...c.name.split(' '), '--no-such-flag']) }));
  for (const { c, r } of results) {
    assert.equal(r.code, 2, `${c.name} --no-such-flag: ${r.stderr}`);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, `potluck: Unknown option '--no-such-flag' for "potluck ${c.name}"; see "potluck ${c.name} --help"\n`);
  }
  const [cmd, sub, typo] = await Promise.all([run(['frobnicate']), run(['cluster', 'frob']), run(['start', '--home', 'x', '--pool-targt', '3'])]);
  assert.deepEqual([cmd.code, sub.code, typo.code], [2, 2, 2]);
  assert.match(cmd.stderr, /unknown command "frobnicate"; "potluck --help" lists the commands/);
  assert.match(sub.stderr, /unknown cluster command "frob"; "potluck cluster" has: create, sign, verify/);
  assert.match(typo.stderr, /Unknown option '--pool-targt' for "potluck start" \(did you mean "--pool-target"\?\)/);
});
