import { keccak_256 } from '@noble/hashes/sha3.js';
import { hash32 } from '../crypto/hash.ts';
import { lagrangeAtZero } from '../crypto/feldman.ts';
import { Fn, N, Point, bytesToBigInt, mulG, exactBytes, pointFromBytes, pointToBytes, randomScalar, scalarFromBytes, scalarToBytes } from '../crypto/scalar-point.ts';
import type { Rng } from '../crypto/random.ts';
import { mulSecret, recoverPublicKey } from '../crypto/secret-mul.ts';
import { rvoleReceiverFinish, rvoleReceiverStart, rvoleSenderRespond, RvoleCheckError, type RvoleReceiverState } from '../mul/rvole.ts';
import { zeroShare } from '../mul/zero-sharing.ts';
import { SoftSpokenCheckError } from '../ot/softspoken.ts';
import { AbortError, BanPairError } from './errors.ts';
import { RoundMachine, attributed, bodiesOf, bytesEqual, type Outgoing, type RoundMessages, type RoundSpec } from './machine.ts';
import { encodeBody } from './messages.ts';
import type { KeyShare } from './key-share.ts';

/**
 * DKLs23 signing (Protocol 3.6, spec §2.7) in the four-flight layout:
 *   flight 1 (broadcast) SignCommit    sid_i, C_i = H(sid_i, i, R_i, b_i)
 *   flight 2 (p2p)       SignExtension  OT-extension message, this party as RVOLE receiver
 *   flight 3 (p2p)       SignMultiply   RVOLE reply, R_i opening, pk_i, Γ^u, Γ^v, ψ, echo
 *   → presignature (local), bound to exactly one signer set
 *   flight 4 (broadcast) SignPartial    u_i, w_i for digest m   → combine, verify, recover
 */
export interface Presignature {
  keyId: string;
  epoch: number;
  sigSid: Uint8Array;
  signers: number[];
  index: number;
  R: Point;
  rx: bigint;
  u: bigint;
  v: bigint;
  phi: bigint;
  publicKey: Point;
  /** Set before the partial signature leaves; the storage layer persists it first (spec §2.9). */
  used: boolean;
}

export interface Signature {
  r: bigint;
  s: bigint;
  yParity: 0 | 1;
  digest: Uint8Array;
}

export interface SignRequest {
  /** Key indices of the signer set T, ascending, |T| = t. */
  signers: number[];
  /** Opaque bytes binding the request (e.g. the signed request id); bound into sigSid. */
  request: Uint8Array;
  /** Peers whose pair with us is burned (spec §2.10); signing with them is refused. */
  burned?: ReadonlySet<number>;
}

export function signInstanceId(share: KeyShare, req: SignRequest): Uint8Array {
  return hash32('dsg/instance', share.dkgSid, share.epoch, req.signers.length, ...req.signers, req.request);
}

function validate(share: KeyShare, req: SignRequest): void {
  const T = req.signers;
  const n = share.parties.length;
  if (T.length !== share.threshold) throw new AbortError('signer-set', `signer set has ${T.length} parties, the key needs exactly ${share.threshold}`);
  if (T.some((j) => !Number.isInteger(j) || j < 1 || j > n)) throw new AbortError('party-index', `signer indices must be in 1..${n}`);
  for (let k = 1; k < T.length; k++) if (T[k]! <= T[k - 1]!) throw new AbortError('signer-set', 'signer set must be ascending without duplicates');
  if (!T.includes(share.index)) throw new AbortError('signer-set', 'this party is not in the signer set');
  for (const j of T) if (req.burned?.has(j)) throw new AbortError('burned-pair', `the pair with party ${j} is burned until its OT setup is redone`, j);
}

export class PresignSession extends RoundMachine<Presignature> {
  private readonly share: KeyShare;
  private readonly T: number[];
  private readonly others: number[];
  private readonly request: Uint8Array;
  private readonly instanceId: Uint8Array;
  protected readonly rounds: RoundSpec[];

