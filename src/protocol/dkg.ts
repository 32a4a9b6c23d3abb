import { hash32 } from '../crypto/hash.ts';
import { evalInExponent, evalPolynomial, feldmanCommit, feldmanVerify, interpolateInExponent, lagrangeAtZero, randomPolynomial } from '../crypto/feldman.ts';
import { mulG, Point, chunks, concatPoints, exactBytes, pointFromBytes, pointOrIdentityFromBytes, pointOrIdentityToBytes, pointToBytes, randomScalar, scalarFromBytes, scalarToBytes, Fn, decodePoints } from '../crypto/scalar-point.ts';
import { SCHNORR_PROOF_BYTES, decodeSchnorr, encodeSchnorr, schnorrProve, schnorrVerify } from '../crypto/schnorr.ts';
import type { Rng } from '../crypto/random.ts';
import { baseOtReceiverStart, baseOtSenderRespond, type BaseOtReceiverState } from '../ot/endemic-ot.ts';
import { pprfBuild } from '../ot/pprf.ts';
import { pairSeed } from '../mul/zero-sharing.ts';
import { AbortError } from './errors.ts';
import { RoundMachine, attributed, bodiesOf, bytesEqual, type Outgoing, type RoundMessages, type RoundSpec } from './machine.ts';
import { finishOtSetup, wipeBaseOt } from './ot-setup.ts';
import { OldPublicDataType, encodeBody, strictDecode } from './messages.ts';
import type { KeyShare, PairState } from './key-share.ts';

/**
 * Distributed key generation, refresh and reshare as one "dealing" protocol (spec §2.2, §2.11,
 * §2.12): dealers commit to Feldman polynomials, reveal them with Schnorr PoKs, send shares;
 * receivers run the pairwise OT setup (§2.3) and zero-sharing seeds among themselves and confirm.
 *
 * Round 1 (broadcast)  KeygenCommit   sid_i, C_i
 * Round 2 (broadcast)  KeygenReveal   F_i, ρ_i, PoKs, echo(R1)      (+ p2p BaseOtChoice, receivers)
 * Round 3 (p2p)        KeygenShare    f_i(x_j), OT reply + PPRF, zero seed, echo(R2)
 * Round 4 (broadcast)  KeygenConfirm  PK, S_i, PoK(s_i), echo(R1,R2)
 */
export type DealingKind = 'keygen' | 'refresh' | 'reshare';

export interface DealingRequest {
  kind: DealingKind;
  keyId: string;
  /** Epoch of the resulting key (0 for keygen, old epoch + 1 otherwise). */
  epoch: number;
  /** Threshold t of the resulting key: any t receivers can sign. */
  threshold: number;
  /** Identities of everyone in the ceremony, sorted ascending; session index = position + 1. */
  participants: Uint8Array[];
  /** Session indices of the dealers. keygen and refresh: everyone. reshare: the old committee Q. */
  dealers: number[];
  /** Session indices of the new key's holders, ascending; new key index = position + 1. */
  receivers: number[];
  /** refresh/reshare: the old key index of every dealer, parallel to `dealers`. */
  dealerOldIndices?: number[];
  /** 32 fresh bytes chosen by the ceremony's proposer. */
  nonce: Uint8Array;
}

export interface DealingOutput {
  /** Present for receivers. */
  share?: KeyShare;
  publicKey: Point;
  publicShares: Point[];
  dkgSid: Uint8Array;
  /** The round-4 echo every party confirmed (digest of rounds 1–2 as seen): ceremonies bind their acks to it. */
  echo: Uint8Array;
}

const MAX_PARTIES = 64;

/** Hash of the request: every party derives it and checks that all others did too. */
export function dealingInstanceId(req: DealingRequest): Uint8Array {
  return hash32(
    'dkg/request', new TextEncoder().encode(req.kind), new TextEncoder().encode(req.keyId), req.epoch, req.threshold,
    req.participants.length, ...req.participants, req.dealers.length, ...req.dealers, req.receivers.length, ...req.receivers,
    (req.dealerOldIndices ?? []).length, ...(req.dealerOldIndices ?? []), req.nonce,
  );
}

