/**
 * Where a command's settings come from, highest first: flags, `POTLUCK_<FLAG>` env vars, a JSON
 * config file (`--config FILE` or POTLUCK_CONFIG; keys are flag names), the table's defaults.
 * Everything is derived from the command table (commands.ts).
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { COMMANDS, type CommandSpec, type FlagSpec } from './commands.ts';
import { CliError } from './errors.ts';

export type Value = string | number | boolean | string[];

/** Env vars that are not flags. */
export const OTHER_ENV: Record<string, string> = {
  POTLUCK_PASSPHRASE: 'the passphrase that seals key shares (or --passphrase-file); never a flag or config value',
  POTLUCK_SCRYPT_LOGN: 'scrypt cost (log2 N) when sealing shares (default 17)',
  POTLUCK_LOG_LEVEL: 'level of the JSON logs on stderr: trace, debug, info (default), warn, error',
  POTLUCK_FAULT: 'fault injection for tests; never set it in production',
  POTLUCK_LIFELINE: '"stdin": exit (SIGTERM) when stdin closes, i.e. when the parent process that holds the pipe dies (tests, devnet)',
  POTLUCK_BACKUP_PASSPHRASE: 'the passphrase that seals backups (or --backup-passphrase-file; default: the share passphrase)',
};

/** `pool-target` → `POTLUCK_POOL_TARGET`, unless the flag names its own (or null: none). */
export function envName(f: FlagSpec): string | null {
  if (f.env === null) return null;
  return f.env ?? `POTLUCK_${f.name.toUpperCase().replace(/-/g, '_')}`;
}

type Kind = 'string' | 'number' | 'boolean' | 'array';
const kindOf = (f: FlagSpec): Kind => (f.multiple ? 'array' : f.type === 'boolean' ? 'boolean' : f.type === 'int' || f.type === 'seconds' ? 'number' : 'string');
const KIND_TEXT: Record<Kind, string> = { string: 'a string', number: 'a number', boolean: 'true or false', array: 'a list of strings' };

/** Every config key: the flags of all commands that may come from a config file, by name. */
export const SETTINGS: ReadonlyMap<string, FlagSpec> = (() => {
  const m = new Map<string, FlagSpec>();
  for (const f of COMMANDS.flatMap((c) => c.flags)) if (f.config !== false && !m.has(f.name)) m.set(f.name, f);
  return m;
})();

/** Env var name → flag name, for every flag of every command. */
export const FLAG_ENV: ReadonlyMap<string, string> = new Map(
  COMMANDS.flatMap((c) => c.flags).flatMap((f) => { const e = envName(f); return e ? [[e, f.name] as const] : []; }),
);

const show = (v: unknown) => JSON.stringify(v) ?? String(v);

/** ` (did you mean "x"?)` for the closest candidate within a small edit distance, else ''. */
export function didYouMean(word: string, candidates: Iterable<string>, prefix = ''): string {
  let best: string | undefined;
  let bestD = Math.max(1, Math.floor(word.length / 3));
  for (const c of candidates) {
    const d = c.startsWith(word) && word.length >= 3 ? 0 : distance(word, c);
    if (d < bestD || (d === bestD && best === undefined)) [best, bestD] = [c, d];
  }
  return best === undefined ? '' : ` (did you mean "${prefix}${best}"?)`;
}

function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

export interface ConfigFile {
  path: string;
  values: ReadonlyMap<string, unknown>;
}

