import { initIdentity } from '../cluster/identity.ts';
import type { Args } from './config.ts';

/** `potluck init`: the identity and peer.json, printed as JSON. */
export async function initCommand(a: Args): Promise<void> {
  const info = await initIdentity(a.str('home')!, a.str('org')!, a.str('listen')!, a.str('api')!);
  console.log(JSON.stringify(info));
}
