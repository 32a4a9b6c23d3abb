/**
 * The JSON-RPC methods the signing API serves (op-signer's, system-anchors §1.3, plus the blob
 * extension) and their mapping onto the `SigningBackend`. Params are positional; each signing
 * method takes exactly one, passed to the backend as parsed JSON (the backend decodes it strictly).
 */
import { RPC_ERRORS, RpcError, type CallContext, type SigningBackend } from './backend.ts';
import { positionalParams, type JsonRpcRequest } from './json-rpc.ts';

export const SERVED_METHODS = [
  'health_status',
  'eth_signTransaction',
  'opsigner_signBlockPayload',
  'opsigner_signBlockPayloadV2',
  'potluck_provideBlobs',
] as const;
export type ServedMethod = (typeof SERVED_METHODS)[number];

export const isServedMethod = (m: string): m is ServedMethod => (SERVED_METHODS as readonly string[]).includes(m);

/**
 * Raw-bytes and typed-data signing: refused by design, as op-signer does (an HSM-backed signer must
 * never sign arbitrary bytes, §1.3, celo-org/optimism#459).
 */
const REFUSED_BY_DESIGN = new Set(['eth_sign', 'personal_sign', 'eth_signTypedData', 'eth_signTypedData_v3', 'eth_signTypedData_v4']);

/** A method name fit for a message: quoted, and cut short (it is the caller's input). */
const quote = (m: string) => JSON.stringify(m.length > 64 ? `${m.slice(0, 64)}…` : m);

export function methodNotFound(method: string): RpcError {
  if (REFUSED_BY_DESIGN.has(method)) {
    return new RpcError(RPC_ERRORS.methodNotFound,
      `the method ${method} is deliberately not served: Potluck never signs raw bytes or typed data, only transactions (eth_signTransaction) and block payloads (opsigner_signBlockPayload[V2])`);
  }
  return new RpcError(RPC_ERRORS.methodNotFound, `the method ${quote(method)} does not exist/is not available`);
}

/** Runs one request against the backend; throws RpcError for anything the caller should see. */
export async function callMethod(backend: SigningBackend, req: JsonRpcRequest, ctx: CallContext): Promise<unknown> {
  switch (req.method) {
    case 'health_status':
      // The Go client calls it without params (geth omits "params" when there are none).
      positionalParams(req, 0);
      return backend.version;
    case 'eth_signTransaction':
      return backend.signTransaction(positionalParams(req, 1)[0], ctx);
    case 'opsigner_signBlockPayload':
      return backend.signBlockPayload(positionalParams(req, 1)[0], 1, ctx);
    case 'opsigner_signBlockPayloadV2':
      return backend.signBlockPayload(positionalParams(req, 1)[0], 2, ctx);
    case 'potluck_provideBlobs':
      return backend.provideBlobs(positionalParams(req, 1)[0], ctx);
    default:
      throw methodNotFound(req.method);
  }
}
