/**
 * Strict parser for OP Stack batches: `derivation_version(0) ‖ frame+` (system-anchors §1.5,
 * derivation.md "Batcher Transaction Format" and "Frame Format"). Pure: bytes in, frames or a
 * `FrameError` out. Used for calldata (`input` of a type-2 tx) and for the rollup payload decoded
 * from a blob, which is again `version_byte(0) ‖ frames`.
 */
import { bytesToHex, type Hex } from 'viem';

/** Derivation version 0 = frames (§1.5; version 1 is an alt-DA commitment, refused here). */
export const DERIVATION_VERSION_0 = 0;
/** frame_data_length ≤ 1,000,000 (derivation.md "Frame Format", §1.5). */
export const MAX_FRAME_DATA_LENGTH = 1_000_000;
/** channel_id(16) ‖ frame_number(2) ‖ frame_data_length(4). */
export const FRAME_HEADER_BYTES = 22;
/** Header plus the is_last byte: the fixed 23-byte overhead of §1.5. */
export const FRAME_OVERHEAD_BYTES = 23;

export interface Frame {
  /** 16-byte channel id, 0x-hex lowercase. */
  channelId: Hex;
  frameNumber: number;
  dataLength: number;
  isLast: boolean;
  /** Byte offset of the frame (its channel id) in the batch. */
  offset: number;
  /** frame_data, a view into the input. */
  data: Uint8Array;
}

export type FrameRule = 'empty' | 'version' | 'no-frames' | 'header' | 'length-cap' | 'data' | 'is-last';

/**
 * A batch that is not `version 0 ‖ frame+`. The message names the frame (0-based index in the
 * batch, not its frame_number), the byte offset of the offending field and the rule.
 */
export class FrameError extends Error {
  override readonly name = 'FrameError';
  readonly rule: FrameRule;
  readonly offset: number;
  /** Index of the frame in the batch, or null for the version byte / whole batch. */
  readonly frameIndex: number | null;
  constructor(rule: FrameRule, offset: number, frameIndex: number | null, reason: string) {
    super(frameIndex === null ? `byte ${offset}: ${reason}` : `frame ${frameIndex} at byte ${offset}: ${reason}`);
    this.rule = rule;
    this.offset = offset;
    this.frameIndex = frameIndex;
  }
}

/** Parses a whole batch; throws `FrameError` unless it is exactly `0x00 ‖ frame+` (no trailing bytes). */
export function parseFrames(batch: Uint8Array): Frame[] {
  if (batch.length === 0) throw new FrameError('empty', 0, null, 'empty batch, expected derivation version 0');
  if (batch[0] !== DERIVATION_VERSION_0) {
    throw new FrameError('version', 0, null, `derivation version must be 0, got ${batch[0]}`);
  }
  if (batch.length === 1) throw new FrameError('no-frames', 1, null, 'no frames after the derivation version byte');
  const view = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
  const frames: Frame[] = [];
  let pos = 1;
  while (pos < batch.length) {
    const i = frames.length, start = pos, left = batch.length - pos;
    if (left < FRAME_HEADER_BYTES) {
      throw new FrameError('header', start, i, `truncated frame header: ${left} bytes left, need ${FRAME_HEADER_BYTES} (no trailing bytes allowed)`);
    }
    const channelId = bytesToHex(batch.subarray(pos, pos + 16));
    const frameNumber = view.getUint16(pos + 16, false);
    const dataLength = view.getUint32(pos + 18, false);
    if (dataLength > MAX_FRAME_DATA_LENGTH) {
      throw new FrameError('length-cap', pos + 18, i, `frame_data_length ${dataLength} exceeds ${MAX_FRAME_DATA_LENGTH}`);
    }
    pos += FRAME_HEADER_BYTES;
    const dataLeft = batch.length - pos;
    if (dataLeft < dataLength) {
      throw new FrameError('data', pos, i, `frame_data_length ${dataLength} but only ${dataLeft} bytes left`);
    }
    const data = batch.subarray(pos, pos + dataLength);
    pos += dataLength;
    if (pos === batch.length) throw new FrameError('is-last', pos, i, 'missing is_last byte');
    const isLast = batch[pos]!;
    if (isLast > 1) throw new FrameError('is-last', pos, i, `is_last must be 0 or 1, got ${isLast}`);
    pos += 1;
    frames.push({ channelId, frameNumber, dataLength, isLast: isLast === 1, offset: start, data });
  }
  return frames;
}