  private sid: Uint8Array = new Uint8Array(0);
  private r = 0n;
  private phi = 0n;
  private blind: Uint8Array = new Uint8Array(0);
  private Ri: Point = Point.ZERO;
  private sigSid: Uint8Array = new Uint8Array(0);
  private dig1: Uint8Array = new Uint8Array(0);
  private echo1: Uint8Array = new Uint8Array(0);
  private commits = new Map<number, { sessionNonce: Uint8Array; commitment: Uint8Array }>();
  private receivers = new Map<number, RvoleReceiverState>(); // j → my RVOLE-receiver state (j is sender)
  private cU = new Map<number, bigint>();
  private cV = new Map<number, bigint>();
  private sk = 0n;

  constructor(share: KeyShare, req: SignRequest) {
    super(share.index);
    validate(share, req);
    this.share = share;
    this.T = [...req.signers];
    this.others = this.T.filter((j) => j !== share.index);
    this.request = req.request;
    this.instanceId = signInstanceId(share, req);
    this.rounds = [
      { bodies: { signCommit: 'broadcast' }, from: { signCommit: this.others } },
      { bodies: { signExtension: 'p2p' }, from: { signExtension: this.others } },
      { bodies: { signMultiply: 'p2p' }, from: { signMultiply: this.others } },
    ];
  }

  private commit(sid: Uint8Array, i: number, R: Uint8Array, b: Uint8Array) {
    return hash32('dsg/commit-R', sid, i, R, b);
  }
  private sidMul(E: number, R: number) {
    return hash32('dsg/mul', this.sigSid, E, R);
  }

  protected begin(rng: Rng): Outgoing[] {
    this.sid = rng(32);
    this.r = randomScalar(rng);
    this.phi = randomScalar(rng);
    this.blind = rng(32);
    this.Ri = mulG(this.r);
    const commitment = this.commit(this.sid, this.self, pointToBytes(this.Ri), this.blind);
    return [{ to: null, bytes: encodeBody({ case: 'signCommit', value: { instanceId: this.instanceId, sessionNonce: this.sid, commitment } }) }];
  }

  protected onRound(round: number, msgs: RoundMessages, rng: Rng): { out: Outgoing[]; output?: Presignature } {
    if (round === 1) return { out: this.flight2(msgs, rng) };
    if (round === 2) return { out: this.flight3(msgs, rng) };
    return { out: [], output: this.complete(msgs) };
  }

  private flight2(msgs: RoundMessages, rng: Rng): Outgoing[] {
    for (const [j, { value, bytes }] of bodiesOf(msgs, 'signCommit')) {
      if (!bytesEqual(value.instanceId, this.instanceId)) throw new AbortError('session-id', 'signing request differs', j, bytes);
      attributed(j, bytes, () => {
        exactBytes(value.sessionNonce, 32, 'signCommit.sessionNonce');
        exactBytes(value.commitment, 32, 'signCommit.commitment');
      });
      this.commits.set(j, value);
    }
    this.commits.set(this.self, { sessionNonce: this.sid, commitment: this.commit(this.sid, this.self, pointToBytes(this.Ri), this.blind) });
    const sids = this.T.map((j) => this.commits.get(j)!.sessionNonce);
    this.sigSid = hash32('dsg/sid', this.share.dkgSid, this.share.epoch, this.T.length, ...this.T, this.request, ...sids);
    const flight1 = this.T.flatMap((j) => [j, this.commits.get(j)!.sessionNonce, this.commits.get(j)!.commitment]);
    this.dig1 = hash32('dsg/digest', this.sigSid, ...flight1);
    // Same view, bound to the request instead of sigSid, so that flight 2 can tell an equivocated
    // flight-1 broadcast (echo differs) from a sender that computed a wrong sigSid (TOB-SILA-8).
    this.echo1 = hash32('dsg/echo', this.instanceId, ...flight1);
    return this.others.map((j) => {
      const { state, message } = rvoleReceiverStart(this.sidMul(j, this.self), this.share.pairs.get(j)!.receiverSeeds, rng);
      this.receivers.set(j, state);
      return { to: j, bytes: encodeBody({ case: 'signExtension', value: { sessionId: this.sigSid, u: message.u, xTilde: message.xTilde, vTilde: message.vTilde, echo: this.echo1 } }) };
    });
  }

