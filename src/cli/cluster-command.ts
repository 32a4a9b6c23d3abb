import { parseArgs } from 'node:util';
import { loadIdentity, type PeerInfo } from '../cluster/identity.ts';
import { checkSignatures, createDefinition, definitionHash, parseDefinition, signDefinition } from '../cluster/definition.ts';
import { CliError } from './errors.ts';
import { readText, writeFileAtomic } from './files.ts';

const USAGE = `potluck cluster create --name NAME --threshold T --quorum-orgs Q [--quorum-other O] --member peer.json ... --out FILE
potluck cluster sign --home DIR --definition FILE
potluck cluster verify --definition FILE`;

const int = (name: string, v: string | undefined): number => {
  if (v === undefined) throw new CliError(`--${name} is required`);
  if (!/^\d+$/.test(v)) throw new CliError(`--${name} must be a whole number, got "${v}"`);
  return Number(v);
};

export async function clusterCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub === 'create') {
    const { values } = parseArgs({
      args: rest,
      options: { name: { type: 'string' }, threshold: { type: 'string' }, 'quorum-orgs': { type: 'string' }, 'quorum-other': { type: 'string', default: '1' }, member: { type: 'string', multiple: true }, out: { type: 'string' } },
      strict: true,
    });
    if (!values.name) throw new CliError('--name is required');
    if (!values.out) throw new CliError('--out is required');
    const peers = (values.member ?? []).map((p) => {
      try {
        return JSON.parse(readText(p, 'member file')) as PeerInfo;
      } catch (e) {
        if (e instanceof CliError) throw e;
        throw new CliError(`member file ${p} is not valid JSON (the output of "potluck init")`);
      }
    });
    const d = createDefinition(values.name, int('threshold', values.threshold), { distinctOrgs: int('quorum-orgs', values['quorum-orgs']), otherOrgs: int('quorum-other', values['quorum-other']) }, peers);
    writeFileAtomic(values.out, JSON.stringify(d, null, 2) + '\n');
    console.log(JSON.stringify({ definition: values.out, hash: Buffer.from(definitionHash(d)).toString('hex'), members: d.members.length, threshold: d.threshold }));
    return;
  }
  if (sub === 'sign') {
    const { values } = parseArgs({ args: rest, options: { home: { type: 'string' }, definition: { type: 'string' } }, strict: true });
    if (!values.home) throw new CliError('--home is required');
    if (!values.definition) throw new CliError('--definition is required');
    const d = parseDefinition(readText(values.definition, 'cluster definition'), values.definition);
    const { key, info } = loadIdentity(values.home);
    const signed = await signDefinition(d, key, info.peerId);
    writeFileAtomic(values.definition, JSON.stringify(signed, null, 2) + '\n');
    const { missing } = await checkSignatures(signed);
    console.log(JSON.stringify({ signed: info.peerId, hash: Buffer.from(definitionHash(d)).toString('hex'), missing: missing.map((m) => m.peerId) }));
    return;
  }
  if (sub === 'verify') {
    const { values } = parseArgs({ args: rest, options: { definition: { type: 'string' } }, strict: true });
    if (!values.definition) throw new CliError('--definition is required');
    const d = parseDefinition(readText(values.definition, 'cluster definition'), values.definition);
    const { missing, invalid } = await checkSignatures(d);
    const out = { hash: Buffer.from(definitionHash(d)).toString('hex'), complete: missing.length === 0 && invalid.length === 0, missing: missing.map((m) => ({ org: m.org, peerId: m.peerId })), invalid };
    console.log(JSON.stringify(out));
    if (!out.complete) throw new CliError(invalid.length ? `signatures that do not match this definition: ${invalid.join(', ')}` : `not signed yet by: ${missing.map((m) => m.org).join(', ')}`, 1);
    return;
  }
  throw new CliError(`unknown cluster command "${sub ?? ''}"\n${USAGE}`);
}
