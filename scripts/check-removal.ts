/**
 * `npm run check-removal`: the check-removal matrix. For each check site in scripts/check-sites.ts
 * it disables that one check in a scratch copy of the repository, runs the tests that cover it,
 * and records which of them failed. Every site that a test can reach (through messages, or by
 * injecting values directly) must make at least one test fail; a site no test can reach must
 * leave them all green. Prints the table (markdown) and exits 1 if any site is not as expected.
 *
 * The working tree is never modified: the copy lives in the OS temp directory and is deleted at
 * the end, also on Ctrl-C. The sites form two groups: `protocol` (the protocol core: src/protocol,
 * src/ot, src/mul, src/crypto; the profile's §4.3) and `refusals` (every other layer). Options
 * (env): CHECK_REMOVAL_GROUP=protocol|refusals runs one group; CHECK_REMOVAL_ONLY=text[,text…]
 * runs the sites whose file or check contains one of them. Flag --readme writes each group's table
 * into test/byzantine/README.md between its markers (only for a whole group, not with ONLY);
 * --dry only shows how each site would be disabled.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { SITES, type Site } from './check-sites.ts';

const repo = process.cwd();
const only = process.env.CHECK_REMOVAL_ONLY?.split(',').filter(Boolean);
const GROUPS = ['protocol', 'refusals'] as const;
type Group = (typeof GROUPS)[number];
const groupOf = (s: Site): Group => (/^src\/(protocol|ot|mul|crypto)\//.test(s.file) ? 'protocol' : 'refusals');
const group = process.env.CHECK_REMOVAL_GROUP as Group | undefined;
if (group !== undefined && !GROUPS.includes(group)) throw new Error(`CHECK_REMOVAL_GROUP must be one of ${GROUPS.join(', ')}`);
const sites = SITES.filter((s) => (!group || groupOf(s) === group) && (!only || only.some((o) => s.file.includes(o) || s.check.includes(o))));
const RUN_TIMEOUT_MS = 20 * 60_000;

// ---- the scratch copy ----
const scratch = mkdtempSync(join(tmpdir(), 'potluck-check-removal-'));
const cleanup = () => rmSync(scratch, { recursive: true, force: true });
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(130));

const files = spawnSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: repo, encoding: 'utf8' }).stdout.split('\0').filter(Boolean);
for (const f of files) {
  if (!existsSync(join(repo, f))) continue; // deleted in the working tree
  mkdirSync(dirname(join(scratch, f)), { recursive: true });
  cpSync(join(repo, f), join(scratch, f));
}
symlinkSync(join(repo, 'node_modules'), join(scratch, 'node_modules'), 'dir');

// ---- disabling one check ----
interface Located { start: number; end: number; line: number }
function locate(text: string, site: Site): Located {
  const from = site.after === undefined ? 0 : text.indexOf(site.after);
  if (from < 0) throw new Error(`${site.file}: anchor not found: ${site.after}`);
  const start = text.indexOf(site.find, from);
  if (start < 0) throw new Error(`${site.file}: not found: ${site.find}`);
  if (site.after === undefined && text.indexOf(site.find, start + 1) >= 0) throw new Error(`${site.file}: found more than once (add "after"): ${site.find}`);
  return { start, end: start + site.find.length, line: text.slice(0, start).split('\n').length };
}

/** The file's text with the site's check disabled. */
function disable(text: string, site: Site): string {
  const at = locate(text, site);
  if (site.replace !== undefined) return text.slice(0, at.start) + site.replace + text.slice(at.end);
  const lineStart = text.lastIndexOf('\n', at.start) + 1;
  const lineEnd = text.indexOf('\n', at.start);
  const line = text.slice(lineStart, lineEnd < 0 ? undefined : lineEnd);
  const cond = line.indexOf('if (');
  if (cond < 0) throw new Error(`${site.file}:${at.line}: no "if (" on the line; give "replace"`);
  let depth = 0, close = -1;
  for (let k = cond + 3; k < line.length; k++) {
    if (line[k] === '(') depth++;
    else if (line[k] === ')' && --depth === 0) { close = k; break; }
  }
  if (close < 0) throw new Error(`${site.file}:${at.line}: the condition does not close on its line; give "replace"`);
  return text.slice(0, lineStart) + line.slice(0, cond) + 'if (false)' + line.slice(close + 1) + text.slice(lineStart + line.length);
}

