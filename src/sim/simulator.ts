import { seededRng, systemRng, type Rng } from '../crypto/random.ts';
import { DealingSession, type DealingOutput, type DealingRequest } from '../protocol/dkg.ts';
import type { KeyShare } from '../protocol/key-share.ts';
import { OnlineSession, PresignSession, type Presignature, type Signature } from '../protocol/sign.ts';
import type { ProtocolError } from '../protocol/errors.ts';
import { runMachines, type RunResult, type Tamper } from './run-machines.ts';

/**
 * In-process simulator: every party of a t-of-n cluster in one thread, driven by runMachines.
 * Party identities are synthetic (32 bytes, ascending). Each party gets its own Rng: the
 * system CSPRNG by default, or a seeded one when `seed` is given (tests only).
 */
export interface SimOptions {
  seed?: string;
  tamper?: Tamper;
}

export class SimulationError extends Error {
  override readonly name = 'SimulationError';
  readonly errors: Map<number, ProtocolError>;
  constructor(what: string, errors: Map<number, ProtocolError>) {
    super(`${what} failed: ${[...errors].map(([i, e]) => `party ${i}: ${e.message}`).join('; ')}`);
    this.errors = errors;
  }
}

let rngCounter = 0;
export function partyRngs(ids: number[], seed?: string): Map<number, Rng> {
  const salt = rngCounter++;
  return new Map(ids.map((i) => [i, seed === undefined ? systemRng : seededRng(`${seed}/${salt}/${i}`)]));
}

export const syntheticIdentities = (n: number): Uint8Array[] =>
  Array.from({ length: n }, (_, k) => {
    const id = new Uint8Array(32);
    id[31] = k + 1;
    return id;
  });

export function keygenRequest(t: number, n: number, keyId = 'sim-key', nonce = new Uint8Array(32)): DealingRequest {
  const all = Array.from({ length: n }, (_, k) => k + 1);
  return { kind: 'keygen', keyId, epoch: 0, threshold: t, participants: syntheticIdentities(n), dealers: all, receivers: all, nonce };
}

/** Run a dealing ceremony with `oldShares` keyed by session index. Returns the raw result. */
export function runDealing(req: DealingRequest, oldShares: Map<number, KeyShare> = new Map(), opts: SimOptions = {}): RunResult<DealingOutput> {
  const ids = req.participants.map((_, k) => k + 1);
  const machines = new Map(ids.map((i) => [i, new DealingSession(req, i, oldShares.get(i))]));
  return runMachines(machines, partyRngs(ids, opts.seed), opts.tamper);
}

/** DKG; returns the key shares by party index, or throws SimulationError. */
export function keygen(t: number, n: number, opts: SimOptions = {}): Map<number, KeyShare> {
  const res = runDealing(keygenRequest(t, n), new Map(), opts);
  if (res.errors.size || res.outputs.size !== n) throw new SimulationError('keygen', res.errors);
  return new Map([...res.outputs].map(([i, o]) => [i, o.share!]));
}

export function runPresign(shares: Map<number, KeyShare>, signers: number[], request = new Uint8Array(0), opts: SimOptions = {}): RunResult<Presignature> {
  const machines = new Map(signers.map((i) => [i, new PresignSession(shares.get(i)!, { signers, request })]));
  return runMachines(machines, partyRngs(signers, opts.seed), opts.tamper);
}

export function runOnline(presigs: Map<number, Presignature>, digest: Uint8Array, opts: SimOptions = {}): RunResult<Signature> {
  const ids = [...presigs.keys()];
  const machines = new Map(ids.map((i) => [i, new OnlineSession(presigs.get(i)!, digest)]));
  return runMachines(machines, partyRngs(ids, opts.seed), opts.tamper);
}

