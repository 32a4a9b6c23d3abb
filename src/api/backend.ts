/**
 * What the signing API (issue 4) needs from the peer behind it. The API layer speaks HTTPS and
 * JSON-RPC; the peer layer (`src/peer/signing-service.ts`) implements this with the daemon, its
 * policy and its records. Imports point inward: the API never sees the daemon.
 */
import type { Hex } from 'viem';

/** op-signer's error codes (system-anchors §1.3 `errors.go`), plus JSON-RPC 2.0's own. */
export const RPC_ERRORS = {
  parse: -32700,
  invalidRequest: -32600,
  methodNotFound: -32601,
  invalidParams: -32602,
  internal: -32603,
  /** Server busy or the signing quorum could not be reached (JSON-RPC "server error" range). */
  unavailable: -32000,
  invalidTransaction: -32010,
  unauthorizedTransaction: -32011,
  invalidBlockPayload: -32012,
  unauthorizedBlockPayload: -32013,
} as const;

/** A JSON-RPC error the API returns as is: `code`, a message naming the rule, optional `data`. */
export class RpcError extends Error {
  override readonly name = 'RpcError';
  readonly code: number;
  readonly data: unknown;
  constructor(code: number, message: string, data?: unknown) {
    super(message);
    this.code = code;
    this.data = data;
  }
}

/** Who is calling: the first DNS SAN of the verified client certificate (op-signer auth.go). */
export interface CallContext {
  client: string;
}

export type Readiness = { ready: true } | { ready: false; reason: string };

export interface SigningBackend {
  /** `health_status` result: the app version. */
  readonly version: string;
  /** Known client names (their certificate's first DNS SAN); others get HTTP 403. */
  isClient(name: string): boolean;
  /** `eth_signTransaction`: the params[0] object as parsed JSON; returns EIP-2718 bytes without sidecar. Throws RpcError. */
  signTransaction(args: unknown, ctx: CallContext): Promise<Hex>;
  /** `opsigner_signBlockPayload[V2]`: params[0] as parsed JSON; returns 65 bytes r ‖ s ‖ v (v ∈ {0, 1}). Throws RpcError. */
  signBlockPayload(args: unknown, version: 1 | 2, ctx: CallContext): Promise<Hex>;
  /** `potluck_provideBlobs` (the blob extension): blobs as 0x-hex; returns their versioned hashes. Throws RpcError. */
  provideBlobs(blobs: unknown, ctx: CallContext): Promise<Hex[]>;
  /** `/readyz`: not ready names the reason code, e.g. "insufficient quorum peers". */
  readiness(): Readiness;
}