// ---- running tests ----
interface RunResult { failed: string[]; crashed?: string }
/** Run `file` (optionally only tests matching `pattern`) in the scratch copy; the names of the tests that failed. */
function runTests(file: string, pattern?: string): RunResult {
  const args = ['--import', 'tsx', '--test', '--test-reporter=tap', ...(pattern ? [`--test-name-pattern=${pattern}`] : []), file];
  const r = spawnSync(process.execPath, args, { cwd: scratch, encoding: 'utf8', timeout: RUN_TIMEOUT_MS, maxBuffer: 64 << 20, env: { ...process.env, NODE_OPTIONS: '' } });
  if (r.error) return { failed: [], crashed: `${file}: ${r.error.message}` };
  const lines = r.stdout.split('\n');
  const failed: string[] = [];
  for (let k = 0; k < lines.length; k++) {
    const m = /^\s*not ok \d+ - (.*?)(?: # .*)?$/.exec(lines[k]!);
    if (!m) continue;
    let suite = false, fileLevel = false;
    for (let j = k + 1; j < lines.length && !/^\s*\.\.\.$/.test(lines[j]!); j++) {
      if (/type: 'suite'/.test(lines[j]!)) suite = true;
      if (/failureType: 'testCodeFailure'/.test(lines[j]!) && m[1]!.endsWith('.ts')) fileLevel = true;
    }
    if (fileLevel) return { failed, crashed: `${file} did not run: ${r.stderr.split('\n').find((l) => l.trim()) ?? 'see its output'}` };
    if (!suite) failed.push(m[1]!.replace(/\\#/g, '#').replace(`${scratch}/`, ''));
  }
  if (r.status !== 0 && failed.length === 0) return { failed, crashed: `${file} exited ${r.status} with no failing test` };
  return { failed };
}

const split = (t: string): [string, string | undefined] => {
  const k = t.indexOf('#');
  return k < 0 ? [t, undefined] : [t.slice(0, k), t.slice(k + 1)];
};

// --dry: show how each site would be disabled, run nothing.
if (process.argv.includes('--dry')) {
  for (const site of sites) {
    const text = readFileSync(join(scratch, site.file), 'utf8');
    const at = locate(text, site);
    const changed = disable(text, site).split('\n')[at.line - 1]!.trim();
    console.log(`${site.file}:${at.line} ${site.check}\n  - ${text.split('\n')[at.line - 1]!.trim()}\n  + ${changed}`);
  }
  process.exit(0);
}

// Baseline: every test file used must pass unmodified in the copy.
const baselineFiles = [...new Set(sites.flatMap((s) => s.tests.map((t) => split(t)[0])))];
console.error(`scratch copy: ${scratch}\nbaseline: ${baselineFiles.length} test files`);
let ok = true;
for (const f of baselineFiles) {
  const t0 = Date.now();
  const r = runTests(f);
  console.error(`  ${f}: ${r.crashed ?? (r.failed.length ? `FAILED ${r.failed.join('; ')}` : 'pass')} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  if (r.crashed || r.failed.length) ok = false;
}
if (!ok) {
  console.error('the baseline fails: fix the tests first');
  process.exit(1);
}

interface Row { group: Group; site: string; check: string; reach: string; failed: string[]; status: string; good: boolean }
const rows: Row[] = [];
for (const [k, site] of sites.entries()) {
  const path = join(scratch, site.file);
  const original = readFileSync(path, 'utf8');
  const line = locate(original, site).line;
  const t0 = Date.now();
  writeFileSync(path, disable(original, site));
  const failed: string[] = [];
  let crashed: string | undefined;
  try {
    for (const t of site.tests) {
      const [file, pattern] = split(t);
      const r = runTests(file, pattern);
      failed.push(...r.failed.map((n) => `${file.replace(/^test\//, '').replace(/\.test\.ts$/, '')}: ${n}`));
      crashed ??= r.crashed;
    }
  } finally {
    writeFileSync(path, original);
  }
  const reach = site.reach ?? 'input';
  const good = reach === 'none' ? failed.length === 0 && !crashed : failed.length > 0 || crashed !== undefined;
  const status = crashed ? `tests crashed: ${crashed}` : reach === 'none' ? (failed.length ? 'UNEXPECTED: a test failed' : 'unreachable, as expected') : failed.length ? 'caught' : 'NOT CAUGHT';
  rows.push({ group: groupOf(site), site: `${site.file.replace(/^src\//, '')}:${line}`, check: site.check, reach: reach === 'input' ? 'input' : `${reach}: ${site.why}`, failed, status, good });
  console.error(`[${k + 1}/${sites.length}] ${site.file}:${line} ${site.check}: ${status} (${failed.length} failed, ${((Date.now() - t0) / 1000).toFixed(0)} s)`);
}

const cell = (s: string) => s.replace(/\|/g, '\\|');
const tableOf = (rs: Row[]) => [
  '| site | check | reached by | tests that failed with the check removed |',
  '|---|---|---|---|',
  ...rs.map((r) => `| ${r.site} | ${cell(r.check)} | ${cell(r.reach)} | ${r.good ? '' : `**${cell(r.status)}** `}${r.failed.length ? r.failed.map(cell).join('<br>') : r.good ? '— (none: unreachable)' : ''} |`),
].join('\n');
const ran = GROUPS.filter((g) => rows.some((r) => r.group === g));
for (const g of ran) console.log(`\n### ${g}\n\n${tableOf(rows.filter((r) => r.group === g))}`);
const bad = rows.filter((r) => !r.good);
console.log(`\n${rows.length} sites: ${rows.length - bad.length} as expected${bad.length ? `, ${bad.length} NOT: ${bad.map((r) => `${r.site} ${r.check}`).join('; ')}` : ''}.`);

if (process.argv.includes('--readme')) {
  if (only) throw new Error('--readme writes whole groups; run without CHECK_REMOVAL_ONLY');
  const readme = join(repo, 'test/byzantine/README.md');
  let text = readFileSync(readme, 'utf8');
  for (const g of ran) {
    const begin = `<!-- check-removal:${g}:begin -->`, end = `<!-- check-removal:${g}:end -->`;
    if (!text.includes(begin) || !text.includes(end)) throw new Error(`${readme}: markers ${begin} / ${end} missing`);
    text = text.slice(0, text.indexOf(begin) + begin.length) + '\n' + tableOf(rows.filter((r) => r.group === g)) + '\n' + text.slice(text.indexOf(end));
  }
  writeFileSync(readme, text);
  console.error(`wrote the ${ran.join(' and ')} table(s) into ${readme}`);
}
process.exit(bad.length ? 1 : 0);
