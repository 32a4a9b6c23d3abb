import './polyfill.ts';
import { readFileSync } from 'node:fs';
import { createLibp2p, type Libp2p } from 'libp2p';
import { tcp } from '@libp2p/tcp';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { identify } from '@libp2p/identify';
import { lpStream } from '@libp2p/utils';
import type { PeerId, PrivateKey, Stream } from '@libp2p/interface';
import { multiaddr } from '@multiformats/multiaddr';

/**
 * A Potluck peer's libp2p node: TCP + Noise + Yamux, a connection gater that admits only the
 * cluster's peer ids, and a hello protocol that checks the cluster definition hash and the
 * protocol version on every connection (issue 3). Since issue 6 the hello also carries the
 * sender's software version and wall-clock time (optional fields: a peer of the same protocol
 * version without them still connects), from which each side estimates the other's clock offset.
 */
export const PROTOCOL_VERSION = 'potluck/1';
export const HELLO_PROTOCOL = '/potluck/hello/1.0.0';
const MAX_HELLO_BYTES = 1024;
/** The app version (package.json), as cli/version.ts reads it; net/ may not import cli/. */
export const SOFTWARE_VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
/** The listener waits this long for the dialer's close to time the round trip. */
const RTT_WAIT_MS = 10_000;
/**
 * Open connections one member may hold with us (issue 11): each costs Noise and Yamux state and
 * up to 16 inbound streams. Two members normally share one or two (both dial); a reconnect
 * briefly adds one. A new inbound connection beyond this closes the member's oldest ones, so
 * connections left over from a crashed process (no FIN yet) never lock the member out.
 */
export const MAX_CONNECTIONS_PER_PEER = 4;

export class HandshakeError extends Error {
  override readonly name = 'HandshakeError';
  readonly peer: string;
  constructor(peer: string, message: string) {
    super(`peer ${peer}: ${message}`);
    this.peer = peer;
  }
}

export interface PeerNodeOptions {
  privateKey: PrivateKey;
  listen: string[];
  /** Peer ids of the cluster's members (this peer's own id may be included). */
  allowed: ReadonlySet<string>;
  clusterHash: Uint8Array;
  version?: string;
  /** Software version sent in the hello (default SOFTWARE_VERSION). */
  software?: string;
  /** Wall clock in ms (default Date.now; tests). */
  now?: () => number;
}

/** `software` and `time` (sender's wall clock, ms) are optional: older peers of this protocol version omit them. */
interface Hello { version: string; cluster: string; software?: string; time?: number }

/** What the last hello told us about a member (issue 6 metrics). */
export interface PeerInfo {
  /** Its software version, if it sent a well-formed one. */
  software?: string;
  /** Its clock minus ours (ms), corrected by half the round trip; absent if it sent no time. */
  clockOffsetMs?: number;
  rttMs?: number;
}
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const short = (h: string) => `${h.slice(0, 12)}…`;

function mismatch(ours: Hello, theirs: Hello): string | undefined {
  if (theirs.version !== ours.version) return `incompatible protocol version "${theirs.version}" (ours "${ours.version}")`;
  if (theirs.cluster !== ours.cluster) return `different cluster definition (theirs ${short(theirs.cluster)}, ours ${short(ours.cluster)})`;
  return undefined;
}

function parseHello(bytes: Uint8Array): Hello {
  const h = JSON.parse(new TextDecoder().decode(bytes)) as Partial<Hello>;
  if (typeof h.version !== 'string' || typeof h.cluster !== 'string') throw new Error('malformed hello');
  return { version: h.version, cluster: h.cluster, ...optionalFields(h) };
}

/** The optional fields, kept only if well-formed: the software version becomes a metric label, so it must be short and printable. */
function optionalFields(h: { software?: unknown; time?: unknown }): Pick<Hello, 'software' | 'time'> {
  return {
    ...(typeof h.software === 'string' && /^[\x21-\x7e]{1,64}$/.test(h.software) ? { software: h.software } : {}),
    ...(typeof h.time === 'number' && Number.isFinite(h.time) ? { time: h.time } : {}),
  };
}

