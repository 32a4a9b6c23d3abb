import { hash32, hashToCurve } from '../crypto/hash.ts';
import { Point, bytesToBigInt, chunks, mulG, pointFromBytes, randomScalar } from '../crypto/scalar-point.ts';
import { mulSecret } from '../crypto/secret-mul.ts';
import { selectBytes } from '../crypto/select.ts';
import type { Rng } from '../crypto/random.ts';
import { LAMBDA_C } from './params.ts';

/**
 * Endemic base OT (Masny–Rindal eprint 2019/706 Fig. 8) as profiled in spec §2.3, batch of
 * λc = 256. Roles: the OT-extension sender E is the base-OT *receiver* (choice bits c), the
 * extension receiver R is the base-OT *sender* (both keys).
 * sidOT = H("ot/base", dkgSid, E, R) binds every hash to the ordered pair.
 */
export const BASE_OT_CHOICE_BYTES = LAMBDA_C * 2 * 33; // R1 message, E → R
export const BASE_OT_REPLY_BYTES = LAMBDA_C * 2 * 33; // S1 message, R → E

export interface BaseOtReceiverState {
  /** Choice bits c, LSB-first packed (bit ι = c_ι). */
  choices: Uint8Array;
  t: bigint[];
}

const hPt = (sidOT: Uint8Array, i: number, b: number, q: Uint8Array) => hashToCurve('ot/base-pt', sidOT, i, b, q);

const select = (bit: number, a: Uint8Array, b: Uint8Array): Uint8Array => selectBytes(bit, a, b);

/**
 * B_c without reading at a secret index: the uncompressed encodings of both points are selected
 * byte by byte under a mask, and the chosen coordinates converted to a point.
 */
export function selectPoint(c: number, B0: Point, B1: Point): Point {
  const xy = selectBytes(c, B0.toBytes(false), B1.toBytes(false)); // 04 ‖ x ‖ y
  return Point.fromAffine({ x: bytesToBigInt(xy.subarray(1, 33)), y: bytesToBigInt(xy.subarray(33, 65)) });
}

/** R1 (E → R): P_{ι,c} = t_ι·G − H_pt(ι, c, Q_ι), P_{ι,1−c} = Q_ι. */
export function baseOtReceiverStart(sidOT: Uint8Array, rng: Rng): { state: BaseOtReceiverState; message: Uint8Array } {
  const choices = rng(LAMBDA_C / 8);
  const t: bigint[] = new Array(LAMBDA_C);
  const message = new Uint8Array(BASE_OT_CHOICE_BYTES);
  for (let i = 0; i < LAMBDA_C; i++) {
    const c = (choices[i >>> 3]! >>> (i & 7)) & 1;
    const ti = randomScalar(rng);
    t[i] = ti;
    const Q = mulG(randomScalar(rng)).toBytes(true);
    // Both hashes are computed so the work does not depend on c (spec §2.3 "dummy").
    const h0 = hPt(sidOT, i, 0, Q), h1 = hPt(sidOT, i, 1, Q);
    const tG = mulG(ti);
    const Pc0 = tG.subtract(h0).toBytes(true); // valid if c = 0
    const Pc1 = tG.subtract(h1).toBytes(true); // valid if c = 1
    const Pc = select(c, Pc0, Pc1);
    message.set(select(c, Pc, Q), i * 66); // P_{ι,0}
    message.set(select(c, Q, Pc), i * 66 + 33); // P_{ι,1}
  }
  return { state: { choices, t }, message };
}

/** S1 (R → E): both keys k_{ι,b} = H(u_{ι,b}·M_{ι,b}) and the reply B_{ι,b} = u_{ι,b}·G. Throws DecodeError. */
export function baseOtSenderRespond(sidOT: Uint8Array, choice: Uint8Array, rng: Rng): { keys0: Uint8Array[]; keys1: Uint8Array[]; reply: Uint8Array } {
  const parts = chunks(choice, 33, 2 * LAMBDA_C, 'baseOt.choice');
  const P = parts.map((b, k) => pointFromBytes(b, `baseOt.choice[${k}]`));
  const keys0: Uint8Array[] = new Array(LAMBDA_C), keys1: Uint8Array[] = new Array(LAMBDA_C);
  const reply = new Uint8Array(BASE_OT_REPLY_BYTES);
  for (let i = 0; i < LAMBDA_C; i++) {
    for (let b = 0; b < 2; b++) {
      const M = P[2 * i + b]!.add(hPt(sidOT, i, b, parts[2 * i + 1 - b]!));
      const u = randomScalar(rng);
      reply.set(mulG(u).toBytes(true), i * 66 + b * 33);
      const key = hash32('ot/key', sidOT, i, M.is0() ? new Uint8Array(33) : mulSecret(M, u).toBytes(true));
      (b === 0 ? keys0 : keys1)[i] = key;
    }
  }
  return { keys0, keys1, reply };
}

/** E: k_{ι,c_ι} = H(t_ι·B_{ι,c_ι}). Throws DecodeError. */
export function baseOtReceiverFinish(sidOT: Uint8Array, state: BaseOtReceiverState, reply: Uint8Array): Uint8Array[] {
  const parts = chunks(reply, 33, 2 * LAMBDA_C, 'baseOt.reply');
  const keys: Uint8Array[] = new Array(LAMBDA_C);
  for (let i = 0; i < LAMBDA_C; i++) {
    const c = (state.choices[i >>> 3]! >>> (i & 7)) & 1;
    // Decode both so a malformed unused point is rejected too, and timing does not reveal c.
    const B0 = pointFromBytes(parts[2 * i]!, `baseOt.reply[${2 * i}]`);
    const B1 = pointFromBytes(parts[2 * i + 1]!, `baseOt.reply[${2 * i + 1}]`);
    const Bc = selectPoint(c, B0, B1);
    keys[i] = hash32('ot/key', sidOT, i, mulSecret(Bc, state.t[i]!).toBytes(true));
  }
  return keys;
}
