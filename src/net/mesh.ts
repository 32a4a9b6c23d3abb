import { peerIdFromString } from '@libp2p/peer-id';
import type { Stream } from '@libp2p/interface';
import { lpStream, type LengthPrefixedStream } from '@libp2p/utils';
import { multiaddr } from '@multiformats/multiaddr';
import { MAX_ENVELOPE_BYTES } from './envelope.ts';
import type { PeerNode } from './peer-node.ts';

/**
 * Frames between cluster members over one long-lived libp2p stream per direction and peer
 * (`/potluck/envelope/1.0.0`, length-prefixed). Frames are opaque here: the session layer
 * seals and opens them (envelope.ts). Per peer: a bounded outbound queue (backpressure), frames
 * that expire with their session, reconnection with backoff, and an inbound frame size limit.
 * Loss across a reconnect is repaired above: sessions resend their frames on `onPeer('up')`.
 */
export const ENVELOPE_PROTOCOL = '/potluck/envelope/1.0.0';
export const MAX_FRAME_BYTES = MAX_ENVELOPE_BYTES;
const DEFAULT_QUEUE_BYTES = 64 << 20;
/**
 * Frames queued for one peer (issue 11): a peer that stops reading while it makes us answer (a
 * decline per bogus proposal, ~250 bytes) would otherwise fill 64 MiB with 260,000 tiny frames
 * and their bookkeeping. 16,384 is 80 frames for each of 200 concurrent sessions.
 */
export const MAX_QUEUE_FRAMES = 16_384;
/**
 * Inbound streams read at once from one peer, across its connections. A sender keeps one stream
 * per direction; a reconnect briefly overlaps old and new. Each reader may buffer up to one
 * frame (2 MiB), so a peer can make us hold at most 4 × 2 MiB of partial frames. A fifth stream
 * replaces the oldest (a stale stream must not lock the peer out).
 */
export const MAX_READERS_PER_PEER = 4;
const STREAM_OPEN_MS = 10_000;
const WRITE_STALL_MS = 30_000;

export class BackpressureError extends Error {
  override readonly name = 'BackpressureError';
}

/** Test hook: what to deliver instead of one frame (drop = [], duplicate, delay). */
export type FaultHook = (peer: string, frame: Uint8Array) => { frame: Uint8Array; delayMs: number }[];

interface Queued { frame: Uint8Array; expires: number }
interface Outbound { queue: Queued[]; bytes: number; lp?: LengthPrefixedStream; stream?: Stream; pumping: boolean; backoff: number }

