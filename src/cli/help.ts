/** Help text, derived from the command table. */
import { COMMANDS, GROUPS, type CommandSpec, type FlagSpec } from './commands.ts';
import { envName, OTHER_ENV } from './config.ts';
import { VERSION } from './version.ts';

const WIDTH = 100;

/** Wraps `text` to WIDTH, the first line after `head` (padded to `indent`), the rest indented. */
function hang(head: string, text: string, indent: number): string {
  const lines: string[] = [];
  const own = head !== '' && (head.length > indent || (head.length === indent && !head.endsWith(' ')));
  let line = own ? `${head}\n${' '.repeat(indent)}` : head.padEnd(indent);
  let width = line.length - line.lastIndexOf('\n') - 1;
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (width > indent && width + 1 + word.length > WIDTH) {
      lines.push(line.trimEnd());
      line = ' '.repeat(indent);
      width = indent;
    }
    line += (width > indent ? ' ' : '') + word;
    width += (width > indent ? 1 : 0) + word.length;
  }
  lines.push(line.trimEnd());
  return lines.join('\n');
}

const placeholder = (f: FlagSpec) => (f.type === 'boolean' ? '' : ` ${f.value ?? (f.type === 'int' ? 'N' : f.type === 'seconds' ? 'SECONDS' : f.type === 'path' ? 'PATH' : 'VALUE')}`);

function flagLine(f: FlagSpec): string {
  const notes: string[] = [];
  if (f.required) notes.push('required');
  if (f.default !== undefined && f.default !== false) notes.push(`default ${f.default}`);
  if (f.multiple) notes.push('repeatable');
  const env = envName(f);
  if (env) notes.push(`env ${env}`);
  if (f.config === false && f.name !== 'config') notes.push('not read from a config file');
  return hang(`  --${f.name}${placeholder(f)}`, `${f.description}${notes.length ? ` [${notes.join('; ')}]` : ''}`, 28);
}

export function usageLine(c: CommandSpec): string {
  const req = c.flags.filter((f) => f.required).map((f) => `--${f.name}${placeholder(f)}${f.multiple ? ' ...' : ''}`);
  return `potluck ${c.name}${req.length ? ` ${req.join(' ')}` : ''} [flags]${c.args ? ` ${c.args}` : ''}`;
}

export function commandHelp(c: CommandSpec): string {
  return [
    `potluck ${c.name}: ${c.summary}`,
    '',
    hang('usage: ', usageLine(c), 7),
    ...(c.details ? ['', hang('', c.details, 0)] : []),
    '',
    'flags:',
    ...c.flags.map(flagLine),
    hang('  -h, --help', 'show this help', 28),
    '',
    'examples:',
    ...c.examples.map((e) => `  ${e}`),
    '',
    hang('', 'Settings: flags > POTLUCK_<FLAG> env vars > the config file > defaults. Exit codes: 0 ok, 1 failed, 2 usage or config error ("potluck --help").', 0),
  ].join('\n');
}

/** `potluck cluster --help`: the group's subcommands. */
export function groupHelp(group: string): string {
  const subs = COMMANDS.filter((c) => c.name.startsWith(`${group} `));
  return [
    `potluck ${group}: ${GROUPS[group] ?? ''}`,
    '',
    'commands:',
    ...subs.map((c) => hang(`  ${c.name}`, c.summary, 26)),
    '',
    `"potluck ${group} <command> --help" shows a command's flags and examples.`,
  ].join('\n');
}

export function topHelp(): string {
  return [
    `potluck ${VERSION}: threshold-ECDSA (DKLs23) co-signing peers for rollup sequencers`,
    '',
    'usage: potluck <command> [flags]      potluck <command> --help      potluck --version',
    '',
    'commands:',
    ...COMMANDS.map((c) => hang(`  ${c.name}`, c.summary, 26)),
    '',
    'configuration, highest precedence first:',
    hang('  1. flags', '--pool-target 4', 26),
    hang('  2. environment', 'POTLUCK_<FLAG>, the flag name in upper snake case: POTLUCK_HOME=/var/lib/potluck, POTLUCK_METRICS=0.0.0.0:9100, POTLUCK_POOL_TARGET=4. '
      + 'Booleans: true/false/1/0; repeatable flags: comma-separated. An empty value counts as unset.', 26),
    hang('  3. config file', '--config FILE or POTLUCK_CONFIG=FILE: a JSON object whose keys are flag names, e.g. {"home": "/var/lib/potluck", "pool-target": 4, '
      + '"passphrase-file": "/run/secrets/passphrase"}. Each key applies to every command that has that flag. An unknown key or a wrong type is an error '
      + 'naming the key and the file; relative paths are relative to the file.', 26),
    hang('  4. defaults', 'shown in each command\'s --help', 26),
    hang('', 'The share passphrase is never a flag or a config value: set POTLUCK_PASSPHRASE or use --passphrase-file (a config file may name a "passphrase-file").', 2),
    '',
    'other environment:',
    ...Object.entries(OTHER_ENV).map(([k, v]) => hang(`  ${k}`, v, 26)),
    '',
    'exit codes:',
    hang('  0', 'success', 6),
    hang('  1', 'the operation or check failed: a refused signature, a ceremony that timed out (naming the missing peers), a failed audit, policy check or '
      + 'cluster verify, no daemon running for --home (there is no separate "not reachable" code: the message names the socket, peer or address)', 6),
    hang('  2', 'usage or configuration error: unknown command or flag, a bad value, a missing required flag, a bad config file; the message names the '
      + 'flag, env var or file', 6),
  ].join('\n');
}
