/**
 * The check sites of the check-removal matrix (`npm run check-removal`, scripts/check-removal.ts).
 *
 * One entry per refusal: `find` is a substring of the line that holds the check, unique in the
 * file (or unique after the first occurrence of `after`). By default the check is disabled by
 * turning the first `if (…)` on that line into `if (false)`; `replace` gives other text for the
 * whole found substring instead. `tests` are the test files that cover the site, each optionally
 * with `#pattern` (node's --test-name-pattern, a regular expression) to run only the tests aimed
 * at it. `reach` says how a test gets there: through crafted input: messages, requests, files (the default), only by injecting
 * values or state directly (`direct`, with the reason in `why`, also written in the code), or not at
 * all (`none`: the matrix expects every test to pass, and the code says why).
 *
 * To add a site: append an entry; run `CHECK_REMOVAL_ONLY=<file or check> npm run check-removal`.
 */
export interface Site {
  file: string;
  find: string;
  after?: string;
  replace?: string;
  check: string;
  tests: string[];
  reach?: 'input' | 'direct' | 'none';
  why?: string;
}

const KEYGEN = 'test/byzantine/keygen-checks.test.ts';
const SIGNING = 'test/byzantine/signing-checks.test.ts';
const REQUEST = 'test/protocol/dealing-request.test.ts';
const PAIR = 'test/protocol/pair-setup.test.ts';
const ALGEBRA = 'test/mul/algebra.test.ts';
const VAULT = 'test/store/key-share-vault.test.ts';

const COSIGN = 'test/peer/cosigner.test.ts';
const APPROVE = 'test/peer/approver.test.ts';
const POLICY = 'test/peer/request-policy.test.ts';
const TX = 'test/policy/tx-policy.test.ts';
const EQUIV = 'test/policy/equivocation.test.ts';
const NONCE = 'test/policy/nonce-window.test.ts';
const RATE = 'test/policy/rate-limit.test.ts';
const RECORDS = 'test/store/policy-records.test.ts';
const APPROVAL = 'test/policy/approval.test.ts';
const ENVELOPE = 'test/net/envelope.test.ts';
const SERVER = 'test/api/server.test.ts';
const MTLS = 'test/api/mtls.test.ts';
const JSONRPC = 'test/api/json-rpc.test.ts';
const LOG = 'test/audit/log-file.test.ts';
const CKPT = 'test/audit/checkpoint.test.ts';

const MACHINE = 'src/protocol/machine.ts';
const DKG = 'src/protocol/dkg.ts';
const SIGN = 'src/protocol/sign.ts';
const PAIR_SETUP = 'src/protocol/pair-setup.ts';
const VAULT_SRC = 'src/store/key-share-vault.ts';
const COSIGNER = 'src/peer/cosigner.ts';
const PROPOSAL = 'src/peer/proposal-check.ts';
const APPROVER = 'src/peer/approver.ts';
const POLICY_SRC = 'src/peer/request-policy.ts';
const TX_POLICY = 'src/policy/tx-policy.ts';
const APPROVAL_SRC = 'src/policy/approval.ts';
const ENVELOPE_SRC = 'src/net/envelope.ts';
const LOG_FILE = 'src/audit/log-file.ts';
const CHECKPOINT = 'src/audit/checkpoint.ts';

const request = (find: string): Site => ({ file: DKG, find, check: 'bad-input', tests: [REQUEST] });

