import { loadIdentity, type PeerInfo } from '../cluster/identity.ts';
import { approvalQuorum, checkSignatures, ClusterError, createDefinition, definitionHash, parseDefinition, signDefinition } from '../cluster/definition.ts';
import { CliError, EXIT } from './errors.ts';
import type { Args } from './config.ts';
import { readText, writeFileAtomic } from './files.ts';

/** `potluck cluster create|sign|verify` (issue 3). */
export async function clusterCreate(a: Args): Promise<void> {
  const out = a.str('out')!;
  const peers = a.list('member').map((p) => {
    try {
      return JSON.parse(readText(p, 'member file')) as PeerInfo;
    } catch (e) {
      if (e instanceof CliError) throw e;
      throw new CliError(`member file ${p} is not valid JSON (the output of "potluck init")`);
    }
  });
  const requesters: Record<string, string[]> = {};
  for (const r of a.list('requesters')) {
    const m = /^([^=]+)=(.+)$/.exec(r);
    if (!m) throw new CliError(`--requesters "${r}" must be KEY=ORG[,ORG…], e.g. batcher=acme,bravo`, EXIT.usage);
    requesters[m[1]!] = [...(requesters[m[1]!] ?? []), ...m[2]!.split(',').map((o) => o.trim()).filter(Boolean)];
  }
  const faulty = a.num('faulty');
  let d;
  try {
    d = createDefinition(a.str('name')!, a.num('threshold')!, { distinctOrgs: a.num('quorum-orgs')!, otherOrgs: a.num('quorum-other')! }, peers, { ...(faulty !== undefined ? { faulty } : {}), requesters });
  } catch (e) {
    if (e instanceof ClusterError) throw new CliError(e.message, EXIT.usage);
    throw e;
  }
  writeFileAtomic(out, JSON.stringify(d, null, 2) + '\n');
  console.log(JSON.stringify({ definition: out, hash: Buffer.from(definitionHash(d)).toString('hex'), members: d.members.length, threshold: d.threshold, faulty: d.faulty, approvalQuorum: approvalQuorum(d.members.length, d.faulty) }));
}

export async function clusterSign(a: Args): Promise<void> {
  const file = a.str('definition')!;
  const d = parseDefinition(readText(file, 'cluster definition'), file);
  const { key, info } = loadIdentity(a.str('home')!);
  const signed = await signDefinition(d, key, info.peerId);
  writeFileAtomic(file, JSON.stringify(signed, null, 2) + '\n');
  const { missing } = await checkSignatures(signed);
  console.log(JSON.stringify({ signed: info.peerId, hash: Buffer.from(definitionHash(d)).toString('hex'), missing: missing.map((m) => m.peerId) }));
}

export async function clusterVerify(a: Args): Promise<void> {
  const file = a.str('definition')!;
  const d = parseDefinition(readText(file, 'cluster definition'), file);
  const { missing, invalid } = await checkSignatures(d);
  const out = { hash: Buffer.from(definitionHash(d)).toString('hex'), complete: missing.length === 0 && invalid.length === 0, missing: missing.map((m) => ({ org: m.org, peerId: m.peerId })), invalid };
  console.log(JSON.stringify(out));
  if (!out.complete) {
    const why = invalid.length ? `signatures that do not match this definition: ${invalid.join(', ')}; the definition changed after they signed: recreate it and sign again` : `not signed yet by: ${missing.map((m) => m.org).join(', ')}; each runs "potluck cluster sign --home DIR --definition ${file}"`;
    throw new CliError(why, EXIT.failed);
  }
}