function validateRequest(req: DealingRequest, self: number, oldShare: KeyShare | undefined): void {
  const bad = (m: string) => new AbortError('bad-input', m);
  const p = req.participants.length;
  if (p < 2 || p > MAX_PARTIES) throw bad(`participant count ${p} not in 2..${MAX_PARTIES}`);
  for (let k = 1; k < p; k++) if (Buffer.compare(req.participants[k - 1]!, req.participants[k]!) >= 0) throw bad('participants must be sorted and distinct');
  if (self < 1 || self > p) throw bad(`self index ${self} not in 1..${p}`);
  const inRange = (xs: number[], what: string) => {
    if (xs.some((x) => !Number.isInteger(x) || x < 1 || x > p) || new Set(xs).size !== xs.length) throw bad(`${what} must be distinct indices in 1..${p}`);
    if ([...xs].sort((a, b) => a - b).some((x, k) => x !== xs[k])) throw bad(`${what} must be ascending`);
  };
  inRange(req.dealers, 'dealers');
  inRange(req.receivers, 'receivers');
  if (req.threshold < 2 || req.threshold > req.receivers.length) throw bad(`threshold ${req.threshold} not in 2..${req.receivers.length}`);
  if (req.nonce.length !== 32) throw bad('nonce must be 32 bytes');
  if (new Set([...req.dealers, ...req.receivers]).size !== p) throw bad('every participant must deal or receive');
  if (req.kind === 'keygen' || req.kind === 'refresh') {
    if (req.dealers.length !== p || req.receivers.length !== p) throw bad(`${req.kind}: every participant deals and receives`);
  }
  if (req.kind === 'keygen') {
    if (req.epoch !== 0) throw bad('keygen produces epoch 0');
    if (oldShare) throw bad('keygen takes no old share');
    return;
  }
  const old = req.dealerOldIndices;
  if (!old || old.length !== req.dealers.length) throw bad(`${req.kind}: dealerOldIndices must list the old index of every dealer`);
  if (old.some((o) => !Number.isInteger(o) || o < 1) || new Set(old).size !== old.length) throw bad('dealerOldIndices must be distinct indices ≥ 1');
  if (req.kind === 'refresh' && old.some((o, k) => o !== req.dealers[k])) throw bad('refresh keeps every index');
  const isDealer = req.dealers.includes(self);
  if (isDealer && !oldShare) throw bad('a dealer needs its old key share');
  if (oldShare) {
    if (oldShare.keyId !== req.keyId) throw bad('old share is for another key');
    if (req.epoch !== oldShare.epoch + 1) throw bad(`new epoch must be ${oldShare.epoch + 1}`);
    if (req.kind === 'refresh' && req.threshold !== oldShare.threshold) throw bad('refresh keeps the threshold');
    if (req.kind === 'reshare' && req.dealers.length !== oldShare.threshold) throw bad(`reshare needs exactly ${oldShare.threshold} dealers`);
    if (isDealer && old[req.dealers.indexOf(self)] !== oldShare.index) throw bad('my old index does not match my share');
    const oldN = oldShare.parties.length;
    if (old.some((o) => o > oldN)) throw bad(`dealerOldIndices must be in 1..${oldN}, the old key's parties`);
  }
}

interface Dealing {
  coeffs: bigint[];
  F: Point[];
  rho: Uint8Array;
}

export class DealingSession extends RoundMachine<DealingOutput> {
  readonly req: DealingRequest;
  private readonly oldShare: KeyShare | undefined;
  private readonly others: number[];
  private readonly otherReceivers: number[];
  private readonly isDealer: boolean;
  private readonly isReceiver: boolean;
  protected readonly rounds: RoundSpec[];
  private readonly instanceId: Uint8Array;
  private readonly t: number;

