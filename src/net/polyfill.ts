// Node 20 lacks Promise.withResolvers, which libp2p 3 and its dependencies call at run time
// (without it: "Promise.withResolvers is not a function", or ECONNRESET when a listener dies mid-upgrade). Import this first in every entry point that loads libp2p.
if (typeof (Promise as unknown as { withResolvers?: unknown }).withResolvers !== 'function') {
  (Promise as unknown as { withResolvers: () => unknown }).withResolvers = function withResolvers<T>() {
    let resolve!: (v: T | PromiseLike<T>) => void;
    let reject!: (e?: unknown) => void;
    const promise = new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}
export {};
