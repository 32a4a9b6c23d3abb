import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { COMMANDS, command } from '../../src/cli/commands.ts';
import { envName, FLAG_ENV, loadConfigFile, OTHER_ENV, resolveArgs, SETTINGS } from '../../src/cli/config.ts';
import { CliError } from '../../src/cli/errors.ts';
import { policyCommand } from '../../src/cli/policy-command.ts';

const dir = mkdtempSync(join(tmpdir(), 'potluck-config-'));
let n = 0;
const configFile = (json: unknown): string => {
  const p = join(dir, `c${n++}.json`);
  writeFileSync(p, typeof json === 'string' ? json : JSON.stringify(json));
  return p;
};
const START = command('start');
/** A CliError with exit code 2 whose message matches. */
const usage = (re: RegExp) => (e: unknown) => {
  assert.ok(e instanceof CliError, String(e));
  assert.equal(e.exitCode, 2);
  assert.match(e.message, re);
  return true;
};

test('precedence: flag > POTLUCK_<FLAG> > config file > default, and each value knows where it came from', () => {
  const cfg = configFile({ home: '/cfg/home', 'pool-target': 3, metrics: '127.0.0.1:9300' });
  const env = { POTLUCK_CONFIG: cfg, POTLUCK_POOL_TARGET: '4' };
  let a = resolveArgs(START, ['--pool-target', '5'], env);
  assert.equal(a.num('pool-target'), 5);
  assert.equal(a.origin('pool-target'), '--pool-target');
  a = resolveArgs(START, [], env);
  assert.equal(a.num('pool-target'), 4);
  assert.equal(a.origin('pool-target'), 'POTLUCK_POOL_TARGET');
  assert.equal(a.str('metrics'), '127.0.0.1:9300');
  assert.equal(a.origin('metrics'), `"metrics" in ${cfg}`);
  assert.equal(a.str('home'), '/cfg/home', 'a required flag may come from the config file');
  a = resolveArgs(START, [], { POTLUCK_CONFIG: cfg });
  assert.equal(a.num('pool-target'), 3);
  a = resolveArgs(START, ['--home', '/h'], {});
  assert.equal(a.num('pool-target'), 2, 'the default');
  assert.equal(a.num('sign-timeout'), 5);
  assert.equal(a.str('metrics'), undefined);
  // --config beats POTLUCK_CONFIG; an empty env var counts as unset.
  const other = configFile({ home: '/other' });
  assert.equal(resolveArgs(START, ['--config', other], { POTLUCK_CONFIG: cfg }).str('home'), '/other');
  assert.equal(resolveArgs(START, [], { POTLUCK_CONFIG: cfg, POTLUCK_HOME: '' }).str('home'), '/cfg/home');
  assert.equal(resolveArgs(START, [], { POTLUCK_CONFIG: cfg, POTLUCK_HOME: '/env' }).str('home'), '/env');
});

test('one config file serves every command: keys apply where the command has the flag', () => {
  const cfg = configFile({ home: '/var/lib/potluck', key: 'batcher', metrics: '0.0.0.0:9100', timeout: 600, org: 'acme', listen: '/dns4/acme/tcp/7400' });
  assert.equal(resolveArgs(command('status'), ['--config', cfg], {}).str('home'), '/var/lib/potluck');
  const kg = resolveArgs(command('keygen'), ['--config', cfg], {});
  assert.deepEqual([kg.str('key'), kg.num('timeout')], ['batcher', 600]);
  assert.equal(resolveArgs(command('init'), ['--config', cfg], {}).str('listen'), '/dns4/acme/tcp/7400');
  // The devnet deletes its home: never from POTLUCK_HOME or a config file.
  const dn = resolveArgs(command('devnet'), ['--config', cfg], { POTLUCK_HOME: '/var/lib/potluck' });
  assert.equal(dn.str('home'), '.devnet');
  assert.equal(resolveArgs(command('devnet'), [], { POTLUCK_DEVNET_HOME: '/tmp/dn' }).str('home'), '/tmp/dn');
});