  private dealing: Dealing | undefined;
  private sessionNonce: Uint8Array = new Uint8Array(0);
  private dkgSid: Uint8Array = new Uint8Array(0);
  private readonly ownBroadcast = new Map<number, Uint8Array>(); // round → my broadcast bytes
  private echo1: Uint8Array = new Uint8Array(0);
  private echo2: Uint8Array = new Uint8Array(0);
  private feldman = new Map<number, Point[]>(); // dealer → F
  private aggregate: Point[] = []; // Σ_dealers F_k
  private publicKey: Point = Point.ZERO;
  private oldPublic: { publicKey: Point; publicShares: Point[]; threshold: number } | undefined;
  private baseOt = new Map<number, BaseOtReceiverState>(); // peer → my base-OT receiver state (me as E)
  private pairs = new Map<number, Partial<PairState> & { zMine?: Uint8Array }>(); // by session index
  private newShare = 0n;
  private publicShares: Point[] = [];

  constructor(req: DealingRequest, self: number, oldShare?: KeyShare) {
    super(self);
    validateRequest(req, self, oldShare);
    this.req = req;
    this.oldShare = oldShare;
    this.t = req.threshold;
    const all = req.participants.map((_, k) => k + 1);
    this.others = all.filter((k) => k !== self);
    this.isDealer = req.dealers.includes(self);
    this.isReceiver = req.receivers.includes(self);
    this.otherReceivers = this.isReceiver ? req.receivers.filter((k) => k !== self) : [];
    this.instanceId = dealingInstanceId(req);
    this.rounds = [
      { bodies: { keygenCommit: 'broadcast' }, from: { keygenCommit: this.others } },
      { bodies: { keygenReveal: 'broadcast', baseOtChoice: 'p2p' }, from: { keygenReveal: this.others, baseOtChoice: this.otherReceivers } },
      { bodies: { keygenShare: 'p2p' }, from: { keygenShare: this.others } },
      { bodies: { keygenConfirm: 'broadcast' }, from: { keygenConfirm: this.others } },
    ];
  }

  /** New key index (evaluation point) of a session participant, or 0 if it receives nothing. */
  private newIndex(session: number): number {
    return this.req.receivers.indexOf(session) + 1;
  }
  private oldIndexOfDealer(session: number): number {
    return this.req.dealerOldIndices![this.req.dealers.indexOf(session)]!;
  }
  private firstProofIndex(): number {
    return this.req.kind === 'refresh' ? 1 : 0; // no PoK for the zero constant (spec §2.11)
  }

  private broadcast(round: number, body: Parameters<typeof encodeBody>[0]): Outgoing {
    const bytes = encodeBody(body);
    this.ownBroadcast.set(round, bytes);
    return { to: null, bytes };
  }

  /** Digest of one round's broadcasts as received, ordered by sender (spec §2.0 echo). */
  private echoOf(round: number, msgs: Map<number, { bytes: Uint8Array }>): Uint8Array {
    const all = this.req.participants.map((_, k) => (k + 1 === this.self ? this.ownBroadcast.get(round)! : msgs.get(k + 1)!.bytes));
    // Bound to the request, not to dkgSid: an equivocated round-1 broadcast changes dkgSid, and the
    // echo must expose that as broadcast inconsistency rather than blame the party who reports it.
    return hash32(`dkg/echo${round}`, this.instanceId, ...all);
  }

  protected begin(rng: Rng): Outgoing[] {
    this.sessionNonce = rng(32);
    let commitment: Uint8Array = new Uint8Array(0);
    if (this.isDealer) {
      let constant: bigint;
      if (this.req.kind === 'keygen') constant = randomScalar(rng);
      else if (this.req.kind === 'refresh') constant = 0n;
      else {
        const Q = this.req.dealerOldIndices!.map(BigInt);
        constant = Fn.mul(lagrangeAtZero(Q, BigInt(this.oldShare!.index)), this.oldShare!.secretShare);
      }
      const coeffs = randomPolynomial(constant, this.t - 1, rng);
      const F = feldmanCommit(coeffs);
      const rho = rng(32);
      this.dealing = { coeffs, F, rho };
      commitment = hash32('dkg/commit', this.sessionNonce, this.self, concatIdentityOk(F), rho);
    }
    return [this.broadcast(1, { case: 'keygenCommit', value: { instanceId: this.instanceId, sessionNonce: this.sessionNonce, commitment } })];
  }