  private flight3(msgs: RoundMessages, rng: Rng): Outgoing[] {
    const ext = bodiesOf(msgs, 'signExtension');
    for (const [j, { value, bytes }] of ext) {
      if (!bytesEqual(value.echo, this.echo1)) throw new AbortError('echo', 'flight-1 broadcasts differ', undefined, bytes);
      if (!bytesEqual(value.sessionId, this.sigSid)) throw new AbortError('session-id', 'wrong signing session id', j, bytes);
    }
    const lambda = lagrangeAtZero(this.T.map(BigInt), BigInt(this.self));
    const zeta = zeroShare(this.self, new Map([...this.share.pairs].map(([j, p]) => [j, p.zeroSeed])), this.T, this.sigSid);
    this.sk = Fn.add(Fn.mul(lambda, this.share.secretShare), zeta);
    const pk = pointToBytes(mulG(this.sk));
    const out: Outgoing[] = [];
    for (const j of this.others) {
      const { value, bytes } = ext.get(j)!;
      const pair = this.share.pairs.get(j)!;
      let res: ReturnType<typeof rvoleSenderRespond>;
      try {
        res = attributed(j, bytes, () => rvoleSenderRespond(this.sidMul(this.self, j), pair.delta, pair.senderSeeds, [this.r, this.sk], value, rng));
      } catch (e) {
        if (e instanceof SoftSpokenCheckError) throw new BanPairError('softspoken-check', e.message, j);
        throw e;
      }
      const [cu, cv] = res.c as [bigint, bigint];
      this.cU.set(j, cu);
      this.cV.set(j, cv);
      const psi = Fn.sub(this.phi, this.receivers.get(j)!.chi);
      out.push({
        to: j,
        bytes: encodeBody({
          case: 'signMultiply',
          value: {
            sessionId: this.sigSid, echo: this.dig1, aTilde: res.message.aTilde, etaPrime: res.message.etaPrime, mu: res.message.mu,
            pk, bigR: pointToBytes(this.Ri), blind: this.blind,
            gammaU: pointToBytes(mulG(cu)), gammaV: pointToBytes(mulG(cv)), psi: scalarToBytes(psi),
          },
        }),
      });
    }
    return out;
  }

  /**
   * DKLs23 step 8: χ·R_j = d^u·G + Γ^u and χ·pk_j = d^v·G + Γ^v, checked separately. The secret
   * multiplications go through libsecp256k1 (crypto/secret-mul.ts), where two constant-time
   * multiplications by χ cost less than the public 128-bit θ multiplications that batching both
   * equations into one needed (docs/decisions.md §37).
   */
  private checkGammas(j: number, chi: bigint, Rj: Point, pkj: Point, du: bigint, dv: bigint, gU: Point, gV: Point): void {
    const okU = mulSecret(Rj, chi).equals(mulG(du).add(gU));
    const okV = mulSecret(pkj, chi).equals(mulG(dv).add(gV));
    if (!okU) throw new BanPairError('gamma-u', 'Γ^u consistency check failed', j);
    if (!okV) throw new BanPairError('gamma-v', 'Γ^v consistency check failed', j);
  }

