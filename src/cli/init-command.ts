import { parseArgs } from 'node:util';
import { initIdentity } from '../cluster/identity.ts';
import { CliError } from './errors.ts';

/** `potluck init --home DIR --org NAME [--listen MULTIADDR] [--api HOST:PORT]` */
export async function initCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { home: { type: 'string' }, org: { type: 'string' }, listen: { type: 'string', default: '/ip4/127.0.0.1/tcp/7400' }, api: { type: 'string', default: '127.0.0.1:8645' } },
    strict: true,
  });
  if (!values.home) throw new CliError('--home is required');
  if (!values.org) throw new CliError('--org is required');
  const info = await initIdentity(values.home, values.org, values.listen!, values.api!);
  console.log(JSON.stringify(info));
}