  protected onRound(round: number, msgs: RoundMessages, rng: Rng): { out: Outgoing[]; output?: DealingOutput } {
    try {
      switch (round) {
        case 1: return { out: this.round1(msgs, rng) };
        case 2: return { out: this.round2(msgs, rng) };
        case 3: return { out: this.round3(msgs, rng) };
        default: return { out: [], output: this.round4(msgs) };
      }
    } catch (e) {
      this.wipeBaseOt(); // the session is over: no base-OT secret outlives it
      throw e;
    }
  }

  /** Base-OT receiver secrets (choice bits, t_ι) are used once, in round 3; as pair-setup.ts does, wipe them. */
  private wipeBaseOt(): void {
    for (const st of this.baseOt.values()) wipeBaseOt(st);
    this.baseOt.clear();
  }

  private round1(msgs: RoundMessages, rng: Rng): Outgoing[] {
    const commits = bodiesOf(msgs, 'keygenCommit');
    for (const [j, { value, bytes }] of commits) {
      if (!bytesEqual(value.instanceId, this.instanceId)) throw new AbortError('session-id', 'ceremony request differs', j, bytes);
      attributed(j, bytes, () => {
        exactBytes(value.sessionNonce, 32, 'keygenCommit.sessionNonce');
        exactBytes(value.commitment, this.req.dealers.includes(j) ? 32 : 0, 'keygenCommit.commitment');
      });
    }
    const nonces = this.req.participants.map((_, k) => (k + 1 === this.self ? this.sessionNonce : commits.get(k + 1)!.value.sessionNonce));
    this.dkgSid = hash32('dkg/sid', this.instanceId, ...nonces);
    this.echo1 = this.echoOf(1, commits);
    const out: Outgoing[] = [];
    let feldman: Uint8Array = new Uint8Array(0), proofs: Uint8Array = new Uint8Array(0), rho: Uint8Array = new Uint8Array(0), oldPublic: Uint8Array = new Uint8Array(0);
    if (this.dealing) {
      const { coeffs, F } = this.dealing;
      feldman = concatIdentityOk(F);
      rho = this.dealing.rho;
      const ps: Uint8Array[] = [];
      for (let k = this.firstProofIndex(); k < this.t; k++) ps.push(encodeSchnorr(schnorrProve('dkg/dlog', [this.dkgSid, this.self, k], coeffs[k]!, F[k]!, rng)));
      proofs = concatBytes(ps);
      if (this.req.kind === 'reshare') oldPublic = encodeOldPublic(this.oldShare!);
    }
    out.push(this.broadcast(2, { case: 'keygenReveal', value: { sessionId: this.dkgSid, echo: this.echo1, feldman, decommitment: rho, proofs, oldPublic } }));
    for (const j of this.otherReceivers) {
      const { state, message } = baseOtReceiverStart(this.sidOT(this.self, j), rng);
      this.baseOt.set(j, state);
      out.push({ to: j, bytes: encodeBody({ case: 'baseOtChoice', value: { sessionId: this.dkgSid, points: message } }) });
    }
    this.commitments = new Map([...commits].map(([j, m]) => [j, m.value]));
    return out;
  }
  private commitments = new Map<number, { sessionNonce: Uint8Array; commitment: Uint8Array }>();

  private sidOT(E: number, R: number) {
    return hash32('ot/base', this.dkgSid, E, R);
  }
  private sidABO(E: number, R: number) {
    return hash32('ot/abo', this.dkgSid, E, R);
  }