export interface MeshOptions {
  node: PeerNode;
  /** Other members: peer id → dialable multiaddrs. */
  members: ReadonlyMap<string, readonly string[]>;
  onFrame: (peer: string, frame: Uint8Array) => void;
  /** Our stream to `peer` closed under us: frames written just before may be lost; resend them. */
  onStreamLost?: (peer: string) => void;
  maxQueueBytes?: number;
  fault?: FaultHook;
  /** Clock for expiry (ms). */
  now?: () => number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Mesh {
  private readonly opts: MeshOptions;
  private readonly out = new Map<string, Outbound>();
  /** Inbound streams being read, per peer, oldest first. */
  private readonly readers = new Map<string, Stream[]>();
  private stopped = false;
  private keepAlive: NodeJS.Timeout | undefined;
  private readonly dialing = new Set<string>();

  private constructor(opts: MeshOptions) {
    this.opts = opts;
    opts.node.onPeer('down', (peer) => {
      const o = this.out.get(peer);
      if (o) {
        o.lp = undefined;
        o.stream = undefined;
      }
    });
  }

  static async start(opts: MeshOptions): Promise<Mesh> {
    const mesh = new Mesh(opts);
    await opts.node.node.handle(ENVELOPE_PROTOCOL, (stream, connection) => {
      const peer = connection.remotePeer.toString();
      if (!opts.members.has(peer) || !opts.node.admit(peer)) {
        stream.abort(new Error('hello first'));
        return;
      }
      mesh.admitReader(peer, stream);
      void mesh.readLoop(peer, lpStream(stream, { maxDataLength: MAX_FRAME_BYTES })).finally(() => mesh.dropReader(peer, stream));
    }, { maxInboundStreams: 16 });
    return mesh;
  }

  /** Count a new inbound stream from `peer`, closing its oldest beyond MAX_READERS_PER_PEER. */
  private admitReader(peer: string, stream: Stream): void {
    const list = this.readers.get(peer) ?? [];
    list.push(stream);
    this.readers.set(peer, list);
    while (list.length > MAX_READERS_PER_PEER) list.shift()!.abort(new Error('too many streams from this peer; a newer one replaces it'));
  }
  private dropReader(peer: string, stream: Stream): void {
    const list = this.readers.get(peer);
    if (!list) return;
    const i = list.indexOf(stream);
    if (i >= 0) list.splice(i, 1);
    if (!list.length) this.readers.delete(peer);
  }
  /** Inbound streams being read from `peer` (tests, status). */
  readerCount(peer: string): number {
    return this.readers.get(peer)?.length ?? 0;
  }

  private async readLoop(peer: string, lp: LengthPrefixedStream): Promise<void> {
    for (;;) {
      let frame: Uint8Array;
      try {
        frame = (await lp.read()).subarray();
      } catch {
        return; // closed, reset or oversized: the sender reconnects
      }
      try {
        this.opts.onFrame(peer, frame);
      } catch {
        // the session layer never throws for a peer's input; stay alive if it does
      }
    }
  }

  /** Keep a connection to every member: dial the missing ones every `intervalMs`. */
  keepConnected(intervalMs = 1000): void {
    const tick = () => {
      for (const peer of this.opts.members.keys()) if (!this.opts.node.isVerified(peer)) void this.dial(peer).catch(() => undefined);
    };
    tick();
    this.keepAlive = setInterval(tick, intervalMs);
    this.keepAlive.unref();
  }

  /** Dial a member and run the hello (throws HandshakeError). */
  async dial(peer: string): Promise<void> {
    if (this.dialing.has(peer)) return;
    this.dialing.add(peer);
    try {
      const addrs = this.opts.members.get(peer) ?? [];
      let last: unknown = new Error(`no address for ${peer}`);
      for (const a of addrs) {
        try {
          await this.opts.node.connect(withPeerId(a, peer));
          return;
        } catch (e) {
          last = e;
        }
      }
      throw last;
    } finally {
      this.dialing.delete(peer);
    }
  }

  isConnected(peer: string): boolean {
    return this.opts.node.isVerified(peer);
  }

  /** Queue a frame for `peer`; it is dropped if not written before `expires` (ms). */
  send(peer: string, frame: Uint8Array, expires: number): void {
    if (this.stopped) return;
    if (!this.opts.members.has(peer)) throw new RangeError(`${peer} is not a member`);
    if (frame.length > MAX_FRAME_BYTES) throw new RangeError(`frame of ${frame.length} bytes exceeds the limit`);
    const deliveries = this.opts.fault ? this.opts.fault(peer, frame) : [{ frame, delayMs: 0 }];
    for (const d of deliveries) {
      if (d.delayMs > 0)
        setTimeout(() => {
          try {
            this.enqueue(peer, d.frame, expires);
          } catch {
            // a full queue drops the delayed copy, as it would drop a fresh one
          }
        }, d.delayMs).unref();
      else this.enqueue(peer, d.frame, expires);
    }
  }

  private enqueue(peer: string, frame: Uint8Array, expires: number): void {
    let o = this.out.get(peer);
    if (!o) this.out.set(peer, (o = { queue: [], bytes: 0, pumping: false, backoff: 100 }));
    const limit = this.opts.maxQueueBytes ?? DEFAULT_QUEUE_BYTES;
    if (o.bytes + frame.length > limit || o.queue.length >= MAX_QUEUE_FRAMES) this.purgeExpired(o);
    if (o.bytes + frame.length > limit) throw new BackpressureError(`outbound queue to ${peer} is full (${o.bytes} bytes); the peer is not reading`);
    if (o.queue.length >= MAX_QUEUE_FRAMES) throw new BackpressureError(`outbound queue to ${peer} is full (${o.queue.length} frames); the peer is not reading`);
    o.queue.push({ frame, expires });
    o.bytes += frame.length;
    void this.pump(peer, o);
  }

  /** Drop expired frames behind the head (the head may be being written). */
  private purgeExpired(o: Outbound): void {
    const now = (this.opts.now ?? Date.now)();
    const keep = o.queue.filter((q, i) => i === 0 || q.expires >= now);
    if (keep.length === o.queue.length) return;
    o.queue = keep;
    o.bytes = keep.reduce((a, q) => a + q.frame.length, 0);
  }

  /** Bytes waiting for `peer` (for status and backpressure). */
  queued(peer: string): number {
    return this.out.get(peer)?.bytes ?? 0;
  }
  /** Frames waiting for `peer`. */
  queuedFrames(peer: string): number {
    return this.out.get(peer)?.queue.length ?? 0;
  }

  private async pump(peer: string, o: Outbound): Promise<void> {
    if (o.pumping) return;
    o.pumping = true;
    const now = this.opts.now ?? Date.now;
    try {
      while (o.queue.length && !this.stopped) {
        const head = o.queue[0]!;
        if (head.expires < now()) {
          o.queue.shift();
          o.bytes -= head.frame.length;
          continue;
        }
        if (!o.lp) {
          try {
            if (!this.opts.node.isVerified(peer)) await this.dial(peer);
            // Bounded: a dial into a connection that is closing must not stall this peer's queue.
            const stream = await this.opts.node.node.dialProtocol(peerIdFromString(peer), ENVELOPE_PROTOCOL, { signal: AbortSignal.timeout(STREAM_OPEN_MS) });
            o.lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES });
            o.stream = stream;
            stream.addEventListener('close', () => {
              if (o.stream !== stream) return;
              o.lp = undefined;
              o.stream = undefined;
              if (!this.stopped) this.opts.onStreamLost?.(peer);
            });
            o.backoff = 100;
          } catch {
            await sleep(o.backoff);
            o.backoff = Math.min(o.backoff * 2, 2000);
            continue;
          }
        }
        try {
          await o.lp.write(head.frame, { signal: AbortSignal.timeout(WRITE_STALL_MS) });
          o.queue.shift();
          o.bytes -= head.frame.length;
        } catch {
          // Failed or stalled: drop the stream and open a new one; the frame stays at the head.
          o.stream?.abort(new Error('write failed or stalled'));
          o.lp = undefined;
          o.stream = undefined;
        }
      }
    } finally {
      o.pumping = false;
    }
  }

  /** Stop sending; close our streams gracefully so that written frames are flushed first. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.keepAlive) clearInterval(this.keepAlive);
    await Promise.all([...this.out.values()].map((o) => (o.stream ? Promise.race([o.stream.close().catch(() => undefined), sleep(2000)]) : undefined)));
  }
}

/** `addr` with the peer's /p2p/ component, for dialing. */
export const withPeerId = (addr: string, peer: string): string => (multiaddr(addr).getComponents().some((c) => c.name === 'p2p') ? addr : `${addr}/p2p/${peer}`);
