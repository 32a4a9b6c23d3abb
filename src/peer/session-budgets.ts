/**
 * What the session host may hold per member (issue 11), and how it holds it: the budgets of its
 * three per-peer buffers, and exact-size copies of the frames it keeps.
 */
import type { BufferStats, Buffered, PeerBudget } from './peer-buffer.ts';

/**
 * Frames from one member for sessions not started here. An honest peer sends early only its
 * first-round messages (≤ ~200 bytes: nobody gets past round 1 without ours), one per session it
 * runs with us, so 1024 frames cover 1024 concurrent sessions; 4 MiB holds 80 of the largest
 * message a session can carry (signMultiply, 49.7 KB), so even a peer sending only those gets
 * 80 through. Held 60 s: sessions start within seconds of each other.
 */
export const EARLY_BUDGET: PeerBudget = { frames: 1024, bytes: 4 << 20 };
export const EARLY_TTL_MS = 60_000;
/**
 * Control messages to one member kept for resending on reconnect, until they expire or their
 * session ends. Sign proposals carry blobs (≤ ~800 KB with six): 16 MiB keeps 20 of those, and
 * 1024 frames cover the 200 concurrent requests the API is tested with, several times over.
 * An evicted entry only loses its resend: it was queued on the mesh when sent.
 */
export const CONTROL_RESEND_BUDGET: PeerBudget = { frames: 1024, bytes: 16 << 20 };
/**
 * Our last flights to one member of sessions that completed here, kept until their deadline (a
 * presign sends a member ~59 KB: 8 MiB keeps the last ~140 presigns per member, more than a peer
 * completes within the 20 s presign deadline). Eviction only loses a resend.
 */
export const LINGER_BUDGET: PeerBudget = { frames: 1024, bytes: 8 << 20 };
/** Expired entries are swept at most this often (amortized over incoming and outgoing traffic). */
export const SWEEP_INTERVAL_MS = 1000;

export interface Early extends Buffered { to: number; protocol: string; payload: Uint8Array; frame: Uint8Array }
export interface Resend extends Buffered { frame: Uint8Array }

export interface HostBufferStats {
  sessions: number;
  early: BufferStats;
  controlSent: BufferStats;
  lingering: BufferStats;
  replay: { senders: number; pairs: number; maxPairsPerSender: number };
}

/**
 * A view into a larger buffer (a socket read chunk, Node's 8 KiB allocation pool) would pin all
 * of it while held: keep an exact-size copy. (`new Uint8Array(view)` copies; a Buffer's slice
 * would not.)
 */
export const own = (b: Uint8Array): Uint8Array => (b.byteLength === b.buffer.byteLength ? b : new Uint8Array(b));

/** `own` for a frame and the payload inside it, keeping the payload a view of the copied frame. */
export function compact(frame: Uint8Array, payload: Uint8Array): { frame: Uint8Array; payload: Uint8Array } {
  if (frame.byteLength === frame.buffer.byteLength) return { frame, payload };
  const copy = new Uint8Array(frame);
  const off = payload.buffer === frame.buffer ? payload.byteOffset - frame.byteOffset : -1;
  return { frame: copy, payload: off >= 0 && off + payload.length <= copy.length ? copy.subarray(off, off + payload.length) : new Uint8Array(payload) };
}