test('values: typed, range-checked, paths relative to the config file; errors name the flag, variable or file', () => {
  const cfg = configFile({ home: 'peer', 'passphrase-file': '../secret', 'tls-dir': '/abs/tls' });
  const a = resolveArgs(START, ['--config', cfg], {});
  assert.equal(a.str('home'), join(dir, 'peer'));
  assert.equal(a.str('passphrase-file'), join(dir, '..', 'secret'));
  assert.equal(a.str('tls-dir'), '/abs/tls');
  assert.equal(resolveArgs(START, ['--home', 'rel'], {}).str('home'), 'rel', 'flags and env vars stay relative to the working directory');
  assert.throws(() => resolveArgs(START, ['--home', 'h', '--sign-timeout', 'soon'], {}), usage(/^--sign-timeout must be a number of seconds, got "soon"$/));
  assert.throws(() => resolveArgs(START, ['--home', 'h'], { POTLUCK_POOL_TARGET: 'x' }), usage(/^POTLUCK_POOL_TARGET must be a whole number, got "x"$/));
  assert.throws(() => resolveArgs(command('sim'), ['--t', '2', '--n', '3'], { POTLUCK_COUNT: '2000000' }), usage(/^POTLUCK_COUNT must be an integer in 0\.\.1000000, got "2000000"$/));
  assert.throws(() => resolveArgs(command('sim'), ['--t', '2', '--config', configFile({ n: 40 })], {}), usage(new RegExp(`^"n" in ${cfg.replace(/c\d+\.json$/, '')}c\\d+\\.json must be an integer in 2\\.\\.16, got 40$`)));
  assert.throws(() => resolveArgs(command('status'), ['--home', 'h'], { POTLUCK_JSON: 'maybe' }), usage(/^POTLUCK_JSON must be true or false \(or 1 \/ 0\), got "maybe"$/));
  assert.equal(resolveArgs(command('status'), ['--home', 'h'], { POTLUCK_JSON: 'yes' }).flag('json'), true);
  assert.deepEqual(resolveArgs(command('reshare'), ['--home', 'h'], { POTLUCK_REMOVE: 'echo, delta' }).list('remove'), ['echo', 'delta']);
  assert.deepEqual(resolveArgs(command('reshare'), ['--home', 'h', '--config', configFile({ remove: ['echo'] })], {}).list('remove'), ['echo']);
  assert.throws(() => resolveArgs(command('tls issue'), ['--ca', 'c', '--name', 'n', '--out', 'o', '--usage', 'both'], {}), usage(/^--usage must be one of server, client; got "both"$/));
  assert.throws(() => resolveArgs(command('keygen'), ['--home', 'h'], {}), usage(/^--key is required \(a name for the new key, e.g\. batcher\)$/));
  assert.throws(() => resolveArgs(command('cluster verify'), [], {}), usage(/^--definition is required$/));
});

test('config files are strict: unknown keys, wrong types, a passphrase and bad JSON are refused, naming key and file', () => {
  const bad = configFile({ hme: '/x', 'pool-target': '2', json: 'yes', member: 'a.json', timeout: -1, 'quorum-orgs': 1.5, passphrase: 'hunter22', config: 'other.json', home: '/ok' });
  assert.throws(() => loadConfigFile(bad), (e: unknown) => {
    assert.ok(e instanceof CliError && e.exitCode === 2);
    assert.equal(e.message, `config file ${bad}: `
      + '"hme": not a potluck setting (did you mean "home"?); '
      + '"pool-target" must be a number, got "2"; '
      + '"json" must be true or false, got "yes"; '
      + '"member" must be a list of strings, got "a.json"; '
      + '"timeout" must be a number of seconds, got -1; '
      + '"quorum-orgs" must be a whole number, got 1.5; '
      + '"passphrase": a passphrase never goes in a config file; set POTLUCK_PASSPHRASE or name a "passphrase-file"; '
      + '"config": a config file cannot name another one');
    assert.ok(!e.message.includes('hunter22'), 'the passphrase is not echoed');
    return true;
  });
  // Any command that reads it refuses to run, even one that would not use the bad keys.
  assert.throws(() => resolveArgs(command('status'), [], { POTLUCK_CONFIG: bad }), usage(/^config file .*"hme": not a potluck setting/));
  assert.throws(() => loadConfigFile(configFile('{"home": ')), usage(/^config file .*c\d+\.json is not JSON: /));
  assert.throws(() => loadConfigFile(configFile('["home"]')), usage(/must be a JSON object whose keys are flag names/));
  assert.throws(() => resolveArgs(START, ['--config', join(dir, 'missing.json')], {}), usage(/^cannot read config file .*missing\.json \(from --config or POTLUCK_CONFIG\): ENOENT$/));
  assert.throws(() => resolveArgs(START, [], { POTLUCK_CONFIG: join(dir, 'gone.json') }), usage(/gone\.json/));
});

