/**
 * Strict JSON-RPC 2.0 (https://www.jsonrpc.org/specification) request parsing and response
 * building for the signing API. op-signer speaks it through geth's `rpc` package with positional
 * params (system-anchors §1.3); this parser is stricter than geth: `"jsonrpc"` must be exactly
 * "2.0", unknown members are refused, and each message names the member that is wrong.
 */
import { RPC_ERRORS, RpcError } from './backend.ts';

export type JsonRpcId = string | number | null;

/** A well-formed request; `notification` = it had no `id` member, so it gets no response. */
export interface JsonRpcRequest {
  id: JsonRpcId;
  notification: boolean;
  method: string;
  /** As sent; `undefined` when the member is absent. */
  params: unknown[] | Record<string, unknown> | undefined;
}

export interface JsonRpcErrorObject {
  code: number;
  message: string;
  data?: unknown;
}

export type JsonRpcResponse =
  | { jsonrpc: '2.0'; id: JsonRpcId; result: unknown }
  | { jsonrpc: '2.0'; id: JsonRpcId; error: JsonRpcErrorObject };

/** One entry of a body: a request to run, or an error response to send as is. */
export type ParsedEntry = { ok: true; request: JsonRpcRequest } | { ok: false; response: JsonRpcResponse };

/** A body: one entry, a batch of entries, or one error response for the whole body. */
export type ParsedBody =
  | { kind: 'single'; entry: ParsedEntry }
  | { kind: 'batch'; entries: ParsedEntry[] }
  | { kind: 'invalid'; response: JsonRpcResponse };

/** Most requests one batch may hold; a larger batch is refused whole (-32600). */
export const MAX_BATCH = 100;

const MEMBERS = new Set(['jsonrpc', 'id', 'method', 'params']);

export function resultResponse(id: JsonRpcId, result: unknown): JsonRpcResponse {
  return { jsonrpc: '2.0', id, result };
}

export function errorResponse(id: JsonRpcId, code: number, message: string, data?: unknown): JsonRpcResponse {
  return { jsonrpc: '2.0', id, error: data === undefined ? { code, message } : { code, message, data } };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const describe = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v);

const isId = (v: unknown): v is JsonRpcId => v === null || typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));

/** Validates one parsed request object. An invalid one answers with its id when that id is usable, else null. */
export function validateRequest(v: unknown): ParsedEntry {
  const invalid = (id: JsonRpcId, message: string): ParsedEntry =>
    ({ ok: false, response: errorResponse(id, RPC_ERRORS.invalidRequest, message) });
  if (!isObject(v)) return invalid(null, `invalid request: must be a JSON object, got ${describe(v)}`);
  const hasId = Object.hasOwn(v, 'id');
  const id = hasId && isId(v['id']) ? v['id'] : null;
  if (hasId && !isId(v['id'])) return invalid(null, `invalid request: "id" must be a string, a number or null, got ${describe(v['id'])}`);
  for (const k of Object.keys(v)) if (!MEMBERS.has(k)) return invalid(id, `invalid request: unknown member ${JSON.stringify(k.slice(0, 40))}`);
  if (v['jsonrpc'] !== '2.0') {
    return invalid(id, `invalid request: "jsonrpc" must be exactly "2.0", got ${typeof v['jsonrpc'] === 'string' ? JSON.stringify(v['jsonrpc'].slice(0, 20)) : describe(v['jsonrpc'])}`);
  }
  const method = v['method'];
  if (typeof method !== 'string' || method.length === 0) return invalid(id, `invalid request: "method" must be a non-empty string, got ${method === '' ? 'an empty string' : describe(method)}`);
  const params = v['params'];
  if (params !== undefined && !Array.isArray(params) && !isObject(params)) {
    return invalid(id, `invalid request: "params" must be an array or an object when present, got ${describe(params)}`);
  }
  return { ok: true, request: { id, notification: !hasId, method, params: params as JsonRpcRequest['params'] } };
}

/** Parses a request body (already decoded as UTF-8): parse errors, empty and oversized batches answer as a whole. */
export function parseBody(text: string): ParsedBody {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    // JSON.parse's message names the position of the fault in the caller's own input.
    return { kind: 'invalid', response: errorResponse(null, RPC_ERRORS.parse, `parse error: ${(e as Error).message}`) };
  }
  if (!Array.isArray(value)) return { kind: 'single', entry: validateRequest(value) };
  if (value.length === 0) return { kind: 'invalid', response: errorResponse(null, RPC_ERRORS.invalidRequest, 'invalid request: empty batch') };
  if (value.length > MAX_BATCH) {
    return { kind: 'invalid', response: errorResponse(null, RPC_ERRORS.invalidRequest, `invalid request: batch of ${value.length} requests exceeds the limit of ${MAX_BATCH}`) };
  }
  return { kind: 'batch', entries: value.map(validateRequest) };
}

/**
 * The positional params of a request, between `min` and `max` of them (op-signer's methods take
 * positional params only, §1.3). Absent params count as `[]`. Throws RpcError -32602.
 */
export function positionalParams(req: JsonRpcRequest, min: number, max = min): unknown[] {
  if (req.params !== undefined && !Array.isArray(req.params)) {
    throw new RpcError(RPC_ERRORS.invalidParams, `invalid params: ${req.method} takes positional params (an array), got an object`);
  }
  const params = req.params ?? [];
  if (params.length < min || params.length > max) {
    const want = min === max ? `exactly ${min}` : `${min} to ${max}`;
    throw new RpcError(RPC_ERRORS.invalidParams, `invalid params: ${req.method} takes ${want} param${max === 1 ? '' : 's'}, got ${params.length}`);
  }
  return params;
}