  private round2(msgs: RoundMessages, rng: Rng): Outgoing[] {
    const reveals = bodiesOf(msgs, 'keygenReveal');
    const t = this.t;
    // Old public data (reshare): every dealer's copy must be byte-identical and consistent.
    if (this.req.kind === 'reshare') this.checkOldPublic(reveals);
    if (this.req.kind === 'refresh') {
      const o = this.oldShare!;
      this.oldPublic = { publicKey: o.publicKey, publicShares: o.publicShares, threshold: o.threshold };
    }
    for (const [j, { value, bytes }] of reveals) {
      if (!bytesEqual(value.echo, this.echo1)) throw new AbortError('echo', 'round-1 broadcasts differ', undefined, bytes);
      if (!bytesEqual(value.sessionId, this.dkgSid)) throw new AbortError('session-id', 'wrong DKG session id', j, bytes);
      if (!this.req.dealers.includes(j)) {
        if (value.feldman.length || value.decommitment.length || value.proofs.length) throw new AbortError('decode', 'a non-dealer sent a dealing', j, bytes);
        continue;
      }
      const F = attributed(j, bytes, () => {
        const parts = chunks(value.feldman, 33, t, 'keygenReveal.feldman');
        exactBytes(value.decommitment, 32, 'keygenReveal.decommitment');
        chunks(value.proofs, SCHNORR_PROOF_BYTES, t - this.firstProofIndex(), 'keygenReveal.proofs');
        return parts.map((b, k) => (k === 0 && this.req.kind === 'refresh' ? pointOrIdentityFromBytes(b, `keygenReveal.feldman[${k}]`) : pointFromBytes(b, `keygenReveal.feldman[${k}]`)));
      });
      const c = this.commitments.get(j)!;
      if (!bytesEqual(hash32('dkg/commit', c.sessionNonce, j, value.feldman, value.decommitment), c.commitment))
        throw new AbortError('commitment', 'Feldman commitment does not open', j, bytes);
      for (let k = this.firstProofIndex(); k < t; k++) {
        const off = (k - this.firstProofIndex()) * SCHNORR_PROOF_BYTES;
        const proof = attributed(j, bytes, () => decodeSchnorr(value.proofs.subarray(off, off + SCHNORR_PROOF_BYTES), `keygenReveal.proofs[${k}]`));
        if (!schnorrVerify('dkg/dlog', [this.dkgSid, j, k], F[k]!, proof)) throw new AbortError('schnorr-proof', `proof for coefficient ${k} does not verify`, j, bytes);
      }
      this.checkConstantTerm(j, F[0]!, bytes);
      this.feldman.set(j, F);
    }
    if (this.dealing) {
      this.feldman.set(this.self, this.dealing.F);
    }
    this.aggregate = [];
    for (let k = 0; k < t; k++) {
      let acc = Point.ZERO;
      for (const j of this.req.dealers) acc = acc.add(this.feldman.get(j)![k]!);
      this.aggregate.push(acc);
    }
    if (this.req.kind === 'keygen') {
      this.publicKey = this.aggregate[0]!;
      // Unreachable through messages: every F_{j,0} is committed in round 1 before any is revealed
      // and proven by a PoK, so no dealer can cancel the others' sum (O by chance: 2^-256). Tested
      // by corrupting a machine's own dealing.
      if (this.publicKey.is0()) throw new AbortError('public-key', 'aggregate public key is the identity');
    } else {
      this.publicKey = this.oldPublic!.publicKey;
      const constant = this.req.kind === 'refresh' ? Point.ZERO : this.publicKey;
      // Unreachable through messages: each other dealer's F_{j,0} was checked on its own above
      // (O, or λ_j·S_j with the old S_j checked to interpolate to PK). Tested by corrupting a
      // machine's own dealing.
      if (!this.aggregate[0]!.equals(constant)) throw new AbortError('public-key', 'dealings do not preserve the public key');
    }
    this.echo2 = this.echoOf(2, reveals);

    // Round 3: shares to receivers; base-OT replies + PPRF + zero seeds among receivers.
    const choices = bodiesOf(msgs, 'baseOtChoice');
    const out: Outgoing[] = [];
    for (const j of this.others) {
      let share: Uint8Array = new Uint8Array(0), otReply: Uint8Array = new Uint8Array(0), pprf: Uint8Array = new Uint8Array(0), zeroSeed: Uint8Array = new Uint8Array(0);
      if (this.dealing && this.req.receivers.includes(j)) share = scalarToBytes(evalPolynomial(this.dealing.coeffs, BigInt(this.newIndex(j))));
      if (this.isReceiver && this.req.receivers.includes(j)) {
        const { value, bytes } = choices.get(j)!;
        if (!bytesEqual(value.sessionId, this.dkgSid)) throw new AbortError('session-id', 'wrong DKG session id', j, bytes);
        const resp = attributed(j, bytes, () => baseOtSenderRespond(this.sidOT(j, this.self), value.points, rng));
        const built = pprfBuild(this.sidABO(j, this.self), resp.keys0, resp.keys1);
        otReply = resp.reply;
        pprf = built.message;
        zeroSeed = rng(32);
        this.pairs.set(j, { receiverSeeds: built.seeds, zMine: zeroSeed });
      }
      out.push({ to: j, bytes: encodeBody({ case: 'keygenShare', value: { sessionId: this.dkgSid, echo: this.echo2, share, otReply, pprf, zeroSeed } }) });
    }
    return out;
  }

