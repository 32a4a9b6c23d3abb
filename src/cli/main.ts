import { COMMANDS, GROUPS, findCommand } from './commands.ts';
import { didYouMean, resolveArgs } from './config.ts';
import { CliError, EXIT } from './errors.ts';
import { commandHelp, groupHelp, topHelp } from './help.ts';
import { watchLifeline } from './lifeline.ts';
import { VERSION } from './version.ts';

const wantsHelp = (argv: string[]) => {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).some((a) => a === '--help' || a === '-h');
};

async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined) {
    console.error(topHelp());
    return EXIT.usage;
  }
  if (first === 'help' || first === '--help' || first === '-h') {
    const found = findCommand(rest);
    console.log(found ? commandHelp(found.spec) : rest[0] && GROUPS[rest[0]] ? groupHelp(rest[0]) : topHelp());
    return EXIT.ok;
  }
  if (first === '--version' || first === 'version') {
    console.log(VERSION);
    return EXIT.ok;
  }
  const found = findCommand(argv);
  if (!found) {
    if (GROUPS[first]) {
      if (rest.length === 0 || wantsHelp(rest.slice(0, 1))) {
        (rest.length === 0 ? console.error : console.log)(groupHelp(first));
        return rest.length === 0 ? EXIT.usage : EXIT.ok;
      }
      const subs = COMMANDS.filter((c) => c.name.startsWith(`${first} `)).map((c) => c.name.split(' ')[1]!);
      throw new CliError(`unknown ${first} command "${rest[0]}"${didYouMean(rest[0]!, subs)}; "potluck ${first}" has: ${subs.join(', ')}`);
    }
    const names = new Set(COMMANDS.map((c) => c.name.split(' ')[0]!));
    throw new CliError(`unknown command "${first}"${didYouMean(first, names)}; "potluck --help" lists the commands`);
  }
  const { spec, rest: args } = found;
  if (wantsHelp(args)) {
    console.log(commandHelp(spec));
    return EXIT.ok;
  }
  await spec.run(resolveArgs(spec, args));
  return EXIT.ok;
}

// Errors that are the operator's to fix (a missing identity, a bad definition) exit 2 like usage errors.
const CONFIG_ERRORS = new Set(['IdentityError', 'ClusterError']);

/**
 * process.exit() drops what a pipe has not taken yet (stdout and stderr are asynchronous on pipes):
 * a large `audit verify --json` report was cut off. Exit once both streams have flushed.
 */
function exitAfterFlush(code: number): void {
  let pending = 2;
  const done = () => {
    if (--pending === 0) process.exit(code);
  };
  process.stdout.write('', done);
  process.stderr.write('', done);
}

watchLifeline();
main(process.argv.slice(2)).then(
  (code) => exitAfterFlush(code),
  (e: unknown) => {
    const err = e as Error;
    if (err instanceof CliError || CONFIG_ERRORS.has(err.name)) {
      console.error(`potluck: ${err.message}`);
      return exitAfterFlush(err instanceof CliError ? err.exitCode : EXIT.usage);
    }
    console.error(`potluck: ${err.name}: ${err.message}`);
    exitAfterFlush(EXIT.failed);
  },
);
