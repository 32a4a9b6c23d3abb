/** Raised by every strict decoder in the project: bytes that are not a valid encoding. */
export class DecodeError extends Error {
  override readonly name = 'DecodeError';
  /** What was being decoded, e.g. "flight3.gammaU". Never contains secret material. */
  readonly what: string;
  constructor(what: string, reason: string) {
    super(`${what}: ${reason}`);
    this.what = what;
  }
}
