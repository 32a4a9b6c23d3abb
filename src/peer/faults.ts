import { decodeBody, encodeBody } from '../protocol/messages.ts';

/**
 * Fault injection for the real-process tests (issue 3), switched on only by the environment
 * variable POTLUCK_FAULT. Never set it in production: each fault breaks this peer on purpose.
 *   crash-after-mark  SIGKILL this process right after a co-signer's used mark is fsync'd,
 *                     before its partial signature is sent (spec §2.9)
 *   corrupt-ot        flip one bit of the first SignExtension this peer sends, so the receiving
 *                     partner's OT consistency check fails (spec §2.10, BAN_PAIR)
 *   stall-shutdown    a graceful stop waits forever on one more step, so `potluck start` must end
 *                     it at its deadline (issue 12)
 */
export interface Faults {
  afterUsedMark?: () => void;
  tamperOut?: (protocol: string, payload: Uint8Array) => Uint8Array;
  stallShutdown?: boolean;
}

export function faultsFromEnv(value = process.env.POTLUCK_FAULT): Faults | undefined {
  if (!value) return undefined;
  switch (value) {
    case 'crash-after-mark':
      return { afterUsedMark: () => process.kill(process.pid, 'SIGKILL') };
    case 'corrupt-ot': {
      let done = false;
      return {
        tamperOut: (_protocol, payload) => {
          if (done) return payload;
          const body = decodeBody(payload);
          if (body.case !== 'signExtension') return payload;
          done = true;
          const u = body.value.u.slice();
          u[0]! ^= 1;
          return encodeBody({ case: 'signExtension', value: { ...body.value, u } });
        },
      };
    }
    case 'stall-shutdown':
      return { stallShutdown: true };
    default:
      throw new RangeError(`unknown POTLUCK_FAULT "${value}" (known: crash-after-mark, corrupt-ot, stall-shutdown)`);
  }
}