  /** refresh: F_{j,0} = O; reshare: G_{j,0} = λ_j^Q·S_j (attributable, spec §2.11, §2.12). */
  private checkConstantTerm(j: number, F0: Point, evidence: Uint8Array): void {
    if (this.req.kind === 'refresh' && !F0.is0()) throw new AbortError('refresh-constant', 'refresh polynomial has a non-zero constant term', j, evidence);
    if (this.req.kind === 'reshare') {
      const Q = this.req.dealerOldIndices!.map(BigInt);
      const oj = this.oldIndexOfDealer(j);
      const expected = this.oldPublic!.publicShares[oj - 1]!.multiplyUnsafe(lagrangeAtZero(Q, BigInt(oj)));
      if (!F0.equals(expected)) throw new AbortError('reshare-constant', 'dealing does not commit to λ·S of the old share', j, evidence);
    }
  }

  private checkOldPublic(reveals: Map<number, { value: { oldPublic: Uint8Array }; bytes: Uint8Array }>): void {
    const mine = this.oldShare ? encodeOldPublic(this.oldShare) : undefined;
    let reference = mine;
    for (const j of this.req.dealers) {
      if (j === this.self) continue;
      const { value, bytes } = reveals.get(j)!;
      if (!reference) reference = value.oldPublic;
      else if (!bytesEqual(reference, value.oldPublic)) throw new AbortError('old-public-data', 'copies of the old public key data differ', mine ? j : undefined, bytes);
    }
    for (const [j, { value, bytes }] of reveals) {
      if (!this.req.dealers.includes(j) && value.oldPublic.length) throw new AbortError('decode', 'a non-dealer sent old public data', j, bytes);
    }
    const decoded = attributed(this.req.dealers.find((d) => d !== this.self)!, reference!, () => decodeOldPublic(reference!));
    if (decoded.keyId !== this.req.keyId || decoded.epoch + 1 !== this.req.epoch || decoded.threshold !== this.req.dealers.length)
      throw new AbortError('old-public-data', 'old public data is for another key, epoch or threshold');
    // Holders of an old share refuse such a request when it is built (validateRequest); a newcomer
    // learns the old n only here. Unattributable: the request itself is wrong.
    const oldN = decoded.publicShares.length;
    if (this.req.dealerOldIndices!.some((o) => o > oldN)) throw new AbortError('party-index', `dealerOldIndices must be in 1..${oldN}, the old key's parties`);
    // Newcomers check that the old public shares lie on one polynomial of degree t_old−1 through PK.
    const xs = decoded.publicShares.map((_, k) => BigInt(k + 1));
    const base = xs.slice(0, decoded.threshold), basePts = decoded.publicShares.slice(0, decoded.threshold);
    if (!interpolateInExponent(base, basePts).equals(decoded.publicKey)) throw new AbortError('old-public-data', 'old public shares do not interpolate to the public key');
    for (let k = decoded.threshold; k < xs.length; k++)
      if (!interpolateInExponent(base, basePts, xs[k]!).equals(decoded.publicShares[k]!)) throw new AbortError('old-public-data', `old public share ${k + 1} is inconsistent`);
    this.oldPublic = decoded;
  }

