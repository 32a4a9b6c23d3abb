import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { bytesToHex, hexToBytes, type Hex } from 'viem';
import { FrameError, MAX_FRAME_DATA_LENGTH, parseFrames, type Frame, type FrameRule } from '../../src/policy/frames.ts';
import { buildBatch, prng, type Prng } from './helpers.ts';

const CH = '0x000102030405060708090a0b0c0d0e0f';
/** Hand-written: version 0, frame 0 (3 bytes aabbcc, not last), frame 1 (empty, last), same channel. */
const KAT = hexToBytes(
  '0x00' +
  '000102030405060708090a0b0c0d0e0f' + '0000' + '00000003' + 'aabbcc' + '00' +
  '000102030405060708090a0b0c0d0e0f' + '0001' + '00000000' + '' + '01' as Hex,
);

function expectFrameError(bytes: Uint8Array, rule: FrameRule, offset: number, frameIndex: number | null, message: string) {
  assert.throws(() => parseFrames(bytes), (e: unknown) => {
    assert.ok(e instanceof FrameError, `expected FrameError, got ${(e as Error)?.name}`);
    assert.equal(e.name, 'FrameError');
    assert.equal(e.message, message);
    assert.equal(e.rule, rule);
    assert.equal(e.offset, offset);
    assert.equal(e.frameIndex, frameIndex);
    return true;
  });
}

const edit = (b: Uint8Array, at: number, v: number) => { const c = b.slice(); c[at] = v; return c; };

describe('parseFrames: accepted batches', () => {
  test('hand-written vector: exact frames', () => {
    assert.equal(KAT.length, 50);
    assert.deepEqual(parseFrames(KAT), [
      { channelId: CH, frameNumber: 0, dataLength: 3, isLast: false, offset: 1, data: Uint8Array.of(0xaa, 0xbb, 0xcc) },
      { channelId: CH, frameNumber: 1, dataLength: 0, isLast: true, offset: 27, data: new Uint8Array(0) },
    ] satisfies Frame[]);
    assert.deepEqual(buildBatch([
      { channelId: CH, frameNumber: 0, data: Uint8Array.of(0xaa, 0xbb, 0xcc), isLast: false },
      { channelId: CH, frameNumber: 1, data: new Uint8Array(0), isLast: true },
    ]), KAT, 'the test builder writes the same bytes');
  });

  test('a real-looking batch: two channels, three frames, ~120 KB (op-batcher max-l1-tx-size-bytes)', () => {
    const p = prng('policy/frames/real');
    const chA = p.bytes(16), chB = p.bytes(16);
    const a0 = p.bytes(60_000), a1 = p.bytes(40_000), b0 = p.bytes(19_900);
    const batch = buildBatch([
      { channelId: chA, frameNumber: 0, data: a0, isLast: false },
      { channelId: chA, frameNumber: 1, data: a1, isLast: true },
      { channelId: chB, frameNumber: 0, data: b0, isLast: true },
    ]);
    assert.equal(batch.length, 1 + 3 * 23 + 119_900);
    const frames = parseFrames(batch);
    assert.deepEqual(frames.map((f) => [f.channelId, f.frameNumber, f.dataLength, f.isLast, f.offset]), [
      [bytesToHex(chA), 0, 60_000, false, 1],
      [bytesToHex(chA), 1, 40_000, true, 60_024],
      [bytesToHex(chB), 0, 19_900, true, 100_047],
    ]);
    assert.deepEqual(frames[0]!.data, a0);
    assert.deepEqual(frames[1]!.data, a1);
    assert.deepEqual(frames[2]!.data, b0);
  });

  test('frame_data_length of exactly 1,000,000 is accepted', () => {
    const batch = buildBatch([{ channelId: CH, frameNumber: 7, data: new Uint8Array(MAX_FRAME_DATA_LENGTH), isLast: true }]);
    const [f] = parseFrames(batch);
    assert.equal(f!.dataLength, 1_000_000);
    assert.equal(f!.frameNumber, 7);
  });
});