/** Resolves with `now()` when the remote closes its end of `stream` gracefully; with undefined if the stream ends otherwise or after RTT_WAIT_MS. */
function remoteClosed(stream: Stream, now: () => number): Promise<number | undefined> {
  return new Promise((resolve) => {
    if (stream.remoteWriteStatus === 'closed') return resolve(now());
    const done = (t: number | undefined) => {
      clearTimeout(timer);
      stream.removeEventListener('remoteCloseWrite', onEnd);
      stream.removeEventListener('close', onClose);
      resolve(t);
    };
    const onEnd = () => done(now());
    const onClose = () => done(undefined);
    const timer = setTimeout(onClose, RTT_WAIT_MS);
    timer.unref();
    stream.addEventListener('remoteCloseWrite', onEnd);
    stream.addEventListener('close', onClose);
  });
}

export class PeerNode {
  readonly node: Libp2p;
  private readonly hello: Hello;
  /** Peers whose hello passed on a live connection (either direction). */
  private readonly verified = new Set<string>();
  /** Peers whose hello passed at least once in this process (a restarted peer always helloes before sending). */
  private readonly greeted = new Set<string>();
  private readonly info = new Map<string, PeerInfo>();
  private readonly now: () => number;
  private readonly listeners: { up: ((peer: string) => void)[]; down: ((peer: string) => void)[] } = { up: [], down: [] };

  private constructor(node: Libp2p, hello: Hello, now: () => number) {
    this.node = node;
    this.hello = hello;
    this.now = now;
    node.addEventListener('peer:disconnect', (e) => {
      const peer = e.detail.toString();
      if (this.verified.delete(peer)) for (const f of this.listeners.down) f(peer);
    });
  }

  private markVerified(peer: string): void {
    this.greeted.add(peer);
    if (this.verified.has(peer)) return;
    this.verified.add(peer);
    for (const f of this.listeners.up) f(peer);
  }
  /** The software version and clock offset from `peer`'s last hello (kept after it disconnects). */
  peerInfo(peer: string): PeerInfo | undefined {
    return this.info.get(peer);
  }
  private recordHello(peer: string, theirs: Pick<Hello, 'software'>): void {
    this.info.set(peer, theirs.software !== undefined ? { software: theirs.software } : {});
  }
  private recordClock(peer: string, offsetMs: number, rttMs: number): void {
    const i = this.info.get(peer);
    if (i) this.info.set(peer, { ...i, clockOffsetMs: offsetMs, rttMs });
  }
  isVerified(peer: string): boolean {
    return this.verified.has(peer);
  }
  /**
   * A stream from `peer` arrived on a live connection: if its hello passed earlier in this
   * process, count it as verified again (libp2p may report a disconnect while a duplicate
   * connection between the two stays up). Returns whether the peer may send.
   */
  admit(peer: string): boolean {
    if (this.verified.has(peer)) return true;
    if (!this.greeted.has(peer)) return false;
    this.markVerified(peer);
    return true;
  }
  /** Called when a member's hello passes (after a connect or reconnect) and when its last connection closes. */
  onPeer(event: 'up' | 'down', f: (peer: string) => void): void {
    this.listeners[event].push(f);
  }