/** Reads and strictly validates a config file; a CliError (exit 2) names the file and every bad key. */
export function loadConfigFile(path: string, read: (p: string) => string = (p) => readFileSync(p, 'utf8')): ConfigFile {
  let text: string;
  try {
    text = read(path);
  } catch (e) {
    throw new CliError(`cannot read config file ${path} (from --config or POTLUCK_CONFIG): ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new CliError(`config file ${path} is not JSON: ${(e as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new CliError(`config file ${path}: must be a JSON object whose keys are flag names, e.g. {"home": "/var/lib/potluck"}`);
  const problems: string[] = [];
  for (const [k, v] of Object.entries(json)) {
    if (k === 'passphrase') problems.push('"passphrase": a passphrase never goes in a config file; set POTLUCK_PASSPHRASE or name a "passphrase-file"');
    else if (k === 'config') problems.push('"config": a config file cannot name another one');
    else if (!SETTINGS.has(k)) problems.push(`"${k}": not a potluck setting${didYouMean(k, SETTINGS.keys())}`);
    else {
      const f = SETTINGS.get(k)!;
      const kind = kindOf(f);
      const ok = kind === 'array' ? Array.isArray(v) && v.every((x) => typeof x === 'string') : kind === 'number' ? typeof v === 'number' && Number.isFinite(v) : typeof v === kind;
      if (!ok) problems.push(`"${k}" must be ${KIND_TEXT[kind]}, got ${show(v)}`);
      else if (f.type === 'int' && (!Number.isInteger(v) || (v as number) < 0)) problems.push(`"${k}" must be a whole number, got ${show(v)}`);
      else if (f.type === 'seconds' && (v as number) < 0) problems.push(`"${k}" must be a number of seconds, got ${show(v)}`);
    }
  }
  if (problems.length) throw new CliError(`config file ${path}: ${problems.join('; ')}`);
  return { path, values: new Map(Object.entries(json)) };
}

/** A command's resolved settings. Reading a flag the command does not declare is a bug and throws. */
export class Args {
  constructor(
    readonly spec: CommandSpec,
    private readonly values: ReadonlyMap<string, Value>,
    private readonly origins: ReadonlyMap<string, string>,
    readonly positionals: string[],
  ) {}

  private get(name: string): Value | undefined {
    if (!this.spec.flags.some((f) => f.name === name)) throw new Error(`potluck ${this.spec.name} declares no flag --${name}`);
    return this.values.get(name);
  }
  str(name: string): string | undefined {
    const v = this.get(name);
    return typeof v === 'string' ? v : undefined;
  }
  num(name: string): number | undefined {
    const v = this.get(name);
    return typeof v === 'number' ? v : undefined;
  }
  flag(name: string): boolean {
    return this.get(name) === true;
  }
  list(name: string): string[] {
    const v = this.get(name);
    return Array.isArray(v) ? v : [];
  }
  /** How the value was given, for messages: `--home`, `POTLUCK_HOME`, `"home" in FILE`. */
  origin(name: string): string {
    return this.origins.get(name) ?? `--${name}`;
  }
}

function checkRange(f: FlagSpec, n: number, origin: string, raw: string): void {
  const lo = f.min ?? 0, hi = f.max ?? Number.MAX_SAFE_INTEGER;
  if (n >= lo && n <= hi) return;
  throw new CliError(f.max !== undefined ? `${origin} must be an integer in ${lo}..${hi}, got ${raw}` : `${origin} must be at least ${lo}, got ${raw}`);
}

function checkChoice(f: FlagSpec, v: string, origin: string): void {
  if (f.choices && !f.choices.includes(v)) throw new CliError(`${origin} must be one of ${f.choices.join(', ')}; got "${v}"`);
}

/** A value typed on the command line or in an env var. */
function fromText(f: FlagSpec, raw: string, origin: string): Value {
  switch (f.type) {
    case 'boolean':
      if (/^(1|true|yes)$/i.test(raw)) return true;
      if (/^(0|false|no)$/i.test(raw)) return false;
      throw new CliError(`${origin} must be true or false (or 1 / 0), got "${raw}"`);
    case 'int': {
      if (!/^\d+$/.test(raw)) throw new CliError(f.max !== undefined ? `${origin} must be an integer in ${f.min ?? 0}..${f.max}, got "${raw}"` : `${origin} must be a whole number, got "${raw}"`);
      checkRange(f, Number(raw), origin, `"${raw}"`);
      return Number(raw);
    }
    case 'seconds':
      if (!/^\d+(\.\d+)?$/.test(raw)) throw new CliError(`${origin} must be a number of seconds, got "${raw}"`);
      return Number(raw);
    default:
      checkChoice(f, raw, origin);
      return raw;
  }
}

/** A value from a config file (its JSON type was checked on load); paths are relative to the file. */
function fromConfig(f: FlagSpec, v: unknown, file: string): Value {
  const origin = `"${f.name}" in ${file}`;
  const path = (p: string) => (f.type === 'path' ? resolve(dirname(file), p) : p);
  if (Array.isArray(v)) return v.map((x) => path(x as string));
  if (typeof v === 'number') {
    if (f.type === 'int') checkRange(f, v, origin, String(v));
    return v;
  }
  if (typeof v === 'string') {
    checkChoice(f, v, origin);
    return path(v);
  }
  return v as boolean;
}

/** parseArgs on the table's flags, its errors rewritten to name the command and the fix. */
function parseCommandLine(spec: CommandSpec, argv: string[]) {
  const options = Object.fromEntries(spec.flags.map((f) => [f.name, { type: f.type === 'boolean' ? 'boolean' as const : 'string' as const, multiple: f.multiple === true }]));
  const help = `see "potluck ${spec.name} --help"`;
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: spec.args !== undefined });
  } catch (e) {
    const err = e as Error & { code?: string };
    if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const opt = /'(-[^']*)'/.exec(err.message)?.[1] ?? '?';
      const name = opt.replace(/^-+/, '').split('=')[0]!;
      const elsewhere = spec.misplaced?.[name];
      if (elsewhere) throw new CliError(elsewhere);
      if (name === 'passphrase') throw new CliError(`Unknown option '${opt}': a passphrase is never a flag value; set POTLUCK_PASSPHRASE or pass --passphrase-file FILE`);
      throw new CliError(`Unknown option '${opt}' for "potluck ${spec.name}"${didYouMean(name, spec.flags.map((f) => f.name), '--')}; ${help}`);
    }
    if (err.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      const arg = /'([^']*)'/.exec(err.message)?.[1] ?? '';
      throw new CliError(`"potluck ${spec.name}" takes no arguments, got "${arg}"; ${help}`);
    }
    if (err.code?.startsWith('ERR_PARSE_ARGS')) throw new CliError(`${err.message.replace(/\n/g, ' ')} (${help})`);
    throw e;
  }
}

