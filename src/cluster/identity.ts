import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import type { PrivateKey } from '@libp2p/interface';

/**
 * A peer's identity: an Ed25519 libp2p key in `<home>/identity.key` (mode 0600) and its public
 * description in `<home>/peer.json`, which the operator hands to the cluster's creator.
 */
export interface PeerInfo {
  org: string;
  peerId: string;
  addresses: string[];
  api: string;
}

export class IdentityError extends Error {
  override readonly name = 'IdentityError';
}

export const identityPath = (home: string) => join(home, 'identity.key');
export const peerInfoPath = (home: string) => join(home, 'peer.json');

const ORG_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function validateOrg(org: string): void {
  if (!ORG_RE.test(org)) throw new IdentityError(`org name "${org}" must be 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit`);
}

export function validateApi(api: string): void {
  const m = /^([A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$/.exec(api);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) throw new IdentityError(`--api "${api}" must be HOST:PORT with a port in 1..65535`);
}

export function validateMultiaddr(addr: string): void {
  try {
    const ma = multiaddr(addr);
    if (!ma.getComponents().some((c) => c.name === 'tcp')) throw new Error('no tcp component');
  } catch (e) {
    throw new IdentityError(`--listen "${addr}" is not a TCP multiaddr (${(e as Error).message})`);
  }
}

/** Create the identity. Refuses to overwrite an existing one: losing it loses the peer's place in the cluster. */
export async function initIdentity(home: string, org: string, listen: string, api: string): Promise<PeerInfo> {
  validateOrg(org);
  validateMultiaddr(listen);
  validateApi(api);
  if (existsSync(identityPath(home))) throw new IdentityError(`${identityPath(home)} already exists; refusing to overwrite a peer identity`);
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const key = await generateKeyPair('Ed25519');
  writeFileSync(identityPath(home), privateKeyToProtobuf(key), { mode: 0o600, flag: 'wx' });
  chmodSync(identityPath(home), 0o600);
  const info: PeerInfo = { org, peerId: peerIdFromPrivateKey(key).toString(), addresses: [listen], api };
  writeFileSync(peerInfoPath(home), JSON.stringify(info, null, 2) + '\n', { mode: 0o644 });
  return info;
}

export function loadIdentity(home: string): { key: PrivateKey; info: PeerInfo } {
  const p = identityPath(home);
  if (!existsSync(p)) throw new IdentityError(`no identity in ${home}: run "potluck init --home ${home} --org NAME" first`);
  let key: PrivateKey;
  try {
    key = privateKeyFromProtobuf(readFileSync(p));
  } catch {
    throw new IdentityError(`${p} is not a libp2p private key`);
  }
  if (key.type !== 'Ed25519') throw new IdentityError(`${p} holds a ${key.type} key; Potluck identities are Ed25519`);
  const info = JSON.parse(readFileSync(peerInfoPath(home), 'utf8')) as PeerInfo;
  if (info.peerId !== peerIdFromPrivateKey(key).toString()) throw new IdentityError(`${peerInfoPath(home)} does not describe the key in ${p}`);
  return { key, info };
}
