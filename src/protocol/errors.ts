/**
 * The three outcomes a protocol step can fail with (spec §2.0 "Error classes", ToB finding 12).
 * Each names the spec §4.3 check that failed, and the culprit's party index where the failure
 * is attributable. Messages never contain secret values.
 */
export type Check =
  | 'decode' // §4.3.1 strict decoding / exact lengths
  | 'party-index' // §4.3.2 indices, signer set
  | 'signer-set'
  | 'commitment' // §4.3.3 commit-then-reveal
  | 'schnorr-proof' // §4.3.4
  | 'feldman-share' // §4.3.5
  | 'public-key'
  | 'public-shares'
  | 'pk-sum'
  | 'refresh-constant' // §2.11
  | 'reshare-constant' // §2.12
  | 'old-public-data'
  | 'session-id' // §4.3.6
  | 'unexpected-message' // §4.3.7 (wrong round, unknown sender, duplicate)
  | 'echo' // §4.3.8 broadcast consistency
  | 'pprf-proof' // §2.3 all-but-one OT proof
  | 'softspoken-check' // §4.3.9 OT extension consistency
  | 'rvole-mu'
  | 'gamma-u'
  | 'gamma-v'
  | 'nonce-point' // R = O, r_x = 0, R.x ≥ n
  | 'final-signature' // §4.3.10
  | 'presignature-used' // §4.3.12
  | 'burned-pair' // §2.10
  | 'bad-input' // local caller error (not peer input)
  | 'internal'; // an unexpected exception while processing peer input (ToB finding 3: never crash)

export abstract class ProtocolError extends Error {
  abstract readonly kind: 'DROP' | 'ABORT' | 'BAN_PAIR';
  readonly check: Check;
  /** Party index (1-based, in the session's numbering) of the party at fault, if attributable. */
  readonly culprit: number | undefined;
  constructor(check: Check, message: string, culprit?: number) {
    super(culprit === undefined ? `${check}: ${message}` : `${check}: ${message} (party ${culprit})`);
    this.check = check;
    this.culprit = culprit;
  }
}

/** Unauthenticated, garbled or stray input: ignore it and keep waiting (TOB-SILA-14). */
export class DropError extends ProtocolError {
  override readonly name = 'DropError';
  readonly kind = 'DROP' as const;
}

/** Authenticated but invalid: abort the session; `evidence` is the offending message, as received. */
export class AbortError extends ProtocolError {
  override readonly name = 'AbortError';
  readonly kind = 'ABORT' as const;
  readonly evidence: Uint8Array | undefined;
  constructor(check: Check, message: string, culprit?: number, evidence?: Uint8Array) {
    super(check, message, culprit);
    this.evidence = evidence;
  }
}

/**
 * OT / multiplication consistency failure caused by `culprit`: abort this session and every
 * concurrent one with that peer, and burn the pair until its OT setup is redone (spec §2.10).
 */
export class BanPairError extends ProtocolError {
  override readonly name = 'BanPairError';
  readonly kind = 'BAN_PAIR' as const;
  declare readonly culprit: number;
  constructor(check: Check, message: string, culprit: number) {
    super(check, message, culprit);
  }
}
