/** JSON-RPC 2.0 parsing and params checking, without a socket (the HTTPS path is in server.test.ts). */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RpcError } from '../../src/api/backend.ts';
import { MAX_BATCH, errorResponse, parseBody, positionalParams, resultResponse, validateRequest } from '../../src/api/json-rpc.ts';

describe('validateRequest', () => {
  test('a request with id null is a request, one without id a notification', () => {
    assert.deepEqual(validateRequest({ jsonrpc: '2.0', id: null, method: 'm' }),
      { ok: true, request: { id: null, notification: false, method: 'm', params: undefined } });
    assert.deepEqual(validateRequest({ jsonrpc: '2.0', method: 'm', params: [1] }),
      { ok: true, request: { id: null, notification: true, method: 'm', params: [1] } });
  });

  test('string and number ids are kept as sent; params may be an object at this level', () => {
    assert.deepEqual(validateRequest({ jsonrpc: '2.0', id: 'a-1', method: 'm', params: { x: 1 } }),
      { ok: true, request: { id: 'a-1', notification: false, method: 'm', params: { x: 1 } } });
    assert.deepEqual(validateRequest({ jsonrpc: '2.0', id: 2.5, method: 'm' }),
      { ok: true, request: { id: 2.5, notification: false, method: 'm', params: undefined } });
  });

  test('invalid requests answer -32600 with the id when it is usable', () => {
    assert.deepEqual(validateRequest({ jsonrpc: 2, id: 9, method: 'm' }),
      { ok: false, response: errorResponse(9, -32600, 'invalid request: "jsonrpc" must be exactly "2.0", got number') });
    assert.deepEqual(validateRequest({ jsonrpc: '2.0', id: 9, method: '' }),
      { ok: false, response: errorResponse(9, -32600, 'invalid request: "method" must be a non-empty string, got an empty string') });
    assert.deepEqual(validateRequest({ jsonrpc: '2.0', id: [1], method: 'm' }),
      { ok: false, response: errorResponse(null, -32600, 'invalid request: "id" must be a string, a number or null, got an array') });
    assert.deepEqual(validateRequest({ jsonrpc: '2.0', id: 1, method: 'm', params: null }),
      { ok: false, response: errorResponse(1, -32600, 'invalid request: "params" must be an array or an object when present, got null') });
    assert.deepEqual(validateRequest({ jsonrpc: '2.0', id: 1, method: 'm', extra: true }),
      { ok: false, response: errorResponse(1, -32600, 'invalid request: unknown member "extra"') });
  });
});

describe('parseBody', () => {
  test('parse errors answer as a whole with id null', () => {
    const r = parseBody('[{"jsonrpc":"2.0"');
    assert.equal(r.kind, 'invalid');
    assert.equal(r.kind === 'invalid' && 'error' in r.response && r.response.error.code, -32700);
  });

  test('single, batch, empty and oversized batches', () => {
    assert.deepEqual(parseBody('{"jsonrpc":"2.0","id":1,"method":"m"}'),
      { kind: 'single', entry: { ok: true, request: { id: 1, notification: false, method: 'm', params: undefined } } });
    const batch = parseBody('[{"jsonrpc":"2.0","id":1,"method":"m"}, 1]');
    assert.equal(batch.kind, 'batch');
    assert.equal(batch.kind === 'batch' && batch.entries.length, 2);
    assert.deepEqual(parseBody('[]'), { kind: 'invalid', response: errorResponse(null, -32600, 'invalid request: empty batch') });
    const over = JSON.stringify(Array(MAX_BATCH + 1).fill({ jsonrpc: '2.0', id: 1, method: 'm' }));
    assert.deepEqual(parseBody(over), { kind: 'invalid', response: errorResponse(null, -32600, 'invalid request: batch of 101 requests exceeds the limit of 100') });
  });

  test('responses have the JSON-RPC 2.0 shape; data only when given', () => {
    assert.deepEqual(resultResponse(1, '0x'), { jsonrpc: '2.0', id: 1, result: '0x' });
    assert.deepEqual(errorResponse('a', -32011, 'no'), { jsonrpc: '2.0', id: 'a', error: { code: -32011, message: 'no' } });
    assert.deepEqual(errorResponse('a', -32011, 'no', { r: 1 }), { jsonrpc: '2.0', id: 'a', error: { code: -32011, message: 'no', data: { r: 1 } } });
  });
});

describe('positionalParams', () => {
  const req = (params: unknown) => ({ id: 1, notification: false, method: 'eth_signTransaction', params: params as unknown[] });

  test('returns the array; absent params count as []', () => {
    assert.deepEqual(positionalParams(req([{ a: 1 }]), 1), [{ a: 1 }]);
    assert.deepEqual(positionalParams(req(undefined), 0), []);
    assert.deepEqual(positionalParams(req([1, 2]), 1, 2), [1, 2]);
  });

  test('throws RpcError -32602 naming the method and the count', () => {
    const check = (params: unknown, min: number, max: number, message: string) =>
      assert.throws(() => positionalParams(req(params), min, max), (e: unknown) =>
        e instanceof RpcError && e.code === -32602 && e.message === message);
    check({ a: 1 }, 1, 1, 'invalid params: eth_signTransaction takes positional params (an array), got an object');
    check([], 1, 1, 'invalid params: eth_signTransaction takes exactly 1 param, got 0');
    check([1, 2, 3], 1, 2, 'invalid params: eth_signTransaction takes 1 to 2 params, got 3');
  });
});