  private complete(msgs: RoundMessages): Presignature {
    const mul = bodiesOf(msgs, 'signMultiply');
    let R = this.Ri, pkSum = mulG(this.sk), Phi = this.phi;
    let sumU = 0n, sumV = 0n;
    for (const j of this.others) {
      const { value, bytes } = mul.get(j)!;
      if (!bytesEqual(value.sessionId, this.sigSid)) throw new AbortError('session-id', 'wrong signing session id', j, bytes);
      if (!bytesEqual(value.echo, this.dig1)) throw new AbortError('echo', 'flight-1 broadcasts differ', undefined, bytes);
      const d = attributed(j, bytes, () => ({
        pk: pointFromBytes(value.pk, 'signMultiply.pk'),
        R: pointFromBytes(value.bigR, 'signMultiply.bigR'),
        blind: exactBytes(value.blind, 32, 'signMultiply.blind'),
        gU: pointFromBytes(value.gammaU, 'signMultiply.gammaU'),
        gV: pointFromBytes(value.gammaV, 'signMultiply.gammaV'),
        psi: scalarFromBytes(value.psi, 'signMultiply.psi'),
      }));
      const c = this.commits.get(j)!;
      if (!bytesEqual(this.commit(c.sessionNonce, j, value.bigR, value.blind), c.commitment)) throw new AbortError('commitment', 'R_j does not open its commitment', j, bytes);
      const st = this.receivers.get(j)!;
      let dOut: bigint[];
      try {
        dOut = attributed(j, bytes, () => rvoleReceiverFinish(st, { aTilde: value.aTilde, etaPrime: value.etaPrime, mu: value.mu }));
      } catch (e) {
        if (e instanceof RvoleCheckError) throw new BanPairError('rvole-mu', e.message, j);
        throw e;
      }
      const [du, dv] = dOut as [bigint, bigint];
      this.checkGammas(j, st.chi, d.R, d.pk, du, dv, d.gU, d.gV);
      R = R.add(d.R);
      pkSum = pkSum.add(d.pk);
      Phi = Fn.add(Phi, d.psi);
      sumU = Fn.add(sumU, Fn.add(this.cU.get(j)!, du));
      sumV = Fn.add(sumV, Fn.add(this.cV.get(j)!, dv));
    }
    if (!pkSum.equals(this.share.publicKey)) throw new AbortError('pk-sum', 'Σ pk_j differs from the public key');
    const rx = nonceX(R);
    const u = Fn.add(Fn.mul(this.r, Phi), sumU);
    const v = Fn.add(Fn.mul(this.sk, Phi), sumV);
    const presig: Presignature = {
      keyId: this.share.keyId, epoch: this.share.epoch, sigSid: this.sigSid, signers: this.T, index: this.self,
      R, rx, u, v, phi: this.phi, publicKey: this.share.publicKey, used: false,
    };
    this.r = 0n; this.sk = 0n; this.receivers.clear(); this.cU.clear(); this.cV.clear();
    return presig;
  }
}

/**
 * r_x = R.x mod n for R = Σ_{j∈T} R_j, refusing R = O, R.x ≥ n and r_x = 0 (spec §2.7 step 5).
 * None of these is reachable through messages by a peer that cannot break the flight-1
 * commitment: every R_j is committed before any is opened, so nobody can choose theirs as a
 * function of the others' (R = O or R.x ≥ n by chance: about 2^-128). Tests call this directly.
 */
export function nonceX(R: Point): bigint {
  if (R.is0()) throw new AbortError('nonce-point', 'R is the identity');
  const Rx = R.toAffine().x;
  if (Rx >= N) throw new AbortError('nonce-point', 'R.x ≥ n: recovery id not encodable, discard');
  const rx = Fn.create(Rx);
  // Unreachable even with a crafted R: r_x = 0 needs R.x = 0 (no such point: 7 is not a square
  // mod p) or R.x = n (refused just above). Kept so that the rule holds on its own.
  if (rx === 0n) throw new AbortError('nonce-point', 'r = 0');
  return rx;
}

/** z = int(m) mod n. */
const digestScalar = (m: Uint8Array) => Fn.create(bytesToBigInt(m));

/**
 * Flight 4 for digest m: marks the presignature used and returns the broadcast. The caller must
 * persist the used mark before sending (spec §2.9). Throws AbortError('presignature-used').
 */
export function createPartial(presig: Presignature, digest: Uint8Array): Outgoing {
  if (presig.used) throw new AbortError('presignature-used', 'presignature was already used');
  if (digest.length !== 32) throw new AbortError('bad-input', 'digest must be 32 bytes');
  presig.used = true;
  const w = Fn.add(Fn.mul(digestScalar(digest), presig.phi), Fn.mul(presig.rx, presig.v));
  return { to: null, bytes: encodeBody({ case: 'signPartial', value: { sessionId: presig.sigSid, digest, u: scalarToBytes(presig.u), w: scalarToBytes(w) } }) };
}

export function ethAddress(pk: Point): string {
  const h = keccak_256(pk.toBytes(false).subarray(1));
  return '0x' + Buffer.from(h.subarray(12)).toString('hex');
}