  static async start(opts: PeerNodeOptions): Promise<PeerNode> {
    const deny = (p: PeerId) => !opts.allowed.has(p.toString());
    let started: Libp2p | undefined;
    /** Before a new inbound connection from `p`: close its oldest while it holds the maximum. */
    const makeRoom = (p: PeerId): false => {
      const open = (started?.getConnections(p) ?? []).filter((c) => c.status === 'open').sort((a, b) => a.timeline.open - b.timeline.open);
      for (const c of open.slice(0, Math.max(0, open.length - MAX_CONNECTIONS_PER_PEER + 1))) void c.close().catch((e: Error) => c.abort(e));
      return false;
    };
    const node = await createLibp2p({
      privateKey: opts.privateKey,
      addresses: { listen: opts.listen },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionGater: { denyDialPeer: deny, denyInboundEncryptedConnection: (p) => deny(p) || makeRoom(p), denyOutboundEncryptedConnection: deny },
      services: { identify: identify() },
    });
    started = node;
    const hello: Hello = { version: opts.version ?? PROTOCOL_VERSION, cluster: hex(opts.clusterHash), software: opts.software ?? SOFTWARE_VERSION };
    const now = opts.now ?? Date.now;
    const self = new PeerNode(node, hello, now);
    await node.handle(HELLO_PROTOCOL, async (stream, connection) => {
      const lp = lpStream(stream, { maxDataLength: MAX_HELLO_BYTES });
      try {
        const theirs = parseHello((await lp.read()).subarray());
        const received = now();
        const problem = mismatch(hello, theirs);
        // The dialer closes its end on reading our reply: that close times the round trip.
        const closed = remoteClosed(stream, now);
        const ours = { ...hello, time: received };
        await lp.write(new TextEncoder().encode(JSON.stringify(problem ? { ok: false, error: problem, ...ours } : { ok: true, ...ours })));
        await stream.close();
        if (problem) await connection.close();
        else {
          const peer = connection.remotePeer.toString();
          self.recordHello(peer, theirs);
          self.markVerified(peer);
          const sent = theirs.time;
          // Their clock read `sent` about half a round trip before we received it.
          if (sent !== undefined) void closed.then((t) => t !== undefined && self.recordClock(peer, sent + (t - received) / 2 - received, t - received));
        }
      } catch {
        stream.abort(new Error('bad hello'));
        await connection.close();
      }
    });
    return self;
  }

  get peerId(): string {
    return this.node.peerId.toString();
  }
  get addresses(): string[] {
    return this.node.getMultiaddrs().map((m) => m.toString());
  }

  /**
   * Connect to a member and run the hello. Throws HandshakeError naming the peer and the
   * mismatch (version or definition hash); the connection is closed on mismatch.
   */
  async connect(addr: string): Promise<string> {
    const ma = multiaddr(addr);
    const peer = ma.getComponents().find((c) => c.name === 'p2p')?.value ?? addr;
    let stream;
    try {
      stream = await this.node.dialProtocol(ma, HELLO_PROTOCOL);
    } catch (e) {
      throw new HandshakeError(peer, `cannot connect (${(e as Error).name}: ${(e as Error).message})`);
    }
    const lp = lpStream(stream, { maxDataLength: MAX_HELLO_BYTES });
    const sent = this.now();
    await lp.write(new TextEncoder().encode(JSON.stringify({ ...this.hello, time: sent })));
    let reply: Hello & { ok?: boolean; error?: string };
    try {
      reply = JSON.parse(new TextDecoder().decode((await lp.read()).subarray()));
    } catch (e) {
      throw new HandshakeError(peer, `no valid hello reply (${(e as Error).message})`);
    }
    const received = this.now();
    const problem = mismatch(this.hello, reply);
    if (problem || reply.ok !== true) {
      await this.node.hangUp(ma).catch(() => undefined);
      throw new HandshakeError(peer, problem ?? reply.error ?? 'refused');
    }
    await stream.close();
    const extra = optionalFields(reply);
    this.recordHello(peer, extra);
    // NTP-style: their clock read `time` at about the midpoint of our round trip.
    if (extra.time !== undefined) this.recordClock(peer, extra.time - (sent + received) / 2, received - sent);
    this.markVerified(peer);
    return peer;
  }

  async stop(): Promise<void> {
    await this.node.stop();
  }
}
