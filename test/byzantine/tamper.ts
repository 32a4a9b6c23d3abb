import assert from 'node:assert/strict';
import { N, G } from '../../src/crypto/scalar-point.ts';
import type { ProtocolError } from '../../src/protocol/errors.ts';
import { decodeBody, encodeBody, type Body, type BodyCase, type BodyMap } from '../../src/protocol/messages.ts';
import type { Delivery, RunResult, Tamper } from '../../src/sim/run-machines.ts';

/**
 * The byzantine harness: rewrite any field of any outgoing message of one party, per recipient,
 * through runMachines' tamper hook (spec §4.4).
 */
export type Edit<K extends BodyCase> = (value: BodyMap[K], to: number) => BodyMap[K];

const deliver = (msg: { to: number | null; bytes: Uint8Array }, recipients: number[]): Delivery[] =>
  recipients.map((to) => ({ to, bytes: msg.bytes, broadcast: msg.to === null }));

/** Rewrite the `kind` messages of `party` (only those to `onlyTo`, if given: equivocation). */
export function rewrite<K extends BodyCase>(party: number, kind: K, edit: Edit<K>, onlyTo?: number): Tamper {
  return (from, msg, recipients) => {
    if (from !== party) return deliver(msg, recipients);
    const body = decodeBody(msg.bytes);
    if (body.case !== kind) return deliver(msg, recipients);
    return recipients.map((to) => {
      if (onlyTo !== undefined && to !== onlyTo) return { to, bytes: msg.bytes, broadcast: msg.to === null };
      const value = edit({ ...(body.value as BodyMap[K]) }, to);
      return { to, bytes: encodeBody({ case: kind, value } as Body), broadcast: msg.to === null };
    });
  };
}

/** Rewrite one bytes field of `party`'s `kind` messages. */
export function field<K extends BodyCase>(party: number, kind: K, name: keyof BodyMap[K] & string, mutate: (b: Uint8Array) => Uint8Array, onlyTo?: number): Tamper {
  return rewrite(party, kind, (v) => ({ ...v, [name]: mutate((v as unknown as Record<string, Uint8Array>)[name]!) }), onlyTo);
}

/** Replace `party`'s whole `kind` message by other bytes. */
export function wholeMessage(party: number, kind: BodyCase, bytes: (original: Uint8Array) => Uint8Array, broadcast?: boolean): Tamper {
  return (from, msg, recipients) => {
    if (from !== party || decodeBody(msg.bytes).case !== kind) return deliver(msg, recipients);
    return recipients.map((to) => ({ to, bytes: bytes(msg.bytes), broadcast: broadcast ?? msg.to === null }));
  };
}

/** Deliver every message of `party` of this kind twice. */
export function duplicate(party: number, kind: BodyCase): Tamper {
  return (from, msg, recipients) => {
    const d = deliver(msg, recipients);
    return from === party && decodeBody(msg.bytes).case === kind ? [...d, ...d] : d;
  };
}

// ---- mutators ----
export const flipBit = (bit: number) => (b: Uint8Array): Uint8Array => {
  const c = new Uint8Array(b);
  c[bit >>> 3]! ^= 1 << (bit & 7);
  return c;
};
/** Flip the lowest bit of the last byte: keeps a big-endian scalar below n with overwhelming probability. */
export const flipLastBit = (b: Uint8Array): Uint8Array => flipBit((b.length - 1) * 8)(b);
export const truncate = (k: number) => (b: Uint8Array): Uint8Array => b.slice(0, b.length - k);
export const extend = (k: number) => (b: Uint8Array): Uint8Array => new Uint8Array([...b, ...new Uint8Array(k)]);
export const replaceAt = (offset: number, bytes: Uint8Array) => (b: Uint8Array): Uint8Array => {
  const c = new Uint8Array(b);
  c.set(bytes, offset);
  return c;
};
export const IDENTITY = new Uint8Array(33);
export const GENERATOR = G.toBytes(true);
export const OTHER_POINT = G.double().toBytes(true);
export const ORDER_N = (() => {
  const b = new Uint8Array(32);
  let x = N;
  for (let i = 31; i >= 0; i--, x >>= 8n) b[i] = Number(x & 0xffn);
  return b;
})();
export const scalarPlusOne = (b: Uint8Array): Uint8Array => {
  let x = 0n;
  for (const v of b) x = (x << 8n) | BigInt(v);
  x = (x + 1n) % N;
  const out = new Uint8Array(32);
  for (let i = 31; i >= 0; i--, x >>= 8n) out[i] = Number(x & 0xffn);
  return out;
};

/**
 * Every honest party ended with exactly this error class, check and culprit (and, if given, a
 * message containing `reason`: it tells apart two sites with the same check name), and produced
 * no output (no key share, presignature or signature).
 */
export function expectAll<O>(res: RunResult<O>, honest: number[], cls: abstract new (...a: never[]) => ProtocolError, check: string, culprit: number | undefined, reason?: string): void {
  for (const i of honest) {
    const e = res.errors.get(i);
    assert.ok(e instanceof cls, `party ${i}: expected ${cls.name}, got ${e ? `${e.name}: ${e.message}` : 'no error'}`);
    assert.equal(e.check, check, `party ${i}: ${e.message}`);
    assert.equal(e.culprit, culprit, `party ${i}: ${e.message}`);
    if (reason !== undefined) assert.ok(e.message.includes(reason), `party ${i}: expected "${reason}" in "${e.message}"`);
    assert.equal(res.outputs.has(i), false, `party ${i} produced an output`);
  }
}