export const SITES: Site[] = [
  // ---- the round engine (every protocol) ----
  { file: MACHINE, find: "throw new AbortError('decode', e.message, msg.from, msg.bytes)", check: 'decode (body)', tests: [`${KEYGEN}#garbage instead`, `${SIGNING}#garbage instead`] },
  { file: MACHINE, find: "if (!spec) throw new AbortError('unexpected-message'", check: 'unexpected-message (other protocol)', tests: [`${KEYGEN}#another protocol`] },
  { file: MACHINE, find: "if (channel === 'broadcast' ? msg.to !== null : msg.to !== this.self)", check: 'unexpected-message (channel)', tests: [`${KEYGEN}#sent as a broadcast`] },
  { file: MACHINE, find: "throw new AbortError('echo', `two different ${body.case} messages from the same party`, msg.from, msg.bytes);", replace: 'return { out: [] }; // check removed', check: 'echo (two versions)', tests: [`${KEYGEN}#two different round-1`] },
  { file: MACHINE, find: "throw new AbortError('decode', e.message, from, evidence)", check: 'decode (fields)', tests: [`${KEYGEN}#session nonce of 31|share ≥ n|one byte short`] },

  // ---- dealing requests (local input) ----
  request('if (p < 2 || p > MAX_PARTIES) throw bad('),
  request('if (Buffer.compare(req.participants[k - 1]!, req.participants[k]!) >= 0) throw bad('),
  request('if (self < 1 || self > p) throw bad('),
  request('if (xs.some((x) => !Number.isInteger(x) || x < 1 || x > p) || new Set(xs).size !== xs.length) throw bad('),
  request('if ([...xs].sort((a, b) => a - b).some((x, k) => x !== xs[k])) throw bad('),
  request('if (req.threshold < 2 || req.threshold > req.receivers.length) throw bad('),
  request('if (req.nonce.length !== 32) throw bad('),
  request('if (new Set([...req.dealers, ...req.receivers]).size !== p) throw bad('),
  request('if (req.dealers.length !== p || req.receivers.length !== p) throw bad('),
  request("if (req.epoch !== 0) throw bad('keygen produces epoch 0')"),
  request("if (oldShare) throw bad('keygen takes no old share')"),
  request('if (!old || old.length !== req.dealers.length) throw bad('),
  request('if (old.some((o) => !Number.isInteger(o) || o < 1) || new Set(old).size !== old.length) throw bad('),
  request("if (req.kind === 'refresh' && old.some((o, k) => o !== req.dealers[k])) throw bad("),
  request('if (isDealer && !oldShare) throw bad('),
  request('if (oldShare.keyId !== req.keyId) throw bad('),
  request('if (req.epoch !== oldShare.epoch + 1) throw bad('),
  request("if (req.kind === 'refresh' && req.threshold !== oldShare.threshold) throw bad("),
  request("if (req.kind === 'reshare' && req.dealers.length !== oldShare.threshold) throw bad("),
  request('if (isDealer && old[req.dealers.indexOf(self)] !== oldShare.index) throw bad('),
  request('if (old.some((o) => o > oldN)) throw bad('),

  // ---- DKG, refresh, reshare rounds ----
  { file: DKG, find: "throw new AbortError('session-id', 'ceremony request differs'", check: 'session-id (round 1)', tests: [`${KEYGEN}#wrong ceremony instance id|replay of a round-1`] },
  { file: DKG, find: "throw new AbortError('echo', 'round-1 broadcasts differ'", check: 'echo (round 1)', tests: [`${KEYGEN}#wrong echo of round 1|equivocation on the round-1`] },
  { file: DKG, find: "throw new AbortError('session-id', 'wrong DKG session id', j, bytes)", after: "'round-1 broadcasts differ'", check: 'session-id (round 2)', tests: [`${KEYGEN}#wrong dkgSid in keygenReveal`] },
  { file: DKG, find: "throw new AbortError('decode', 'a non-dealer sent a dealing'", check: 'decode (non-dealer dealing)', tests: [`${KEYGEN}#reshare: the newcomer`] },
  { file: DKG, find: "if (!bytesEqual(hash32('dkg/commit', c.sessionNonce, j, value.feldman, value.decommitment), c.commitment))", check: 'commitment', tests: [`${KEYGEN}#Feldman point replaced|decommitment bit flipped|round-2 broadcast`] },
  { file: DKG, find: "throw new AbortError('schnorr-proof', `proof for coefficient", check: 'schnorr-proof (coefficients)', tests: [`${KEYGEN}#bad Schnorr proof of a coefficient`] },
  { file: DKG, find: "throw new AbortError('public-key', 'aggregate public key is the identity')", check: 'public-key (PK = O)', tests: [`${KEYGEN}#own F_0`], reach: 'direct', why: 'every F_{j,0} is committed before any is revealed, so no dealer can cancel the others (PK = O by chance: 2^-256)' },
  { file: DKG, find: "throw new AbortError('public-key', 'dealings do not preserve the public key')", check: 'public-key (refresh/reshare constant)', tests: [`${KEYGEN}#no longer preserve`], reach: 'direct', why: "each other dealer's constant term is checked on its own first (refresh-constant, reshare-constant)" },
  { file: DKG, find: "throw new AbortError('session-id', 'wrong DKG session id', j, bytes)", after: 'choices.get(j)!', check: 'session-id (base-OT message)', tests: [`${KEYGEN}#wrong dkgSid in the base-OT message`] },
  { file: DKG, find: "throw new AbortError('refresh-constant'", check: 'refresh-constant', tests: [`${KEYGEN}#refresh: a dealer whose constant term`] },
  { file: DKG, find: "throw new AbortError('reshare-constant'", check: 'reshare-constant', tests: [`${KEYGEN}#reshare: a dealer whose constant term`] },
  { file: DKG, find: 'if (!bytesEqual(reference, value.oldPublic))', check: 'old-public-data (copies differ)', tests: [`${KEYGEN}#different old public data`] },
  { file: DKG, find: "throw new AbortError('decode', 'a non-dealer sent old public data'", check: 'decode (non-dealer old data)', tests: [`${KEYGEN}#reshare: the newcomer`] },
  { file: DKG, find: 'if (decoded.keyId !== this.req.keyId || decoded.epoch + 1 !== this.req.epoch || decoded.threshold !== this.req.dealers.length)', check: 'old-public-data (key, epoch, t)', tests: [`${KEYGEN}#same wrong old public data`] },
  { file: DKG, find: "throw new AbortError('old-public-data', 'old public shares do not interpolate", check: 'old-public-data (interpolation)', tests: [`${KEYGEN}#same wrong old public data`] },
  { file: DKG, find: "throw new AbortError('old-public-data', `old public share ${k + 1} is inconsistent`)", check: 'old-public-data (extra share)', tests: [`${KEYGEN}#same wrong old public data`] },
  { file: DKG, find: "throw new AbortError('old-public-data', 'bad old public data shape')", check: 'old-public-data (shape)', tests: [`${KEYGEN}#same wrong old public data`] },
  { file: DKG, find: "throw new AbortError('party-index', `dealerOldIndices must be in", check: 'party-index (old index > old n)', tests: [`${KEYGEN}#a newcomer learns the old n`] },
  { file: DKG, find: "throw new AbortError('echo', 'round-2 broadcasts differ'", check: 'echo (round 2)', tests: [`${KEYGEN}#wrong echo of round 2`] },
  { file: DKG, find: "throw new AbortError('session-id', 'wrong DKG session id', j, bytes)", after: "'round-2 broadcasts differ'", check: 'session-id (round 3)', tests: [`${KEYGEN}#wrong dkgSid in keygenShare`] },
  { file: DKG, find: "throw new AbortError('feldman-share'", check: 'feldman-share', tests: [`${KEYGEN}#fails the Feldman check`] },
  { file: DKG, find: "throw new AbortError('public-shares', 'my share does not match the public data')", check: 'public-shares (my share)', tests: [`${KEYGEN}#aggregate polynomial changed`], reach: 'direct', why: 'every share summed into s_i passed the Feldman check against the F_j that make up the aggregate' },
  { file: DKG, find: "throw new AbortError('echo', 'earlier broadcasts differ'", check: 'echo (round 4)', tests: [`${KEYGEN}#in round 4: ABORT echo`] },
  { file: DKG, find: "throw new AbortError('session-id', 'wrong DKG session id', j, bytes)", after: "'earlier broadcasts differ'", check: 'session-id (round 4)', tests: [`${KEYGEN}#wrong dkgSid in keygenConfirm`] },
  { file: DKG, find: "throw new AbortError('public-key', 'confirmed public key differs'", check: 'public-key (round 4)', tests: [`${KEYGEN}#round-4 public key differs`] },
  { file: DKG, find: "throw new AbortError('decode', 'a non-receiver sent a public share'", check: 'decode (non-receiver share)', tests: [`${KEYGEN}#a dealer that leaves`] },
  { file: DKG, find: "throw new AbortError('public-shares', 'public share differs from the Feldman data'", check: 'public-shares (round 4)', tests: [`${KEYGEN}#round-4 public share differs`] },
  { file: DKG, find: "throw new AbortError('schnorr-proof', 'proof of the share does not verify'", check: 'schnorr-proof (final share)', tests: [`${KEYGEN}#bad proof of the final share`] },
  { file: DKG, find: "throw new AbortError('public-shares', 'public shares do not interpolate to the public key')", check: 'public-shares (interpolation)', tests: [`${KEYGEN}#own public share changed`], reach: 'direct', why: 'the S_k are computed locally from the aggregate polynomial, whose constant term is PK (or O added to old shares checked to interpolate to PK)' },

  // ---- pairwise OT setup (DKG round 3 and pair re-setup) ----
  { file: 'src/protocol/ot-setup.ts', find: "throw new AbortError('pprf-proof'", check: 'pprf-proof', tests: [`${KEYGEN}#tampered PPRF proof|wipes the base-OT secrets too`, `${PAIR}#flipped byte in the PPRF proof`] },
  { file: 'src/ot/pprf.ts', find: 'if (!valid) throw new PprfProofError(g);', check: 'pprf-proof (ot/pprf.ts)', tests: [`${KEYGEN}#tampered PPRF proof`, `${ALGEBRA}#PPRF: flipped bytes`] },
  { file: PAIR_SETUP, find: 'if (!Number.isInteger(peer) || peer < 1 || peer > share.parties.length || peer === share.index)', check: 'bad-input (withPair)', tests: [`${PAIR}#withPair replaces`] },
  { file: PAIR_SETUP, find: "throw new AbortError('bad-input', `peer ${peer} not in 1..${n}`)", check: 'bad-input (peer index)', tests: [`${PAIR}#bad local input`] },
  { file: PAIR_SETUP, find: "throw new AbortError('bad-input', 'peer must be another party')", check: 'bad-input (peer is self)', tests: [`${PAIR}#bad local input`] },
  { file: PAIR_SETUP, find: "throw new AbortError('bad-input', 'nonce must be 32 bytes')", check: 'bad-input (nonce)', tests: [`${PAIR}#bad local input`] },
  { file: PAIR_SETUP, find: "throw new AbortError('session-id', 'pair re-setup request differs'", check: 'session-id (round 1)', tests: [`${PAIR}#wrong instance id|different nonces`] },
  { file: PAIR_SETUP, find: "throw new AbortError('session-id', 'wrong pair session id', j, bytes)", after: "bodiesOf(msgs, 'baseOtChoice')", check: 'session-id (round 2)', tests: [`${PAIR}#round 2: wrong session id`] },
  { file: PAIR_SETUP, find: "throw new AbortError('session-id', 'wrong pair session id', j, bytes)", after: "bodiesOf(msgs, 'pairSetupReply')", check: 'session-id (round 3)', tests: [`${PAIR}#round 3: wrong session id`] },

  // ---- signing ----
  { file: SIGN, find: "throw new AbortError('signer-set', `signer set has", check: 'signer-set (|T| = t)', tests: [`${SIGNING}#≠ t: signer-set`] },
  { file: SIGN, find: "throw new AbortError('party-index', `signer indices must be in", check: 'party-index', tests: [`${SIGNING}#party-index`] },
  { file: SIGN, find: "throw new AbortError('signer-set', 'signer set must be ascending without duplicates')", check: 'signer-set (ascending)', tests: [`${SIGNING}#duplicate signer`] },
  { file: SIGN, find: "throw new AbortError('signer-set', 'this party is not in the signer set')", check: 'signer-set (self in T)', tests: [`${SIGNING}#this party not in T`] },
  { file: SIGN, find: "throw new AbortError('burned-pair'", check: 'burned-pair', tests: [`${SIGNING}#a burned pair`] },
  { file: SIGN, find: "throw new AbortError('session-id', 'signing request differs'", check: 'session-id (flight 1)', tests: [`${SIGNING}#wrong instance id in flight 1|replay of a flight-1`] },
  { file: SIGN, find: 'if (!bytesEqual(value.echo, this.echo1)) throw', check: 'echo (flight 2)', tests: [`${SIGNING}#echo in flight 2|equivocation on flight 1`] },
  { file: SIGN, find: "throw new AbortError('session-id', 'wrong signing session id', j, bytes)", after: "bodiesOf(msgs, 'signExtension')", check: 'session-id (flight 2)', tests: [`${SIGNING}#wrong sigSid in flight 2`] },
  { file: SIGN, find: "throw new BanPairError('softspoken-check'", check: 'softspoken-check', tests: [`${SIGNING}#BAN_PAIR softspoken-check`] },
  { file: 'src/ot/softspoken.ts', find: 'if (diff !== 0) throw new SoftSpokenCheckError();', check: 'softspoken-check (ot/softspoken.ts)', tests: [`${SIGNING}#BAN_PAIR softspoken-check`, `${ALGEBRA}#SoftSpokenCheckError`] },
  { file: SIGN, find: "throw new BanPairError('gamma-u'", check: 'gamma-u', tests: [`${SIGNING}#BAN_PAIR gamma-u`] },
  { file: SIGN, find: "throw new BanPairError('gamma-v', 'Γ^v consistency check failed', j);", replace: 'return; // check removed', check: 'gamma-v', tests: [`${SIGNING}#BAN_PAIR gamma-v`] },
  { file: SIGN, find: "throw new AbortError('session-id', 'wrong signing session id', j, bytes)", after: "bodiesOf(msgs, 'signMultiply')", check: 'session-id (flight 3)', tests: [`${SIGNING}#wrong sigSid in flight 3`] },
  { file: SIGN, find: "if (!bytesEqual(value.echo, this.dig1)) throw", check: 'echo (flight 3)', tests: [`${SIGNING}#echo in flight 3`] },
  { file: SIGN, find: "throw new AbortError('commitment', 'R_j does not open its commitment'", check: 'commitment', tests: [`${SIGNING}#R_j replaced by another valid point|blind flipped`] },
  { file: SIGN, find: "throw new BanPairError('rvole-mu'", check: 'rvole-mu', tests: [`${SIGNING}#BAN_PAIR rvole-mu`] },
  { file: 'src/mul/rvole.ts', find: 'if (diff !== 0) throw new RvoleCheckError();', check: 'rvole-mu (mul/rvole.ts)', tests: [`${SIGNING}#BAN_PAIR rvole-mu`, `${ALGEBRA}#RvoleCheckError`] },
  { file: SIGN, find: "throw new AbortError('pk-sum'", check: 'pk-sum', tests: [`${SIGNING}#corrupted share`] },
  { file: SIGN, find: "throw new AbortError('nonce-point', 'R is the identity')", check: 'nonce-point (R = O)', tests: [`${SIGNING}#R = O`], reach: 'direct', why: 'every R_j is committed in flight 1 before any is opened' },
  { file: SIGN, find: "throw new AbortError('nonce-point', 'R.x ≥ n", check: 'nonce-point (R.x ≥ n)', tests: [`${SIGNING}#R.x = n`], reach: 'direct', why: 'as R = O; R.x ≥ n by chance: about 2^-128' },
  { file: SIGN, find: "throw new AbortError('nonce-point', 'r = 0')", check: 'nonce-point (r = 0)', tests: [`${SIGNING}#R = O|R.x = n|r_x = 0`], reach: 'none', why: 'r = 0 needs R.x = 0 (no such point: 7 is not a square mod p) or R.x = n (refused by the check before)' },
  { file: SIGN, find: "throw new AbortError('presignature-used'", check: 'presignature-used', tests: [`${SIGNING}#signs once`] },
  { file: SIGN, find: "throw new AbortError('bad-input', 'digest must be 32 bytes')", check: 'bad-input (digest)', tests: [`${SIGNING}#local input`] },
  { file: SIGN, find: "throw new AbortError('bad-input', `missing partial signature", check: 'bad-input (missing partial)', tests: [`${SIGNING}#local input`] },
  { file: SIGN, find: "throw new AbortError('final-signature', 'Σu = 0', culprit)", check: 'final-signature (Σu = 0)', tests: [`${SIGNING}#u_2 = |u_3 = `] },
  { file: SIGN, find: "throw new AbortError('final-signature', 's = 0', culprit)", check: 'final-signature (s = 0)', tests: [`${SIGNING}#w_2 = `] },
  // One check since the merge: verify by recovery (a wrong y-parity, R replaced by −R, is direct-only; a bad u_i or w_i reaches it by message).
  { file: SIGN, find: "throw new AbortError('final-signature', 'combined signature does not verify: the recovered key differs')", check: 'final-signature (verify by recovery)', tests: [`${SIGNING}#in flight 4: ABORT final-signature|passes presigning|replaced by −R`] },
  { file: SIGN, find: "throw new AbortError('session-id', 'wrong signing session id', j, bytes)", after: 'partials = new Map', check: 'session-id (flight 4)', tests: [`${SIGNING}#wrong sigSid in flight 4`] },
  { file: SIGN, find: "throw new AbortError('session-id', 'partial signature is for another digest'", check: 'session-id (flight 4 digest)', tests: [`${SIGNING}#another digest`] },

  // ---- key shares at rest ----
  { file: VAULT_SRC, find: 'dv.setUint32(24 + id.length, index);', replace: '/* party index not bound */', check: 'AEAD binds the party index', tests: [VAULT] },
  { file: VAULT_SRC, find: "throw new VaultError('sealed header does not match the key share inside')", check: 'header matches the share', tests: [VAULT] },
  { file: VAULT_SRC, find: "if (passphrase.length < 8) throw new VaultError(", check: 'passphrase ≥ 8 characters', tests: [VAULT] },
  { file: VAULT_SRC, find: "if (m.version !== VAULT_VERSION) throw new DecodeError(", check: 'vault version', tests: [VAULT] },
  { file: VAULT_SRC, find: "if (m.scryptLogN < 10 || m.scryptLogN > 22", check: 'scrypt costs in range', tests: [VAULT] },

  // ======== refusal sites beyond the protocol (issue 12): policy/, peer/, api/, audit/, net/, store/ ========

  // ---- the co-signer: everything before the used mark ----
  { file: COSIGNER, find: "if (hex(session) !== hex(p.presignature)) return decline(", check: 'session id = presignature id', tests: [COSIGN] },
  { file: COSIGNER, find: "if (held) return decline(core, from, session, held, 'rollback')", check: 'rolled-back peer signs nothing', tests: [COSIGN] },
  { file: COSIGNER, find: 'if (!this.limiter.take(from.org)) {', check: "member's proposal rate", tests: [COSIGN] },
  { file: COSIGNER, find: 'if (running >= MAX_SESSIONS_PER_MEMBER) return decline(', check: "member's running sessions", tests: [COSIGN] },
  { file: COSIGNER, find: 'if (!row) {', check: 'unknown presignature', tests: [COSIGN] },
  { file: COSIGNER, find: "if (row.used) return decline(core, from, session, 'presignature already used');", check: 'presignature already used', tests: [COSIGN] },
  { file: COSIGNER, find: 'if (row.owner !== k.partyOf.get(from.index) || !sameSet(row.signers, p.signers)) return decline(', check: 'presignature owner and signer set', tests: [COSIGN] },
  { file: COSIGNER, find: 'if (!signed.some((a) => a.approver === core.self.peerId)) return decline(', check: 'own approval in the certificate', tests: [COSIGN] },
  { file: COSIGNER, find: 'if (bytesToHex(subjectOf(request.body, k.address).digest) !== bytesToHex(p.digest)) return decline(', check: "proposed digest = the request's digest", tests: [COSIGN] },
  { file: COSIGNER, find: 'if (!q.ok) return decline(core, from, session, `policy refused (org-quorum)', check: "this org's quorum on the signer set", tests: [COSIGN] },
  { file: PROPOSAL, find: 'if (!k) return `unknown key', check: 'unknown key', tests: [COSIGN] },
  { file: PROPOSAL, find: 'if (p.epoch !== k.share.epoch) return', check: 'key epoch', tests: [COSIGN] },
  { file: PROPOSAL, find: 'if (proposer === undefined) return', check: 'proposer holds a share', tests: [COSIGN] },
  { file: PROPOSAL, find: 'if (p.signers.length !== k.share.threshold ||', check: 'signer set well-formed', tests: [COSIGN] },
  { file: PROPOSAL, find: "if (!p.signers.includes(k.share.index)) return 'this peer is not in the signer set';", check: 'this peer in the signer set', tests: [COSIGN] },
  { file: PROPOSAL, find: 'if (why) return why;', check: "cluster's org quorum", tests: [COSIGN] },
  { file: PROPOSAL, find: 'if (b !== undefined) return', check: 'burned pair', tests: [COSIGN] },
  { file: PROPOSAL, find: 'if (busy !== undefined) return', check: 'pair under OT re-setup', tests: [COSIGN] },

  // ---- the approver ----
  { file: APPROVER, find: "if (bytesToHex(session) !== bytesToHex(a.requestId)) return decline(", check: 'session id = request id', tests: [APPROVE] },
  { file: APPROVER, find: "if (held) return decline(core, from, session, held, 'rollback')", check: 'rolled-back peer approves nothing', tests: [APPROVE] },
  { file: APPROVER, find: 'if (!this.limiter.take(from.org)) {', check: "member's approval-request rate", tests: [APPROVE] },
  { file: APPROVER, find: 'if (!k) return decline(core, from, session, `unknown key', check: 'unknown key', tests: [APPROVE] },
  { file: APPROVER, find: 'if (!k.partyOf.has(from.index)) return decline(', check: 'requester holds a share', tests: [APPROVE] },
  { file: APPROVER, find: 'if (!mayRequest(core.definition, a.keyId, from.org)) return decline(', check: 'requester may originate (definition)', tests: [APPROVE] },
  { file: APPROVER, find: 'if (ev.refusal || !ev.digest) return decline(', check: 'policy refusal', tests: [APPROVE] },

  // ---- an org's policy (request-policy.ts and the rules) ----
  { file: POLICY_SRC, find: "if (!this.file) pre.push(r('no-policy'", check: 'no policy file', tests: [POLICY] },
  { file: POLICY_SRC, find: 'pre.push(q.distinctOrgs > t || q.otherOrgs > t - 1', replace: 'pre.push(false', check: 'threshold can meet the org quorum', tests: [POLICY] },
  { file: POLICY_SRC, find: "this.file?.rawDigests ? r('raw-digest', true,", replace: "true ? r('raw-digest', true,", check: 'raw digests refused', tests: [POLICY] },
  { file: POLICY_SRC, find: "!allowed ? r('block-disabled', false,", replace: "false ? r('block-disabled', false,", check: 'block payloads disabled', tests: [POLICY] },
  { file: POLICY_SRC, find: "allowed.some((c) => BigInt(c) === args.chainId) ? r('block-chain-id', true", replace: "true ? r('block-chain-id', true", check: 'block payload chain id allowed', tests: [POLICY] },
  { file: POLICY_SRC, find: "input.keyAddresses.some((a) => isAddressEqual(a as Address, sender)) ? r('block-sender'", replace: "true ? r('block-sender'", check: 'block payload sender = cluster address', tests: [POLICY] },
  { file: TX_POLICY, find: "r('chain-id', policy.chainIds.includes(tx.chainId),", replace: "r('chain-id', true,", check: 'tx chain id', tests: [TX] },
  { file: TX_POLICY, find: ": r('from', false, `from ${tx.from} is not the cluster address ${policy.from}`)", replace: ": r('from', true, 'check removed')", check: 'tx from = cluster address', tests: [TX] },
  { file: TX_POLICY, find: "? r('to', false, 'to is missing (contract creation); expected the batch inbox')", replace: "? r('to', true, 'check removed')", check: 'tx to present', tests: [TX] },
  { file: TX_POLICY, find: ": r('to', false, `to ${tx.to} is not the batch inbox ${policy.to}`)", replace: ": r('to', true, 'check removed')", check: 'tx to = batch inbox', tests: [TX] },
  { file: TX_POLICY, find: "r('value-zero', tx.value === 0n,", replace: "r('value-zero', true,", check: 'tx value 0', tests: [TX] },
  { file: TX_POLICY, find: 'r(rule, v <= max,', replace: 'r(rule, true,', check: 'tx caps (gas, fees, blob fee)', tests: [TX] },
  { file: TX_POLICY, find: "r('access-list', tx.accessList.length === 0,", replace: "r('access-list', true,", check: 'tx access list empty', tests: [TX] },
  { file: TX_POLICY, find: "reasons.push(r('calldata-empty', dataBytes.length === 0,", replace: "reasons.push(r('calldata-empty', true,", check: 'blob tx calldata empty', tests: [TX] },
  { file: TX_POLICY, find: "reasons.push(r('blob-count', hashes.length <= caps.maxBlobs,", replace: "reasons.push(r('blob-count', true,", check: 'blob count cap', tests: [TX] },
  { file: TX_POLICY, find: ": r('blob-content', false, 'blobs not handed over and the policy requires their content (allowBlobsWithoutContent: false)')", replace: ": r('blob-content', true, 'check removed')", check: 'blob content required', tests: [TX] },
  { file: TX_POLICY, find: "if (payloads.length !== count) return r('blob-content', false,", check: 'one payload per blob hash', tests: [TX] },
  { file: TX_POLICY, find: 'return r(rule, false, `${what}: ${e.message}`);', replace: "return r(rule, true, 'check removed');", check: 'batcher frames parse', tests: [TX] },
  { file: 'src/policy/equivocation.ts', find: 'if (differing.length > 0) {', check: 'equivocation: same content at a slot', tests: [EQUIV, TX] },
  { file: 'src/policy/equivocation.ts', find: 'if (decreased.length > 0) return', check: 'equivocation: fees not lower', tests: [EQUIV] },
  { file: 'src/policy/nonce-window.ts', find: 'if (nonce < c) return', check: 'nonce ≥ L1 confirmed', tests: [NONCE] },
  { file: 'src/policy/nonce-window.ts', find: 'if (nonce > c + window) return', check: 'nonce ≤ L1 confirmed + window', tests: [NONCE] },
  { file: 'src/policy/nonce-window.ts', find: 'if (nonce > view.highest + window) return', check: 'nonce ≤ highest approved + window', tests: [NONCE, APPROVE] },
  { file: 'src/policy/rate-limit.ts', find: "if (!b) return { rule: 'rate-limit', ok: false", check: 'client in the policy', tests: [RATE] },
  { file: 'src/policy/rate-limit.ts', find: 'if (b.units < UNITS_PER_REQUEST) return', check: "client's rate", tests: [RATE] },
  { file: 'src/store/policy-records.ts', find: 'if (!row) throw new PolicyRecordsError(`no record at', check: 'signature needs own approval of the slot', tests: [RECORDS, COSIGN] },
  { file: 'src/store/policy-records.ts', find: 'if (row.content_key !== contentKey(tx)) throw', check: 'signature of the approved content', tests: [RECORDS] },

  // ---- approval certificates ----
  { file: APPROVAL_SRC, find: "if (bytes.length === 0) throw new CertificateError('missing'", check: 'certificate present', tests: [APPROVAL] },
  { file: APPROVAL_SRC, find: 'if (bytes.length > 20_000) throw', check: 'certificate size', tests: [APPROVAL] },
  { file: APPROVAL_SRC, find: 'if (list.length < c.quorum) throw', check: 'c approvals', tests: [APPROVAL] },
  { file: APPROVAL_SRC, find: 'if (list.length > c.approvers.length) throw', check: 'at most n approvals', tests: [APPROVAL] },
  { file: APPROVAL_SRC, find: "if (out.some((x) => x.approver === a.approver)) throw", check: 'distinct approvers', tests: [APPROVAL] },
  { file: APPROVAL_SRC, find: 'if (bytesToHex(a.digest) !== bytesToHex(c.digest)) throw', check: 'approvals of the proposed digest', tests: [APPROVAL, COSIGN] },
  { file: APPROVAL_SRC, find: 'if (a.keyAddress !== c.keyAddress.toLowerCase()) throw', check: 'approvals for this key', tests: [APPROVAL] },
  { file: APPROVAL_SRC, find: 'if (out.length && subjectKey(a) !== subjectKey(out[0]!)) throw', check: 'approvals of one subject', tests: [APPROVAL] },
  { file: APPROVAL_SRC, find: 'if (bytesToHex(a.clusterHash) !== bytesToHex(clusterHash)) throw', check: 'approval for this cluster', tests: [APPROVAL] },
  { file: APPROVAL_SRC, find: "if (!who) throw new CertificateError('approver'", check: 'approver holds a share', tests: [APPROVAL] },
  { file: APPROVAL_SRC, find: 'if (who.org !== a.approverOrg) throw', check: "approver's org", tests: [APPROVAL] },
  { file: APPROVAL_SRC, find: 'if (!verifyEd25519(who.publicKey, signingMessage(', check: 'approval signature', tests: [APPROVAL] },
  { file: APPROVAL_SRC, find: 'if (bytes.length > 1024) throw', check: 'approval size', tests: [APPROVAL] },

  // ---- signed envelopes ----
  { file: ENVELOPE_SRC, find: 'if (bytes.length > MAX_ENVELOPE_BYTES) throw', check: 'envelope size limit', tests: [ENVELOPE] },
  { file: ENVELOPE_SRC, find: 'if (m.version !== ENVELOPE_VERSION) throw', check: 'envelope version', tests: [ENVELOPE] },
  { file: ENVELOPE_SRC, find: "if (!pk) throw new DropError('unexpected-message'", check: 'sender is a member', tests: [ENVELOPE] },
  { file: ENVELOPE_SRC, find: 'if (!limit) throw new DropError(', check: 'protocol spoken here', tests: [ENVELOPE] },
  { file: ENVELOPE_SRC, find: 'if (m.payload.length > limit.max) throw', check: 'payload limit', tests: [ENVELOPE] },
  { file: ENVELOPE_SRC, find: 'if (Buffer.compare(EnvelopeType.encode(', check: 'canonical encoding', tests: [ENVELOPE] },
  { file: ENVELOPE_SRC, find: "if (!ok) throw new DropError('unexpected-message', 'bad envelope signature');", check: 'envelope signature', tests: [ENVELOPE] },
  { file: ENVELOPE_SRC, find: 'if (Buffer.compare(Buffer.from(m.clusterHash), Buffer.from(opts.clusterHash)) !== 0) throw', check: 'cluster definition hash', tests: [ENVELOPE] },
  { file: ENVELOPE_SRC, find: 'if (m.to !== 0 && m.to !== opts.self) throw', check: 'addressee', tests: [ENVELOPE] },
  { file: ENVELOPE_SRC, find: "if (replay === 'replay') throw", check: 'replay', tests: [ENVELOPE] },
  { file: ENVELOPE_SRC, find: "if (replay === 'below-window') throw", check: 'replay window floor', tests: [ENVELOPE] },

  // ---- the signing API ----
  { file: 'src/api/client-auth.ts', find: "if (!cert || !cert.raw) return { ok: false, status: 401", check: 'client certificate present', tests: [SERVER] },
  { file: 'src/api/client-auth.ts', find: 'if (facts.revoked) return', check: 'client certificate not revoked', tests: [MTLS] },
  { file: 'src/api/client-auth.ts', find: 'if (!(this.now() < facts.notAfter)) return', check: 'client certificate not expired', tests: [MTLS] },
  { file: 'src/api/client-auth.ts', find: 'if (client === undefined) return', check: 'client certificate has a DNS SAN', tests: [SERVER] },
  { file: 'src/api/client-auth.ts', find: 'if (!this.backend.isClient(client)) return', check: 'client in the policy (403)', tests: [SERVER] },
  { file: 'src/api/server.ts', find: "if (req.method !== 'POST') return refuse(", check: 'POST only (405)', tests: [SERVER] },
  { file: 'src/api/server.ts', find: 'if (!JSON_TYPES.has(mediaType)) {', check: 'JSON content type (415)', tests: [SERVER] },
  { file: 'src/api/server.ts', find: "if (body === 'too-large') return refuse(", check: 'body size (413)', tests: [SERVER] },
  { file: 'src/api/server.ts', find: 'if (inFlight >= maxConcurrent) throw', check: 'signing calls in flight', tests: [SERVER] },
  { file: 'src/api/json-rpc.ts', find: "if (v['jsonrpc'] !== '2.0') {", check: 'jsonrpc "2.0"', tests: [JSONRPC] },
  { file: 'src/api/json-rpc.ts', find: 'for (const k of Object.keys(v)) if (!MEMBERS.has(k)) return', replace: 'for (const k of Object.keys(v)) if (false) return', check: 'no unknown members', tests: [JSONRPC, SERVER] },
  { file: 'src/api/json-rpc.ts', find: "if (typeof method !== 'string' || method.length === 0) return", check: 'method a non-empty string', tests: [JSONRPC] },
  { file: 'src/api/json-rpc.ts', find: 'if (value.length > MAX_BATCH) {', check: 'batch size', tests: [JSONRPC] },

  // ---- audit logs and checkpoints ----
  { file: LOG_FILE, find: "if (e.peerId !== opts.peerId) throw new AuditError('author'", check: 'entry by the log\'s author', tests: [LOG] },
  { file: LOG_FILE, find: "if (pub && !verifyEntry(r, pub)) throw", check: 'entry signature', tests: [LOG] },
  { file: LOG_FILE, find: "if (!equalBytes(e.clusterHash, opts.clusterHash)) throw", check: 'entry for this cluster', tests: [LOG] },
  { file: LOG_FILE, find: "if (e.seq !== i) throw", check: 'entry seq', tests: [LOG] },
  { file: LOG_FILE, find: "if (!equalBytes(e.prev, i ? leaves[i - 1]! : ZERO_HASH)) throw", check: 'entry prev hash', tests: [LOG] },
  { file: CHECKPOINT, find: 'if (s.signature.length !== 64 || !verifyEd25519(', check: 'note signature of a known key', tests: [CKPT] },
  { file: CHECKPOINT, find: 'if (!verified.includes(author.name)) throw', check: 'checkpoint signed by its author', tests: [CKPT] },
  { file: CHECKPOINT, find: 'if (p && !verifyConsistency(', check: 'witness: consistent with the last cosigned', tests: [CKPT] },
];