/**
 * s = Σw / Σu, low-s, y-parity, then verify and recover the key before returning (spec §2.8). One
 * recovery does both: the key recovered from (r, s, y-parity, m) equals PK only if the signature
 * verifies (crypto/secret-mul.ts recoverPublicKey; docs/decisions.md §36).
 */
export function combinePartials(presig: Presignature, digest: Uint8Array, partials: Map<number, { u: bigint; w: bigint }>): Signature {
  let u = 0n, w = 0n;
  for (const j of presig.signers) {
    const p = partials.get(j);
    if (!p) throw new AbortError('bad-input', `missing partial signature of party ${j}`);
    u = Fn.add(u, p.u);
    w = Fn.add(w, p.w);
  }
  // Between honest signers Σu = r·φ ≠ 0 and Σw = φ·(z + r_x·sk) ≠ 0 (unless the digest was chosen
  // knowing sk). A co-signer gets Σu = 0 (or Σw = 0) by waiting for the others' flight-4 values and
  // sending minus their sum. With two signers the culprit can only be the other one; with more,
  // any of the others could have sent the last value, so it is not attributable.
  const culprit = presig.signers.length === 2 ? presig.signers.find((j) => j !== presig.index) : undefined;
  if (u === 0n) throw new AbortError('final-signature', 'Σu = 0', culprit);
  let s = Fn.div(w, u);
  if (s === 0n) throw new AbortError('final-signature', 's = 0', culprit);
  let yParity = Number(presig.R.toAffine().y & 1n) as 0 | 1;
  if (s > N >> 1n) {
    s = N - s;
    yParity = (yParity ^ 1) as 0 | 1;
  }
  // Verify by recovery: the key recovered from (r, s, y-parity) must be the cluster key. This also
  // catches a wrong y-parity (R replaced by −R), which a plain verify would accept. Not reachable
  // through messages (R is fixed by the committed R_j); tests pass a presignature with −R.
  const recovered = recoverPublicKey(presig.rx, s, yParity, digest);
  if (recovered === null || !recovered.equals(presig.publicKey)) throw new AbortError('final-signature', 'combined signature does not verify: the recovered key differs');
  return { r: presig.rx, s, yParity, digest };
}

/** Flight 4 as a one-round machine: broadcast my partial, combine everyone's. */
export class OnlineSession extends RoundMachine<Signature> {
  private readonly presig: Presignature;
  private readonly digest: Uint8Array;
  private readonly mine: { u: bigint; w: bigint };
  private readonly first: Outgoing;
  protected readonly rounds: RoundSpec[];

  /** Creating the session consumes the presignature (marks it used). */
  constructor(presig: Presignature, digest: Uint8Array) {
    super(presig.index);
    this.presig = presig;
    this.digest = digest;
    this.first = createPartial(presig, digest);
    const w = Fn.add(Fn.mul(digestScalar(digest), presig.phi), Fn.mul(presig.rx, presig.v));
    this.mine = { u: presig.u, w };
    const others = presig.signers.filter((j) => j !== presig.index);
    this.rounds = [{ bodies: { signPartial: 'broadcast' }, from: { signPartial: others } }];
  }
  /** The broadcast to send once the used mark is persisted. */
  get partialMessage(): Outgoing {
    return this.first;
  }
  protected begin(): Outgoing[] {
    return [this.first];
  }
  protected onRound(_r: number, msgs: RoundMessages): { out: Outgoing[]; output: Signature } {
    const partials = new Map([[this.self, this.mine]]);
    for (const [j, { value, bytes }] of bodiesOf(msgs, 'signPartial')) {
      if (!bytesEqual(value.sessionId, this.presig.sigSid)) throw new AbortError('session-id', 'wrong signing session id', j, bytes);
      if (!bytesEqual(value.digest, this.digest)) throw new AbortError('session-id', 'partial signature is for another digest', j, bytes);
      partials.set(j, attributed(j, bytes, () => ({ u: scalarFromBytes(value.u, 'signPartial.u'), w: scalarFromBytes(value.w, 'signPartial.w') })));
    }
    return { out: [], output: combinePartials(this.presig, this.digest, partials) };
  }
}
