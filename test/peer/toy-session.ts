import { generateKeyPair } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';
import pino from 'pino';
import type { Member } from '../../src/cluster/members.ts';
import { sha256 } from '@noble/hashes/sha2.js';
import type { Rng } from '../../src/crypto/random.ts';
import { RoundMachine, bodiesOf, type Outgoing, type RoundMessages, type RoundSpec } from '../../src/protocol/machine.ts';
import { encodeBody } from '../../src/protocol/messages.ts';
import { SessionHost, type FrameSink, type HostOptions } from '../../src/peer/session-host.ts';

/**
 * Test helpers for the session host: a cheap two-round machine speaking the presign protocol's
 * message kinds at their real sizes (flight 1 broadcast, flight 2 p2p of 9.3 KB), and in-memory
 * wiring of hosts with real Ed25519 identity keys. The machine checks nothing cryptographic: it
 * stands for any session between honest members, so host tests need no key shares.
 */
export const TOY_PROTOCOL = 'dkls23/presign/v1';

export class ToySession extends RoundMachine<string> {
  protected readonly rounds: RoundSpec[];
  private readonly others: number[];
  private readonly sid: Uint8Array;
  constructor(self: number, parties: number[], sid: Uint8Array) {
    super(self);
    this.sid = sid;
    this.others = parties.filter((p) => p !== self);
    this.rounds = [
      { bodies: { signCommit: 'broadcast' }, from: { signCommit: this.others } },
      { bodies: { signExtension: 'p2p' }, from: { signExtension: this.others } },
    ];
  }
  protected begin(rng: Rng): Outgoing[] {
    return [{ to: null, bytes: encodeBody({ case: 'signCommit', value: { instanceId: this.sid, sessionNonce: rng(32), commitment: rng(32) } }) }];
  }
  protected onRound(round: number, msgs: RoundMessages, rng: Rng): { out: Outgoing[]; output?: string } {
    if (round === 1)
      return { out: this.others.map((j) => ({ to: j, bytes: encodeBody({ case: 'signExtension', value: { sessionId: this.sid, u: rng(5120), xTilde: rng(16), vTilde: rng(4096), echo: rng(32) } }) })) };
    const got = [...bodiesOf(msgs, 'signExtension').keys()].sort().join(',');
    return { out: [], output: `done:${got}` };
  }
}

export const quiet = pino({ level: 'silent' });

export interface Cluster {
  keys: PrivateKey[];
  members: Member[];
  clusterHash: Uint8Array;
}

export async function cluster(n: number): Promise<Cluster> {
  const keys = await Promise.all(Array.from({ length: n }, () => generateKeyPair('Ed25519')));
  const members: Member[] = keys.map((k, i) => ({ index: i + 1, org: `org${i + 1}`, peerId: `peer-${i + 1}`, publicKey: k.publicKey.raw, addresses: [] }));
  return { keys, members, clusterHash: sha256(new TextEncoder().encode('toy cluster')) };
}

/** An in-memory mesh: frames are delivered on the next turn of the event loop; `lose` may drop one. */
export function wire(hosts: Map<number, SessionHost>, members: Member[], lose?: (from: number, to: number, frame: Uint8Array) => boolean): void {
  for (const [i, h] of hosts) {
    const sink: FrameSink = {
      send: (peer, frame) => {
        const to = members.find((m) => m.peerId === peer)!.index;
        if (lose?.(i, to, frame)) return;
        setImmediate(() => hosts.get(to)?.onFrame(members[i - 1]!.peerId, frame));
      },
    };
    h.mesh = sink;
  }
}

export function host(c: Cluster, index: number, over: Partial<HostOptions> = {}): SessionHost {
  return new SessionHost({ self: c.members[index - 1]!, secretKey: c.keys[index - 1]!, members: c.members, clusterHash: c.clusterHash, log: quiet, onControl: () => undefined, ...over });
}