  private round3(msgs: RoundMessages, _rng: Rng): Outgoing[] {
    const shares = bodiesOf(msgs, 'keygenShare');
    const myX = BigInt(this.newIndex(this.self));
    let sum = 0n;
    for (const [j, { value, bytes }] of shares) {
      if (!bytesEqual(value.echo, this.echo2)) throw new AbortError('echo', 'round-2 broadcasts differ', undefined, bytes);
      if (!bytesEqual(value.sessionId, this.dkgSid)) throw new AbortError('session-id', 'wrong DKG session id', j, bytes);
      const dealsToMe = this.req.dealers.includes(j) && this.isReceiver;
      const otWithMe = this.isReceiver && this.req.receivers.includes(j);
      attributed(j, bytes, () => {
        exactBytes(value.share, dealsToMe ? 32 : 0, 'keygenShare.share');
        if (!otWithMe) {
          exactBytes(value.otReply, 0, 'keygenShare.otReply');
          exactBytes(value.pprf, 0, 'keygenShare.pprf');
          exactBytes(value.zeroSeed, 0, 'keygenShare.zeroSeed');
        } else exactBytes(value.zeroSeed, 32, 'keygenShare.zeroSeed');
      });
      if (dealsToMe) {
        const y = attributed(j, bytes, () => scalarFromBytes(value.share, 'keygenShare.share'));
        if (!feldmanVerify(this.feldman.get(j)!, myX, y)) throw new AbortError('feldman-share', 'share does not match the Feldman commitment', j, bytes);
        sum = Fn.add(sum, y);
      }
      if (otWithMe) {
        const ev = finishOtSetup(j, bytes, { ot: this.sidOT(this.self, j), abo: this.sidABO(this.self, j) }, this.baseOt.get(j)!, value.otReply, value.pprf);
        const pair = this.pairs.get(j)!;
        pair.delta = ev.delta;
        pair.senderSeeds = ev.seeds;
        pair.zeroSeed = pairSeed(this.dkgSid, this.self, j, pair.zMine!, value.zeroSeed);
      }
    }
    this.wipeBaseOt();
    if (this.isReceiver) {
      if (this.dealing) sum = Fn.add(sum, evalPolynomial(this.dealing.coeffs, myX));
      this.newShare = this.req.kind === 'refresh' ? Fn.add(this.oldShare!.secretShare, sum) : sum;
    }
    this.dealing = undefined;
    // Public key shares of every receiver: S_k = Σ_m x_k^m·F_m (+ old S_k on refresh).
    this.publicShares = this.req.receivers.map((_, k) => {
      const S = evalInExponent(this.aggregate, BigInt(k + 1));
      return this.req.kind === 'refresh' ? S.add(this.oldPublic!.publicShares[k]!) : S;
    });
    let publicShare: Uint8Array = new Uint8Array(0), proof: Uint8Array = new Uint8Array(0);
    if (this.isReceiver) {
      const S = mulG(this.newShare);
      // Unreachable through messages: every share summed into s_i passed the Feldman check against
      // the same F_j that make up the aggregate, so s_i·G = S_i holds by construction. Tested by
      // corrupting a machine's aggregate.
      if (!S.equals(this.publicShares[Number(myX) - 1]!)) throw new AbortError('public-shares', 'my share does not match the public data');
      publicShare = pointToBytes(S);
      proof = encodeSchnorr(schnorrProve('dkg/final', [this.dkgSid, this.self], this.newShare, S, _rng));
    }
    const echo = hash32('dkg/echo-final', this.dkgSid, this.echo1, this.echo2);
    return [this.broadcast(4, { case: 'keygenConfirm', value: { sessionId: this.dkgSid, echo, publicKey: pointToBytes(this.publicKey), publicShare, proof } })];
  }

