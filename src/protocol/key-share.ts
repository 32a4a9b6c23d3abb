import { DecodeError } from '../crypto/errors.ts';
import { interpolateInExponent } from '../crypto/feldman.ts';
import { Point, mulG, concatPoints, decodePoints, exactBytes, pointFromBytes, pointToBytes, scalarFromBytes, scalarToBytes } from '../crypto/scalar-point.ts';
import { GROUPS, SEEDS_BYTES } from '../ot/params.ts';
import { KeyShareType, strictDecode } from './messages.ts';

/** Per-peer long-term state from the pairwise OT setup (spec §2.2 "Output key share"). */
export interface PairState {
  /** This party as OT-extension sender E towards the peer: Δ_g per group. */
  delta: Uint8Array;
  /** … and the 15 known seeds per group (the punctured one is zero). */
  senderSeeds: Uint8Array;
  /** This party as receiver R towards the peer: all 16 seeds per group. */
  receiverSeeds: Uint8Array;
  /** Zero-sharing seed shared with the peer. */
  zeroSeed: Uint8Array;
}

export interface KeyShare {
  keyId: string;
  epoch: number;
  dkgSid: Uint8Array;
  threshold: number;
  /** This party's index, 1..n; its evaluation point is x = index. */
  index: number;
  /** Party identities in index order (index k+1 at position k). */
  parties: Uint8Array[];
  secretShare: bigint;
  publicKey: Point;
  publicShares: Point[];
  pairs: Map<number, PairState>;
}

export const KEY_SHARE_VERSION = 1;

export function encodeKeyShare(k: KeyShare): Uint8Array {
  return KeyShareType.encode(
    KeyShareType.create({
      version: KEY_SHARE_VERSION,
      keyId: k.keyId,
      epoch: k.epoch,
      dkgSessionId: k.dkgSid,
      threshold: k.threshold,
      index: k.index,
      parties: k.parties,
      secretShare: scalarToBytes(k.secretShare),
      publicKey: pointToBytes(k.publicKey),
      publicShares: concatPoints(k.publicShares),
      pairs: [...k.pairs].sort(([a], [b]) => a - b).map(([peer, p]) => ({
        peer,
        otSenderDelta: p.delta,
        otSenderSeeds: p.senderSeeds,
        otReceiverSeeds: p.receiverSeeds,
        zeroSeed: p.zeroSeed,
      })),
    }),
  ).finish();
}

/** Strict decode; checks every length, index and the public data's internal consistency. */
export function decodeKeyShare(bytes: Uint8Array): KeyShare {
  const m = strictDecode(KeyShareType, bytes, 'keyShare') as unknown as {
    version: number; keyId: string; epoch: number; dkgSessionId: Uint8Array; threshold: number; index: number;
    parties: Uint8Array[]; secretShare: Uint8Array; publicKey: Uint8Array; publicShares: Uint8Array;
    pairs: { peer: number; otSenderDelta: Uint8Array; otSenderSeeds: Uint8Array; otReceiverSeeds: Uint8Array; zeroSeed: Uint8Array }[];
  };
  if (m.version !== KEY_SHARE_VERSION) throw new DecodeError('keyShare.version', `unsupported version ${m.version}`);
  const n = m.parties.length;
  if (n < 2 || n > 255) throw new DecodeError('keyShare.parties', `bad party count ${n}`);
  if (m.threshold < 2 || m.threshold > n) throw new DecodeError('keyShare.threshold', `threshold ${m.threshold} not in 2..${n}`);
  if (m.index < 1 || m.index > n) throw new DecodeError('keyShare.index', `index ${m.index} not in 1..${n}`);
  if (!m.keyId) throw new DecodeError('keyShare.keyId', 'empty');
  const pairs = new Map<number, PairState>();
  for (const p of m.pairs) {
    if (p.peer < 1 || p.peer > n || p.peer === m.index || pairs.has(p.peer)) throw new DecodeError('keyShare.pairs', `bad peer ${p.peer}`);
    exactBytes(p.otSenderDelta, GROUPS, 'keyShare.pairs.delta');
    if (p.otSenderDelta.some((d) => d > 15)) throw new DecodeError('keyShare.pairs.delta', 'Δ_g out of range');
    pairs.set(p.peer, {
      delta: new Uint8Array(p.otSenderDelta),
      senderSeeds: new Uint8Array(exactBytes(p.otSenderSeeds, SEEDS_BYTES, 'keyShare.pairs.senderSeeds')),
      receiverSeeds: new Uint8Array(exactBytes(p.otReceiverSeeds, SEEDS_BYTES, 'keyShare.pairs.receiverSeeds')),
      zeroSeed: new Uint8Array(exactBytes(p.zeroSeed, 32, 'keyShare.pairs.zeroSeed')),
    });
  }
  if (pairs.size !== n - 1) throw new DecodeError('keyShare.pairs', `expected ${n - 1} peers, got ${pairs.size}`);
  const ids = new Set(m.parties.map((p) => Buffer.from(p).toString('hex')));
  if (ids.size !== n || m.parties.some((p) => p.length === 0)) throw new DecodeError('keyShare.parties', 'party identities must be non-empty and distinct');
  const share: KeyShare = {
    keyId: m.keyId,
    epoch: m.epoch,
    dkgSid: new Uint8Array(exactBytes(m.dkgSessionId, 32, 'keyShare.dkgSessionId')),
    threshold: m.threshold,
    index: m.index,
    parties: m.parties.map((p) => new Uint8Array(p)),
    secretShare: scalarFromBytes(m.secretShare, 'keyShare.secretShare', { nonZero: true }),
    publicKey: pointFromBytes(m.publicKey, 'keyShare.publicKey'),
    publicShares: decodePoints(m.publicShares, n, 'keyShare.publicShares'),
    pairs,
  };
  // The public data must be consistent: s_i·G = S_i, and the S_k lie on one polynomial of degree
  // t−1 through PK (spec §2.2 round 4) — a corrupted or mixed-up file is refused, not used.
  if (!mulG(share.secretShare).equals(share.publicShares[share.index - 1]!)) throw new DecodeError('keyShare.secretShare', 'does not match this party\'s public share');
  const xs = Array.from({ length: share.threshold }, (_, k) => BigInt(k + 1));
  const base = share.publicShares.slice(0, share.threshold);
  if (!interpolateInExponent(xs, base).equals(share.publicKey)) throw new DecodeError('keyShare.publicShares', 'do not interpolate to the public key');
  for (let k = share.threshold; k < n; k++)
    if (!interpolateInExponent(xs, base, BigInt(k + 1)).equals(share.publicShares[k]!)) throw new DecodeError('keyShare.publicShares', `public share ${k + 1} is inconsistent`);
  return share;
}
