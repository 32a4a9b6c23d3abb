import { CliError } from './errors.ts';
import { simCommand } from './sim-command.ts';

const USAGE = `usage: potluck <command> [options]

commands:
  sim --t T --n N [--count K] [--json] [--workers]
      run a t-of-n DKG and K signatures over random digests, all parties in this process;
      --json prints one JSON object per line, --workers runs the DKG parties in worker threads`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'sim':
      await simCommand(rest);
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return cmd === undefined ? 2 : 0;
    default:
      throw new CliError(`unknown command "${cmd}"\n${USAGE}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    if (e instanceof CliError || (e instanceof TypeError && (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS'))) {
      console.error(`potluck: ${(e as Error).message}`);
      process.exit(2);
    }
    console.error(`potluck: ${(e as Error).name}: ${(e as Error).message}`);
    process.exit(1);
  },
);