describe('parseFrames: every rule refuses with FrameError naming offset and rule', () => {
  test('empty input', () => expectFrameError(new Uint8Array(0), 'empty', 0, null, 'byte 0: empty batch, expected derivation version 0'));
  test('derivation version 1 (alt-DA commitment) and others', () => {
    expectFrameError(edit(KAT, 0, 1), 'version', 0, null, 'byte 0: derivation version must be 0, got 1');
    expectFrameError(edit(KAT, 0, 0xff), 'version', 0, null, 'byte 0: derivation version must be 0, got 255');
  });
  test('version byte alone: at least one frame', () => expectFrameError(Uint8Array.of(0), 'no-frames', 1, null, 'byte 1: no frames after the derivation version byte'));
  test('trailing bytes after the last frame', () => {
    expectFrameError(Uint8Array.of(...KAT, 0), 'header', 50, 2, 'frame 2 at byte 50: truncated frame header: 1 bytes left, need 22 (no trailing bytes allowed)');
    expectFrameError(Uint8Array.of(...KAT, ...new Uint8Array(21)), 'header', 50, 2, 'frame 2 at byte 50: truncated frame header: 21 bytes left, need 22 (no trailing bytes allowed)');
  });
  test('truncated header of the first frame', () => {
    expectFrameError(KAT.subarray(0, 10), 'header', 1, 0, 'frame 0 at byte 1: truncated frame header: 9 bytes left, need 22 (no trailing bytes allowed)');
  });
  test('frame_data_length over 1,000,000', () => {
    const over = buildBatch([{ channelId: CH, frameNumber: 0, data: new Uint8Array(MAX_FRAME_DATA_LENGTH + 1), isLast: true }]);
    expectFrameError(over, 'length-cap', 19, 0, 'frame 0 at byte 19: frame_data_length 1000001 exceeds 1000000');
    const huge = KAT.slice(); huge.set([0xff, 0xff, 0xff, 0xff], 27 + 18);
    expectFrameError(huge, 'length-cap', 45, 1, 'frame 1 at byte 45: frame_data_length 4294967295 exceeds 1000000');
  });
  test('frame_data shorter than its length', () => {
    const c = KAT.slice(); c.set([0, 0, 0, 0x30], 19);
    expectFrameError(c, 'data', 23, 0, 'frame 0 at byte 23: frame_data_length 48 but only 27 bytes left');
  });
  test('is_last missing or not 0/1', () => {
    expectFrameError(KAT.subarray(0, 49), 'is-last', 49, 1, 'frame 1 at byte 49: missing is_last byte');
    expectFrameError(edit(KAT, 49, 7), 'is-last', 49, 1, 'frame 1 at byte 49: is_last must be 0 or 1, got 7');
    expectFrameError(edit(KAT, 26, 2), 'is-last', 26, 0, 'frame 0 at byte 26: is_last must be 0 or 1, got 2');
  });
});

/** 1..3 random edits: flip, overwrite, insert, delete, truncate, extend. */
function mutate(p: Prng, src: Uint8Array): Uint8Array {
  let b = src.slice();
  for (let e = 1 + p.int(3); e > 0; e--) {
    const at = p.int(Math.max(1, b.length));
    switch (p.int(6)) {
      case 0: if (b.length) b[at]! ^= 1 << p.int(8); break;
      case 1: if (b.length) b[at] = p.byte(); break;
      case 2: b = Uint8Array.of(...b.subarray(0, at), ...p.bytes(1 + p.int(4)), ...b.subarray(at)); break;
      case 3: b = Uint8Array.of(...b.subarray(0, at), ...b.subarray(at + 1 + p.int(4))); break;
      case 4: b = b.slice(0, p.int(b.length + 1)); break;
      default: b = Uint8Array.of(...b, ...p.bytes(1 + p.int(6))); break;
    }
  }
  return b;
}

function randomBatch(p: Prng): Uint8Array {
  const n = 1 + p.int(4);
  return buildBatch(Array.from({ length: n }, () => ({
    channelId: p.bytes(16), frameNumber: p.int(65536), data: p.bytes(p.int(4) === 0 ? 0 : p.int(64)), isLast: p.int(2) === 1,
  })));
}

describe('parseFrames: fuzz', () => {
  test('10,000 random and mutated inputs: only FrameError escapes; accepted inputs rebuild to themselves', () => {
    const p = prng('policy/frames/fuzz');
    let accepted = 0, rejected = 0;
    const rules = new Map<FrameRule, number>();
    for (let k = 0; k < 10_000; k++) {
      const kind = p.int(4);
      const input = kind === 0
        ? Uint8Array.of(p.int(2) === 0 ? 0 : p.byte(), ...p.bytes(p.int(120)))
        : kind === 1 ? randomBatch(p) : mutate(p, randomBatch(p));
      let frames: Frame[];
      try {
        frames = parseFrames(input);
      } catch (e) {
        if (!(e instanceof FrameError)) assert.fail(`non-FrameError ${(e as Error)?.name}: ${(e as Error)?.message} on ${bytesToHex(input.subarray(0, 80))}`);
        assert.match(e.message, /^(frame \d+ at )?byte \d+: /);
        rules.set(e.rule, (rules.get(e.rule) ?? 0) + 1);
        rejected++;
        continue;
      }
      accepted++;
      assert.ok(frames.length >= 1);
      assert.deepEqual(buildBatch(frames), input, 'accepted bytes rebuild to themselves');
    }
    assert.ok(accepted > 2_000 && rejected > 4_000, `accepted ${accepted}, rejected ${rejected}`);
    assert.deepEqual([...rules.keys()].sort(), ['data', 'empty', 'header', 'is-last', 'length-cap', 'no-frames', 'version'], 'every rule is hit');
    console.log(`# frames fuzz: accepted ${accepted}, rejected ${rejected}, by rule ${JSON.stringify(Object.fromEntries(rules))}`);
  });
});