  private round4(msgs: RoundMessages): DealingOutput {
    const echo = hash32('dkg/echo-final', this.dkgSid, this.echo1, this.echo2);
    for (const [j, { value, bytes }] of bodiesOf(msgs, 'keygenConfirm')) {
      if (!bytesEqual(value.echo, echo)) throw new AbortError('echo', 'earlier broadcasts differ', undefined, bytes);
      if (!bytesEqual(value.sessionId, this.dkgSid)) throw new AbortError('session-id', 'wrong DKG session id', j, bytes);
      const PK = attributed(j, bytes, () => pointFromBytes(value.publicKey, 'keygenConfirm.publicKey'));
      if (!PK.equals(this.publicKey)) throw new AbortError('public-key', 'confirmed public key differs', j, bytes);
      const k = this.newIndex(j);
      if (k === 0) {
        if (value.publicShare.length || value.proof.length) throw new AbortError('decode', 'a non-receiver sent a public share', j, bytes);
        continue;
      }
      const S = attributed(j, bytes, () => pointFromBytes(value.publicShare, 'keygenConfirm.publicShare'));
      if (!S.equals(this.publicShares[k - 1]!)) throw new AbortError('public-shares', 'public share differs from the Feldman data', j, bytes);
      const proof = attributed(j, bytes, () => decodeSchnorr(exactBytes(value.proof, SCHNORR_PROOF_BYTES, 'keygenConfirm.proof'), 'keygenConfirm.proof'));
      if (!schnorrVerify('dkg/final', [this.dkgSid, j], S, proof)) throw new AbortError('schnorr-proof', 'proof of the share does not verify', j, bytes);
    }
    // Any t public shares interpolate to PK (spec §2.2 round 4). Unreachable through messages: the
    // S_k are computed here from the aggregate polynomial, whose constant term is PK (keygen,
    // reshare) or O (refresh, added to old shares that were checked to interpolate to PK). Tested by
    // corrupting a machine's public shares.
    const xs = this.publicShares.slice(0, this.t).map((_, k) => BigInt(k + 1));
    if (!interpolateInExponent(xs, this.publicShares.slice(0, this.t)).equals(this.publicKey)) throw new AbortError('public-shares', 'public shares do not interpolate to the public key');
    const output: DealingOutput = { publicKey: this.publicKey, publicShares: this.publicShares, dkgSid: this.dkgSid, echo };
    if (this.isReceiver) {
      const myIndex = this.newIndex(this.self);
      const pairs = new Map<number, PairState>();
      for (const [session, p] of this.pairs) pairs.set(this.newIndex(session), { delta: p.delta!, senderSeeds: p.senderSeeds!, receiverSeeds: p.receiverSeeds!, zeroSeed: p.zeroSeed! });
      output.share = {
        keyId: this.req.keyId,
        epoch: this.req.epoch,
        dkgSid: this.dkgSid,
        threshold: this.t,
        index: myIndex,
        parties: this.req.receivers.map((s) => this.req.participants[s - 1]!),
        secretShare: this.newShare,
        publicKey: this.publicKey,
        publicShares: this.publicShares,
        pairs,
      };
    }
    this.pairs.clear();
    return output;
  }
}

function concatIdentityOk(F: Point[]): Uint8Array {
  return concatBytes(F.map(pointOrIdentityToBytes));
}

export function concatBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function encodeOldPublic(share: KeyShare): Uint8Array {
  return OldPublicDataType.encode(OldPublicDataType.create({
    keyId: share.keyId, epoch: share.epoch, threshold: share.threshold,
    publicKey: pointToBytes(share.publicKey), publicShares: concatPoints(share.publicShares),
  })).finish();
}

function decodeOldPublic(bytes: Uint8Array): { keyId: string; epoch: number; threshold: number; publicKey: Point; publicShares: Point[] } {
  const m = strictDecode(OldPublicDataType, bytes, 'oldPublic') as unknown as { keyId: string; epoch: number; threshold: number; publicKey: Uint8Array; publicShares: Uint8Array };
  const n = m.publicShares.length / 33;
  if (!Number.isInteger(n) || n < 2 || m.threshold < 2 || m.threshold > n) throw new AbortError('old-public-data', 'bad old public data shape');
  return { keyId: m.keyId, epoch: m.epoch, threshold: m.threshold, publicKey: pointFromBytes(m.publicKey, 'oldPublic.publicKey'), publicShares: decodePoints(m.publicShares, n, 'oldPublic.publicShares') };
}
