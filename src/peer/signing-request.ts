import { DecodeError } from '../crypto/errors.ts';
import { exactBytes } from '../crypto/scalar-point.ts';
import { SigningRequestType, strictDecode } from '../protocol/messages.ts';

/**
 * What a requester asks its co-signers to sign (proto `SigningRequest`, issue 4). It rides in the
 * sign proposal; every co-signer recomputes the digest from it and runs its own policy on it.
 */
export type RequestBody =
  | { case: 'transaction'; argsJson: string; blobs: Uint8Array[] }
  | { case: 'blockPayload'; argsJson: string; argsVersion: 1 | 2 }
  | { case: 'rawDigest'; digest: Uint8Array };

export interface SigningRequest {
  client: string;
  body: RequestBody;
}

const VERSION = 1;
/** A request's JSON args are a few KB; blobs travel as bytes, not in the JSON. */
const MAX_ARGS_JSON = 256 * 1024;

export function encodeSigningRequest(r: SigningRequest): Uint8Array {
  const b = r.body;
  const body =
    b.case === 'transaction' ? { transaction: { argsJson: b.argsJson, blobs: b.blobs } }
    : b.case === 'blockPayload' ? { blockPayload: { argsJson: b.argsJson, argsVersion: b.argsVersion } }
    : { rawDigest: b.digest };
  return SigningRequestType.encode(SigningRequestType.create({ version: VERSION, client: r.client, ...body })).finish();
}

const bytesOf = (v: unknown): Uint8Array => (v instanceof Uint8Array ? new Uint8Array(v.buffer, v.byteOffset, v.length) : new Uint8Array(0));

/** Strict: throws DecodeError naming the field. */
export function decodeSigningRequest(bytes: Uint8Array): SigningRequest {
  const m = strictDecode(SigningRequestType, bytes, 'signing request') as unknown as Record<string, unknown> & { body?: string };
  if (m.version !== VERSION) throw new DecodeError('signing request', `version ${String(m.version ?? 0)} is not ${VERSION}`);
  const client = typeof m.client === 'string' ? m.client : '';
  const v = (m.body ? m[m.body] : undefined) as Record<string, unknown> | undefined;
  const json = (what: string): string => {
    const s = typeof v?.argsJson === 'string' ? v.argsJson : '';
    if (!s) throw new DecodeError(what, 'argsJson is empty');
    if (s.length > MAX_ARGS_JSON) throw new DecodeError(what, `argsJson of ${s.length} characters exceeds ${MAX_ARGS_JSON}`);
    return s;
  };
  switch (m.body) {
    case 'transaction':
      return { client, body: { case: 'transaction', argsJson: json('transaction'), blobs: Array.isArray(v?.blobs) ? (v.blobs as unknown[]).map(bytesOf) : [] } };
    case 'blockPayload': {
      const argsVersion = v?.argsVersion;
      if (argsVersion !== 1 && argsVersion !== 2) throw new DecodeError('blockPayload', `argsVersion ${String(argsVersion ?? 0)} is not 1 or 2`);
      return { client, body: { case: 'blockPayload', argsJson: json('blockPayload'), argsVersion } };
    }
    case 'rawDigest':
      return { client, body: { case: 'rawDigest', digest: exactBytes(bytesOf(m.rawDigest), 32, 'rawDigest') } };
    default:
      throw new DecodeError('signing request', 'no body');
  }
}