/**
 * Resolves `spec`'s settings from argv, `env` and the config file, validates them, and checks the
 * required ones. Any problem is a CliError (exit 2) naming the flag, env var or file.
 */
export function resolveArgs(spec: CommandSpec, argv: string[], env: NodeJS.ProcessEnv = process.env, read?: (p: string) => string): Args {
  const parsed = parseCommandLine(spec, argv);
  const cli = parsed.values as Record<string, string | boolean | string[] | undefined>;
  const values = new Map<string, Value>();
  const origins = new Map<string, string>();
  const configPath = (cli['config'] as string | undefined) ?? (env['POTLUCK_CONFIG'] || undefined);
  const config = configPath === undefined ? undefined : loadConfigFile(configPath, read);
  for (const f of spec.flags) {
    const set = (v: Value, origin: string) => {
      values.set(f.name, v);
      origins.set(f.name, origin);
    };
    const given = cli[f.name];
    const e = envName(f);
    const fromEnv = e ? env[e] : undefined;
    if (given !== undefined) {
      const o = `--${f.name}`;
      set(Array.isArray(given) ? given.map((g) => fromText(f, g, o) as string) : typeof given === 'boolean' ? given : fromText(f, given, o), o);
    } else if (fromEnv !== undefined && fromEnv !== '') {
      set(f.multiple ? fromEnv.split(',').map((x) => x.trim()).filter(Boolean).map((x) => fromText(f, x, e!) as string) : fromText(f, fromEnv, e!), e!);
    } else if (config && f.config !== false && config.values.has(f.name)) {
      set(fromConfig(f, config.values.get(f.name), config.path), `"${f.name}" in ${config.path}`);
    } else if (f.default !== undefined) {
      set(f.default, `--${f.name}`);
    }
  }
  for (const f of spec.flags) {
    if (f.required && !values.has(f.name)) throw new CliError(`--${f.name} is required${f.hint ? ` (${f.hint})` : ''}`);
  }
  return new Args(spec, values, origins, [...parsed.positionals]);
}