/** Presign + online for one digest; returns the signature every signer computed (checked equal). */
export function sign(shares: Map<number, KeyShare>, signers: number[], digest: Uint8Array, opts: SimOptions = {}): Signature {
  const pre = runPresign(shares, signers, new Uint8Array(0), opts);
  if (pre.errors.size || pre.outputs.size !== signers.length) throw new SimulationError('presign', pre.errors);
  const on = runOnline(pre.outputs, digest, opts);
  if (on.errors.size || on.outputs.size !== signers.length) throw new SimulationError('sign', on.errors);
  const sigs = [...on.outputs.values()];
  for (const s of sigs) if (s.r !== sigs[0]!.r || s.s !== sigs[0]!.s || s.yParity !== sigs[0]!.yParity) throw new Error('signers disagree on the signature');
  return sigs[0]!;
}

/** The request for a refresh among all holders of `shares`. */
export function refreshRequest(shares: Map<number, KeyShare>): DealingRequest {
  const any = [...shares.values()][0]!;
  const ids = any.parties.map((_, k) => k + 1);
  return {
    kind: 'refresh', keyId: any.keyId, epoch: any.epoch + 1, threshold: any.threshold, participants: any.parties,
    dealers: ids, receivers: ids, dealerOldIndices: ids, nonce: new Uint8Array(32).fill(any.epoch + 1),
  };
}

/** Refresh among all holders: same public key, new epoch, fresh OT state. */
export function refresh(shares: Map<number, KeyShare>, opts: SimOptions = {}): Map<number, KeyShare> {
  const req = refreshRequest(shares);
  const ids = req.receivers;
  const res = runDealing(req, shares, opts);
  if (res.errors.size || res.outputs.size !== ids.length) throw new SimulationError('refresh', res.errors);
  return new Map([...res.outputs].map(([i, o]) => [i, o.share!]));
}

/**
 * Reshare from the old committee `committee` (old indices, |committee| = old t) to a new party
 * set: `keep` old indices stay, plus `newcomers` fresh identities; new threshold `t`.
 * Returns the new shares keyed by new index.
 */
export function reshare(shares: Map<number, KeyShare>, committee: number[], keep: number[], newcomers: number, t: number, opts: SimOptions = {}): Map<number, KeyShare> {
  const any = [...shares.values()][0]!;
  const fresh = Array.from({ length: newcomers }, (_, k) => {
    const id = new Uint8Array(32);
    id[30] = 1;
    id[31] = k + 1 + any.epoch * 16;
    return id;
  });
  const oldIds = new Map(any.parties.map((p, k) => [Buffer.from(p).toString('hex'), k + 1]));
  const involved = new Set([...committee, ...keep]);
  const participants = [...[...involved].map((k) => any.parties[k - 1]!), ...fresh].sort(Buffer.compare);
  const sessionOf = (id: Uint8Array) => participants.findIndex((p) => Buffer.compare(p, id) === 0) + 1;
  const dealersSorted = [...committee].map((o) => ({ s: sessionOf(any.parties[o - 1]!), o })).sort((a, b) => a.s - b.s);
  const receivers = [...keep.map((o) => sessionOf(any.parties[o - 1]!)), ...fresh.map(sessionOf)].sort((a, b) => a - b);
  const req: DealingRequest = {
    kind: 'reshare', keyId: any.keyId, epoch: any.epoch + 1, threshold: t, participants,
    dealers: dealersSorted.map((d) => d.s), receivers, dealerOldIndices: dealersSorted.map((d) => d.o), nonce: new Uint8Array(32).fill(0xaa),
  };
  const old = new Map<number, KeyShare>();
  for (const [s, p] of participants.entries()) {
    const o = oldIds.get(Buffer.from(p).toString('hex'));
    if (o !== undefined && shares.has(o)) old.set(s + 1, shares.get(o)!);
  }
  const res = runDealing(req, old, opts);
  if (res.errors.size || res.outputs.size !== participants.length) throw new SimulationError('reshare', res.errors);
  const out = new Map<number, KeyShare>();
  for (const o of res.outputs.values()) if (o.share) out.set(o.share.index, o.share);
  return out;
}