test('the command line: unknown flags, stray arguments and a passphrase flag name the fix', () => {
  assert.throws(() => resolveArgs(START, ['--hom', 'x'], {}), usage(/^Unknown option '--hom' for "potluck start" \(did you mean "--home"\?\); see "potluck start --help"$/));
  assert.throws(() => resolveArgs(START, ['--passphrase', 'x'], {}), usage(/^Unknown option '--passphrase': a passphrase is never a flag value; set POTLUCK_PASSPHRASE or pass --passphrase-file FILE$/));
  assert.throws(() => resolveArgs(command('status'), ['--home', 'h', 'extra'], {}), usage(/^"potluck status" takes no arguments, got "extra"/));
  assert.throws(() => resolveArgs(command('refresh'), ['--home', 'h', '--remove', 'x'], {}), usage(/^refresh keeps the holders and the threshold; use "potluck reshare/));
  assert.throws(() => resolveArgs(START, ['--home'], {}), usage(/argument missing.*see "potluck start --help"/));
  assert.deepEqual(resolveArgs(command('audit verify'), ['--cluster', 'c.json', 'a.log', 'b.log'], {}).positionals, ['a.log', 'b.log']);
  assert.throws(() => resolveArgs(START, ['--home', 'h'], {}).str('digest'), /declares no flag --digest/);
});

test('the table: one type per flag name, one env var per flag, 1–3 examples, no passphrase flag', () => {
  const kinds = new Map<string, string>();
  const kind = (t: string, multiple?: boolean) => (multiple ? 'list' : t === 'path' ? 'string' : t === 'seconds' ? 'number' : t === 'int' ? 'int' : t);
  for (const c of COMMANDS) {
    assert.ok(c.summary && c.examples.length >= 1 && c.examples.length <= 3, `${c.name}: summary and 1–3 examples`);
    assert.ok(c.examples.some((e) => e.includes(`potluck ${c.name}`)) || c.name === 'devnet', `${c.name}: an example runs it`);
    assert.equal(new Set(c.flags.map((f) => f.name)).size, c.flags.length, `${c.name}: duplicate flags`);
    for (const f of c.flags) {
      assert.ok(f.description, `${c.name} --${f.name}: description`);
      assert.ok(!f.name.includes('passphrase') || f.name.endsWith('passphrase-file'), `${c.name} --${f.name}: a passphrase is never a flag`);
      assert.ok(!f.multiple || f.type === 'string' || f.type === 'path', `${c.name} --${f.name}: only strings repeat`);
      assert.ok(f.default === undefined || !f.required, `${c.name} --${f.name}: required with a default`);
      const k = kind(f.type, f.multiple);
      assert.equal(kinds.get(f.name) ?? k, k, `--${f.name} has two types (${kinds.get(f.name)} and ${k}); a config key must mean one thing`);
      kinds.set(f.name, k);
      const e = envName(f);
      if (e) {
        assert.ok(!(e in OTHER_ENV), `${e} is both a flag's and another variable`);
        assert.equal(FLAG_ENV.get(e), f.name, `${e} names two flags`);
      }
    }
    for (const m of Object.keys(c.misplaced ?? {})) assert.ok(!c.flags.some((f) => f.name === m), `${c.name}: --${m} is both a flag and misplaced`);
  }
  assert.equal(FLAG_ENV.get('POTLUCK_POOL_TARGET'), 'pool-target');
  assert.equal(FLAG_ENV.get('POTLUCK_CONFIG'), 'config');
  assert.ok(!SETTINGS.has('config') && SETTINGS.has('passphrase-file'));
});

test('policyCommand (argv, synchronous) goes through the same table', () => {
  assert.throws(() => policyCommand(['check']), { name: 'CliError', message: '--file is required (the org policy, e.g. DIR/policy.json)' });
  assert.throws(() => policyCommand(['verify']), { name: 'CliError', message: /^unknown policy command "verify"/ });
  assert.throws(() => policyCommand(['toString']), { name: 'CliError', message: /^unknown policy command "toString"/ });
  assert.throws(() => policyCommand(['export', '--home', dir, '--out', 'x', '--cluster', '0x12']), { name: 'CliError', message: '--cluster must be an address (0x + 40 hex), got "0x12"' });
});
